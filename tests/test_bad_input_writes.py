"""Bad input for writes (issue 12, "writes that cannot lose data"): rows in the style of
tests/test_bad_input.py (exit 2, one line, nothing changed), and the cases that must now
succeed without touching anything inittui did not create: a user's file or folder named like
an old backup, a leftover-looking temp name, a 250-character file name, a dangling symlink
with --force, a model that calls os.chdir while it is built."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from harness import MODELS
from test_bad_input import GOOD_PLAN, MLP, C, Case, good_pt, run_bad_input

WANDERS = f"{MODELS}/chdir_ctor.py:Wanders"
LONG_PT = "w" * 247 + ".pt"  # 250 characters: legal under NAME_MAX 255
LONG_PY = "i" * 247 + ".py"


def dangling(name: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).symlink_to(tmp / "nowhere" / "gone")


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: files with their bytes, folders as None, symlinks as
    ("link", target) (a dangling one has no bytes to read)."""
    result: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            result[key] = ("link", os.readlink(path))
        else:
            result[key] = None if path.is_dir() else path.read_bytes()
    return result


CASES = [
    C(
        "export-dangling-symlink-checkpoint",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--checkpoint",
        "{tmp}/w.pt",
        fragment="already exists; pass --force",
        files={"p.toml": GOOD_PLAN},
        setup=dangling("w.pt"),
    ),
    C(
        "export-dangling-symlink-script",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "init.py",
        fragment="already exists; pass --force",
        files={"p.toml": GOOD_PLAN},
        setup=dangling("init.py"),
    ),
    C(
        "lsuv-dangling-symlink-plan-out",
        "lsuv",
        MLP,
        "--plan-out",
        "l.toml",
        fragment="already exists; pass --force",
        setup=dangling("l.toml"),
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, cli, tmp_path, monkeypatch):
    run_bad_input(case, cli, tmp_path, monkeypatch, snapshot=snapshot)


# ------------------------------------------------------- writes that must succeed, cleanly


def _export(cli, tmp: Path, *outputs: str):
    result = cli("export", MLP, "--plan", str(tmp / "p.toml"), *outputs)
    assert result.code == 0, result.err
    assert result.out == ""
    return result


def _is_checkpoint(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def _user_backup_file(cli, tmp: Path) -> None:
    (tmp / ".w.pt.inittui-backup").write_bytes(b"mine, not inittui's\n")
    _export(cli, tmp, "--checkpoint", "w.pt", "--force")
    assert (tmp / ".w.pt.inittui-backup").read_bytes() == b"mine, not inittui's\n"
    _is_checkpoint(tmp / "w.pt")


def _user_backup_folder(cli, tmp: Path) -> None:
    (tmp / ".w.pt.inittui-backup").mkdir()
    (tmp / ".w.pt.inittui-backup" / "keep.txt").write_bytes(b"x")
    _export(cli, tmp, "--checkpoint", "w.pt", "--force")
    assert (tmp / ".w.pt.inittui-backup" / "keep.txt").read_bytes() == b"x"
    _is_checkpoint(tmp / "w.pt")


def _temp_like_user_file(cli, tmp: Path) -> None:
    name = f".w.pt.inittui-tmp-{os.getpid()}"  # the temp name this process would pick
    (tmp / name).write_bytes(b"mine\n")
    _export(cli, tmp, "--checkpoint", "w.pt", "--force")
    assert (tmp / name).read_bytes() == b"mine\n"
    _is_checkpoint(tmp / "w.pt")


def _long_names(cli, tmp: Path) -> None:
    (tmp / LONG_PT).write_bytes(b"old\n")
    result = _export(cli, tmp, "--checkpoint", LONG_PT, "--script", LONG_PY, "--force")
    assert result.err.splitlines()[-1] == f"wrote {LONG_PT}"
    _is_checkpoint(tmp / LONG_PT)
    compile((tmp / LONG_PY).read_text(), LONG_PY, "exec")


def _dangling_with_force(cli, tmp: Path) -> None:
    (tmp / "w.pt").unlink()
    dangling("w.pt")(tmp)
    _export(cli, tmp, "--checkpoint", "w.pt", "--force")
    assert not (tmp / "w.pt").is_symlink()  # the link is replaced, its target not created
    assert not (tmp / "nowhere").exists()
    _is_checkpoint(tmp / "w.pt")


WRITES = {
    "force-keeps-user-file-named-like-a-backup": (_user_backup_file, {"w.pt"}),
    "force-keeps-user-folder-named-like-a-backup": (_user_backup_folder, {"w.pt"}),
    "force-keeps-user-file-named-like-a-temp": (_temp_like_user_file, {"w.pt"}),
    "export-250-character-names": (_long_names, {LONG_PT, LONG_PY}),
    "force-replaces-dangling-symlink-itself": (_dangling_with_force, {"w.pt"}),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_writes_touch_only_their_destination(name, cli, tmp_path, monkeypatch):
    """Exit 0, the destination written, every other entry byte-for-byte as it was, no
    temporary file left."""
    run, changed = WRITES[name]
    (tmp_path / "w.pt").write_bytes(good_pt())
    (tmp_path / "p.toml").write_bytes(GOOD_PLAN)
    monkeypatch.chdir(tmp_path)
    seen: dict[str, object] = {}

    def spy(*args: str):  # snapshot just before the run, after the case's own setup
        seen.update(snapshot(tmp_path))
        return cli(*args)

    run(spy, tmp_path)
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in seen.items() if k not in changed
    }
    assert not [k for k in after if ".inittui-tmp-" in k and k not in seen]


@pytest.mark.parametrize(
    ("command", "out"),
    [
        (("export", WANDERS, "--plan", "p.toml", "--script", "init.py"), "init.py"),
        (("lsuv", WANDERS, "--plan-out", "l.toml"), "l.toml"),
    ],
    ids=["export-script", "lsuv-plan-out"],
)
def test_os_chdir_in_the_model_does_not_redirect_outputs(command, out, cli, tmp_path, monkeypatch):
    (tmp_path / "p.toml").write_bytes(GOOD_PLAN)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("INITTUI_TEST_CHDIR", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    result = cli(*command)
    monkeypatch.undo()
    assert result.code == 0, result.err
    assert result.err.splitlines()[-1] == f"wrote {out}"  # shown as the user gave it
    assert (tmp_path / out).is_file()
    assert list((tmp_path / "elsewhere").iterdir()) == []
