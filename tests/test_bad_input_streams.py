"""Bad input, continued: clean streams, one line always, CLI basics (issue 12, points 5, 7
and 8). The rows reuse the table of tests/test_bad_input.py (its ``Case``, the one-line /
exit 2 / nothing-written assertions); the stream cases are real processes, since what they
check is file descriptor 1 and a real pipe.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from harness import ROOT, run_cli_subprocess
from test_bad_input import (
    MLP,
    ZOO,
    C,
    Case,
    _saved,
    good_pt,
    one_error_line,
    plan,
    run_bad_input,
)

GOOD_PLAN = plan('select = "type:Linear"\nparams = "bias"\nscheme = "zeros"')

# A model that writes to stdout every way it can: at import, in its constructor (also from
# a thread it starts), in forward (print and os.write to fd 1); it warns while built.
NOISY = b"""
import os, sys, threading, warnings
from torch import nn
print("noisy: import print")
os.write(1, b"noisy: import os.write\\n")


class Net(nn.Module):
    def __init__(self, fail: bool = False):
        super().__init__()
        print("noisy: ctor print")
        sys.stdout.write("noisy: ctor sys.stdout.write\\n")
        warnings.warn("noisy: a constructor warning\\nwith a second line", UserWarning)
        thread = threading.Thread(target=lambda: print("noisy: thread print"))
        thread.start()
        thread.join()
        if fail:
            raise ValueError("noisy: failing on purpose")
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        print("noisy: forward print")
        os.write(1, b"noisy: forward os.write\\n")
        return self.fc(x)


def example_inputs(model):
    import torch
    return (torch.randn(3, 4),)


def big():
    return nn.Sequential(*[nn.Linear(4, 4) for _ in range(3000)])


class WideNames(nn.Module):
    def __init__(self):
        super().__init__()
        self.a_module_with_a_rather_long_name_that_does_not_fit = nn.Sequential(
            nn.Linear(4, 4)
        )
"""


# The same traps without the prints, for rows that expect exactly one line on stderr.
QUIET = b"""
import warnings
from torch import nn


class Named(nn.Module):
    def __init__(self, name: str = "x"):
        super().__init__()
        raise ValueError(f"unknown name {name}")


class Warns(nn.Module):
    def __init__(self):
        super().__init__()
        warnings.warn("quiet: the model warns", FutureWarning)
        raise ValueError("quiet: and then fails")
"""


def folder_snapshot(folder: Path) -> dict[str, object]:
    """test_bad_input's snapshot, with FIFOs recorded by kind (reading one would block)."""
    result: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_fifo():
            result[key] = "fifo"
        else:
            result[key] = None if path.is_dir() else path.read_bytes()
    return result


def fifo(name: str):
    def make(tmp: Path) -> None:
        os.mkfifo(tmp / name)

    return make


def no_terminal(mp: pytest.MonkeyPatch) -> None:
    mp.delenv("TEXTUAL_DRIVER", raising=False)
    mp.setattr(sys, "stdin", io.StringIO())


def _missing_bias_pt() -> bytes:
    state = torch.load(io.BytesIO(good_pt()), weights_only=True)
    del state["2.bias"]
    return _saved(state)


CASES = [
    # -- FIFOs and devices: refused before anything opens them (a FIFO would block)
    C(
        "target-fifo",
        "inspect",
        "{tmp}/model.py:Net",
        fragment="is a FIFO",
        setup=fifo("model.py"),
    ),
    C(
        "plan-fifo",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="is a FIFO",
        setup=fifo("p.toml"),
    ),
    C(
        "ckpt-fifo",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="is a FIFO",
        setup=fifo("w.pt"),
    ),
    C(
        "inputs-fifo",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="is a FIFO",
        setup=fifo("x.pt"),
    ),
    C("plan-dev-zero", "plan", MLP, "--plan", "/dev/zero", fragment="'/dev/zero' is a device"),
    C("ckpt-dev-null", "inspect", MLP, "--load", "/dev/null", fragment="unknown checkpoint type"),
    C(
        "plan-huge",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="plans are at most 10 MB",
        files={"p.toml": lambda: GOOD_PLAN + b"#" * (11 * 10**6) + b"\n"},
    ),
    C(
        "plan-bom",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="starts with a UTF-8 byte-order mark",
        files={"p.toml": b"\xef\xbb\xbf" + GOOD_PLAN},
    ),
    # -- echoed values: control characters escaped, one line
    C(
        "arg-ansi-echoed",
        "inspect",
        "{tmp}/quiet.py:Named",
        "--arg",
        "name=a\x1b[31mred\x07",
        fragment="unknown name a\\x1b[31mred\\x07",
        files={"quiet.py": QUIET},
    ),
    C(
        "ckpt-name-newline-echoed",
        "inspect",
        MLP,
        "--load",
        "{tmp}/a\n\x1b[2Jb.xyz",
        fragment="for a\\n\\x1b[2Jb.xyz",
    ),
    C("unknown-command-ansi", "inspekt\x1b[0m", fragment="\\x1b[0m"),
    # -- warnings on the error path: dropped, the error is the one line
    C(
        "ctor-warns-then-fails",
        "inspect",
        "{tmp}/quiet.py:Warns",
        "--json",
        fragment="and then fails",
        files={"quiet.py": QUIET},
    ),
    # -- state dicts: the first missing key named with its shape
    C(
        "ckpt-missing-key-shape",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="missing keys: 2.bias (2,)",
        files={"w.pt": _missing_bias_pt},
    ),
    # -- the TUI needs a terminal
    C("tui-no-terminal", MLP, fragment="stdin is not a terminal", patch=no_terminal),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, cli, tmp_path, monkeypatch):
    line = run_bad_input(case, cli, tmp_path, monkeypatch, snapshot=folder_snapshot)
    assert "\x1b" not in line and "\x07" not in line


# --------------------------------------------------------------------------- real processes


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TEXTUAL_DRIVER")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _run(*args: str, cwd: Path, stdin=subprocess.DEVNULL, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "inittui", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(**env),
        stdin=stdin,
        timeout=180,
    )


@pytest.fixture
def noisy(tmp_path) -> Path:
    (tmp_path / "noisy.py").write_bytes(NOISY)
    return tmp_path / "noisy.py"


PRINTS = (
    "noisy: import print",
    "noisy: import os.write",
    "noisy: ctor print",
    "noisy: ctor sys.stdout.write",
    "noisy: thread print",
)


@pytest.mark.parametrize("command", ["inspect", "preview"])
def test_json_stdout_is_pure_when_the_model_prints(command, noisy, tmp_path):
    proc = _run(command, f"{noisy}:Net", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)  # nothing but the document
    for text in PRINTS + (("noisy: forward print", "noisy: forward os.write") if command ==
                          "preview" else ()):  # fmt: skip
        assert text in proc.stderr
    # the warning: one line, no source line or second line of the message
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: UserWarning: noisy: a constructor warning"]
    assert "with a second line" not in proc.stderr and "warnings.warn" not in proc.stderr


def test_json_stdout_is_empty_when_the_model_prints_and_fails(noisy, tmp_path):
    proc = _run("inspect", f"{noisy}:Net", "--arg", "fail=True", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "failing on purpose" in lines[-1]
    assert not [line for line in lines if line.startswith("warning:")]
    assert "Traceback" not in proc.stderr


def test_a_closed_pipe_ends_quietly(noisy, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "inittui", "inspect", f"{noisy}:big", "--no-stats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        env=_env(),
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=180)
    assert first.startswith(b"Sequential")
    assert code in (0, 141), err
    assert "error" not in err and "Traceback" not in err, err


def test_the_tui_without_a_terminal_is_one_line(tmp_path):
    proc = _run(MLP, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a terminal" in lines[0], proc.stderr
    assert "inittui inspect" in lines[0] and "\x1b" not in proc.stderr


def test_ascii_stdout_does_not_crash_inspect(tmp_path):
    proc = _run("inspect", MLP, cwd=tmp_path, PYTHONIOENCODING="ascii")
    assert proc.returncode == 0, proc.stderr
    assert ".weight" in proc.stdout and "---" in proc.stdout
    proc.stdout.encode("ascii")


@pytest.mark.parametrize("columns", ["0", "5", "x"])
def test_a_bad_columns_value_still_prints(columns, tmp_path):
    proc = _run("inspect", MLP, cwd=tmp_path, COLUMNS=columns)
    assert proc.returncode == 0, proc.stderr
    assert ".weight" in proc.stdout


def test_output_to_a_pipe_is_not_cut_to_80_columns(noisy, tmp_path):
    proc = _run("inspect", f"{noisy}:WideNames", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "  a_module_with_a_rather_long_name_that_does_not_fit  Sequential" in proc.stdout
    assert "…" not in proc.stdout
    assert max(map(len, proc.stdout.splitlines())) > 80


def test_version(tmp_path):
    from inittui import __version__

    result = run_cli_subprocess("--version", cwd=tmp_path)
    assert result.code == 0 and result.err == ""
    assert result.out == f"inittui {__version__}\n"


def test_version_in_process(cli):
    result = cli("--version")
    assert result.code == 0 and result.out.startswith("inittui ")


@pytest.mark.parametrize(
    ("command", "texts"),
    [
        ("lsuv", ("(default 1)", "(default 0.1)", "(default 10)", "(default 8)")),
        ("serve", ("(default localhost)", "(default 8000)")),
        ("preview", ("(default 8)", "(default 0.1)", "(default 10)")),
    ],
)
def test_help_states_the_defaults(command, texts, capsys):
    from inittui.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in texts:
        assert expected in text, expected


def test_help_batch_default_is_the_probe_default():
    from inittui.cli_parser import BATCH_HELP
    from inittui.core.probe import DEFAULT_BATCH

    assert f"(default {DEFAULT_BATCH})" in BATCH_HELP


def test_batch_with_example_inputs_says_it_is_moot(cli, noisy):
    result = cli("preview", f"{noisy}:Net", "--batch", "4")
    assert result.code == 0, result.err
    notes = [line for line in result.err.splitlines() if line.startswith("note:")]
    assert notes == ["note: --batch 4 is not used: the inputs come from example_inputs"]
    plain = cli("preview", MLP, "--batch", "4")
    assert "note:" not in plain.err


def test_warning_on_success_is_one_line_in_process(cli, noisy):
    result = cli("inspect", f"{noisy}:Net", "--json", "--no-stats")
    assert result.code == 0, result.err
    json.loads(result.out)
    assert "warning: UserWarning: noisy: a constructor warning" in result.err.splitlines()


def test_state_dict_errors_name_the_unexpected_key_and_shape(cli, tmp_path):
    state = torch.load(io.BytesIO(good_pt()), weights_only=True)
    state["extra.weight"] = torch.zeros(3, 5)
    (tmp_path / "w.pt").write_bytes(_saved(state))
    result = cli("inspect", MLP, "--load", tmp_path / "w.pt")
    one_error_line(result, "unexpected keys: extra.weight (3, 5)")


def test_the_table_counts():
    assert len(CASES) >= 12
    assert ZOO.endswith("zoo.py")


def test_the_tui_under_serve_needs_no_terminal(cli, monkeypatch):
    """textual-serve starts each tab as ``inittui TARGET`` with pipes and TEXTUAL_DRIVER set
    to its web driver: that must still open the app."""
    import inittui.tui.app as app

    calls = []
    monkeypatch.setattr(app, "run_app", lambda *a, **k: calls.append(a) or 0)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.web_driver:WebDriver")
    result = cli(MLP)
    assert result.code == 0 and result.err == "" and len(calls) == 1
    monkeypatch.delenv("TEXTUAL_DRIVER")
    assert cli(MLP).code == 2 and len(calls) == 1
