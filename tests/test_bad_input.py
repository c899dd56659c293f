"""Bad input, everywhere: one table of cases for every command, a few real processes, and
the TUI's entries.

Each CLI case must end with exit status 2 (unless the case says otherwise), exactly one
line ``error: ...`` on stderr naming what is wrong, nothing on stdout, no traceback, and
the case's folder byte-for-byte as it was (no temp file, no partial output, no existing
file changed).
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from harness import MODELS, run_cli_subprocess
from pilot import idle, plain, wait_for
from torch import nn

ZOO = f"{MODELS}/zoo.py"
BAD = f"{MODELS}/bad"
CTORS = f"{BAD}/constructors.py"
MLP = f"{ZOO}:make_mlp"  # Sequential(Linear(4, 4), ReLU, Linear(4, 2))


# --------------------------------------------------------------------------- file makers


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _mlp_state(width: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2)).state_dict()


def good_pt() -> bytes:
    return _saved(_mlp_state())


def truncated_pt() -> bytes:
    data = good_pt()
    return data[: len(data) // 2]


def truncated_safetensors() -> bytes:
    from safetensors.torch import save

    data = save({k: v.contiguous() for k, v in _mlp_state().items()})
    return data[: len(data) // 2]


def plan(*rules: str, head: str = "version = 1\nseed = 0\n") -> bytes:
    """A plan file: ``head`` then one ``[[rule]]`` table per string."""
    return (head + "".join(f"\n[[rule]]\n{rule}\n" for rule in rules)).encode()


GOOD_PLAN = plan('select = "type:Linear"\nparams = "bias"\nscheme = "zeros"')


# --------------------------------------------------------------------------- patches


def no_cuda(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(torch.cuda, "is_available", lambda: False)


def one_cuda(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(torch.cuda, "is_available", lambda: True)
    mp.setattr(torch.cuda, "device_count", lambda: 1)


def no_mps(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(torch.backends.mps, "is_available", lambda: False)


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def full_disk(mp: pytest.MonkeyPatch) -> None:
    """Every flush to disk fails, as on a full disk (after the temp file was created)."""
    import inittui.core.export as export

    mp.setattr(export.os, "fsync", _enospc)


def full_disk_for_checkpoints(mp: pytest.MonkeyPatch) -> None:
    """torch.save fails: the script (written first) succeeds, the checkpoint does not."""
    mp.setattr(torch, "save", _enospc)


def no_write_access(mp: pytest.MonkeyPatch) -> None:
    """A read-only folder as root sees it (root ignores permission bits)."""
    import inittui.core.export as export

    real = export.os.access
    mp.setattr(export.os, "access", lambda path, mode: mode != os.W_OK and real(path, mode))


def read_only(folder: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / folder).mkdir()
        (tmp / folder).chmod(0o555)

    return setup


def mkdir(name: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).mkdir()


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # "{tmp}" stands for the case's own folder
    fragment: str  # must appear in the error line
    files: dict[str, bytes | Callable[[], bytes]] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    code: int = 2
    skip_as_root: bool = False


def C(name: str, *args: str, fragment: str, **options: object) -> pytest.param:
    return pytest.param(Case(name, args, fragment, **options), id=name)  # type: ignore[arg-type]


CASES = [
    # -- targets
    C("target-missing-file", "inspect", "{tmp}/nope.py:Net", "--json", fragment="not found"),
    C("target-missing-name", "inspect", f"{ZOO}:Nope", fragment="has no 'Nope'"),
    C("target-name-typo", "inspect", f"{ZOO}:Shraed", fragment="did you mean 'Shared'?"),
    C("target-int", "inspect", f"{ZOO}:NUMBER", fragment="is a int, not an nn.Module"),
    C(
        "target-factory-returns-int",
        "inspect",
        f"{ZOO}:not_a_module",
        fragment="returned a int, not an nn.Module",
    ),
    C("target-folder", "inspect", f"{BAD}:Net", fragment="is not a Python file"),
    C(
        "target-folder-named-py",
        "inspect",
        "{tmp}/model.py:Net",
        fragment="is not a Python file",
        setup=mkdir("model.py"),
    ),
    C(
        "target-not-py",
        "inspect",
        "{tmp}/model.txt:Net",
        fragment="is not a Python file",
        files={"model.txt": b"class Net: pass\n"},
    ),
    C(
        "target-syntax-error",
        "inspect",
        f"{MODELS}/broken_syntax.py:Net",
        fragment="syntax error in broken_syntax.py line 3",
    ),
    C(
        "target-import-error",
        "inspect",
        f"{BAD}/import_missing.py:Net",
        fragment="imports module 'inittui_no_such_package_xyz', which is not installed",
    ),
    C(
        "target-raises-on-import",
        "inspect",
        f"{MODELS}/raises_on_import.py:Net",
        fragment="this file needs a GPU cluster",
    ),
    C(
        "target-sys-exit-on-import",
        "inspect",
        f"{BAD}/exits_on_import.py:Net",
        fragment="called sys.exit(5) while being imported",
    ),
    C("target-no-colon", "inspect", ZOO, fragment="must be path/to/file.py:Name"),
    C("target-empty-name", "inspect", f"{ZOO}:", fragment="must be path/to/file.py:Name"),
    C("target-empty", "inspect", "", fragment="must be path/to/file.py:Name"),
    C(
        "target-missing-package",
        "inspect",
        "inittui_no_such_pkg.models:Net",
        fragment="no module named 'inittui_no_such_pkg.models'",
    ),
    C(
        "target-instance-with-args",
        "inspect",
        f"{ZOO}:instance",
        "--arg",
        "width=3",
        fragment="takes no --arg/--kwargs",
    ),
    # -- construction
    C("ctor-raises", "inspect", f"{ZOO}:Raises", fragment="ValueError: width must be even"),
    C("ctor-missing-args", "inspect", f"{ZOO}:NeedsArgs", fragment="--arg hidden=VALUE"),
    C(
        "ctor-unexpected-arg",
        "inspect",
        MLP,
        "--arg",
        "depth=3",
        fragment="unexpected argument(s) 'depth'",
    ),
    C(
        "ctor-wrong-type",
        "inspect",
        MLP,
        "--kwargs",
        '{"width": "wide"}',
        fragment="constructing make_mlp failed: TypeError",
    ),
    C("ctor-recursion", "inspect", f"{CTORS}:Recursive", fragment="RecursionError"),
    C("ctor-sys-exit", "inspect", f"{CTORS}:Exits", fragment="SystemExit: 3"),
    # -- constructor and model options
    C("arg-no-equals", "inspect", MLP, "--arg", "width", fragment="is not KEY=VALUE"),
    C("arg-bad-key", "inspect", MLP, "--arg", "1x=2", fragment="is not KEY=VALUE"),
    C("kwargs-not-json", "inspect", MLP, "--kwargs", "{width: 4", fragment="not valid JSON"),
    C("kwargs-not-object", "inspect", MLP, "--kwargs", "[4]", fragment="must be a JSON object"),
    C("device-unknown", "inspect", MLP, "--device", "tpu", fragment="unknown device 'tpu'"),
    C(
        "device-cuda-unavailable",
        "inspect",
        MLP,
        "--device",
        "cuda",
        fragment="sees no CUDA GPU; use --device cpu",
        patch=no_cuda,
    ),
    C(
        "device-cuda-7",
        "inspect",
        MLP,
        "--device",
        "cuda:7",
        fragment="1 CUDA device(s), use cuda:0..cuda:0",
        patch=one_cuda,
    ),
    C("device-mps", "inspect", MLP, "--device", "mps", fragment="not available", patch=no_mps),
    C("dtype-unknown", "inspect", MLP, "--dtype", "int8", fragment="unknown dtype 'int8'"),
    C("depth-negative", "inspect", MLP, "--depth", "-1", fragment="--depth must be 0 or more"),
    C("depth-not-int", "inspect", MLP, "--depth", "x", fragment="invalid int value: 'x'"),
    C(
        "seed-negative",
        "inspect",
        MLP,
        "--seed",
        "-1",
        fragment="--seed: must be an integer 0 or more",
    ),
    C(
        "seed-not-int",
        "inspect",
        MLP,
        "--seed",
        "1.5",
        fragment="--seed: must be an integer 0 or more",
    ),
    C("unknown-option", "inspect", MLP, "--bogus", fragment="unrecognized arguments: --bogus"),
    C("no-target", "inspect", fragment="the following arguments are required: TARGET"),
    C("unknown-command", "inspekt", MLP, fragment="did you mean 'inspect'?"),
    # -- inputs
    C(
        "input-shape-letter",
        "preview",
        MLP,
        "--input-shape",
        "8,x",
        "--json",
        fragment="--input-shape '8,x' must be comma-separated positive integers",
    ),
    C(
        "input-shape-larger-than-memory",
        "preview",
        MLP,
        "--input-shape",
        "100000,100000,100000",
        fragment="is 3.6 PB of float32 input, more than the",
    ),
    C("input-shape-zero", "preview", MLP, "--input-shape", "0,3", fragment="'0,3' must be"),
    C("input-shape-empty", "preview", MLP, "--input-shape", "", fragment="'' must be"),
    C("input-shape-negative", "preview", MLP, "--input-shape", "-1", fragment="'-1' must be"),
    C(
        "input-dtype-unknown",
        "preview",
        MLP,
        "--input-dtype",
        "complex",
        fragment="unknown --input-dtype 'complex'",
    ),
    C(
        "input-dtype-count-mismatch",
        "preview",
        MLP,
        "--input-shape",
        "2,4",
        "--input-dtype",
        "float32,long",
        fragment="--input-dtype gives 2 dtypes for 1 input(s)",
    ),
    C(
        "input-dtype-list-unknown",
        "preview",
        MLP,
        "--input-dtype",
        "float32,complex",
        fragment="unknown --input-dtype 'complex'",
    ),
    C(
        "input-dtype-list-empty-entry",
        "check",
        MLP,
        "--input-dtype",
        "float32,",
        fragment="has an empty entry",
    ),
    C("inputs-missing", "preview", MLP, "--inputs", "{tmp}/nope.pt", fragment="not found"),
    C(
        "inputs-unknown-suffix",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.npy",
        fragment="unknown file type '.npy'",
        files={"x.npy": b"\x93NUMPY"},
    ),
    C(
        "inputs-not-a-tensor-container",
        "check",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="holds a str, not a tensor, a tuple/list of tensors or a dict of tensors",
        files={"x.pt": lambda: _saved("a batch")},
    ),
    C(
        "inputs-list-with-a-number",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="item 1 is a int, not a tensor",
        files={"x.pt": lambda: _saved([torch.zeros(2, 4), 3])},
    ),
    C(
        "inputs-empty-tuple",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="holds an empty tuple",
        files={"x.pt": lambda: _saved(())},
    ),
    C(
        "inputs-complex-dtype",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="input 0 is a complex64 torch.strided tensor; inputs must be dense",
        files={"x.pt": lambda: _saved(torch.zeros(2, 4, dtype=torch.complex64))},
    ),
    C(
        "inputs-dtype-kind-mismatch",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        "--input-dtype",
        "float32,long",
        fragment="input 1 of --inputs x.pt is float32, --input-dtype says int64",
        files={"x.pt": lambda: _saved((torch.zeros(2, 4), torch.zeros(2, 4)))},
    ),
    C(
        "inputs-pickled-object",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="holds pickled Python objects (pathlib.PurePosixPath) that "
        "torch.load(weights_only=True) refuses",
        files={"x.pt": lambda: _saved(__import__("pathlib").PurePosixPath("batch"))},
    ),
    C(
        "inputs-truncated-pt",
        "check",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="cannot read --inputs x.pt",
        files={"x.pt": truncated_pt},
    ),
    C(
        "inputs-truncated-safetensors",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.safetensors",
        fragment="cannot read --inputs x.safetensors as safetensors",
        files={"x.safetensors": truncated_safetensors},
    ),
    C(
        "inputs-unknown-keyword",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        fragment="Sequential.forward takes no argument 'pixels' (it takes input)",
        files={"x.pt": lambda: _saved({"pixels": torch.zeros(2, 4)})},
    ),
    C(
        "inputs-and-input-shape",
        "preview",
        MLP,
        "--inputs",
        "{tmp}/x.pt",
        "--input-shape",
        "2,4",
        fragment="give --inputs FILE or --input-shape, not both",
        files={"x.pt": lambda: _saved(torch.zeros(2, 4))},
    ),
    C("batch-zero", "preview", MLP, "--batch", "0", fragment="--batch must be 1 or more"),
    C(
        "thresholds-inverted",
        "preview",
        MLP,
        "--vanishing",
        "5",
        "--exploding",
        "2",
        fragment="0 < vanishing < exploding",
    ),
    # -- forward passes
    C(
        "forward-raises",
        "preview",
        f"{CTORS}:ForwardRaises",
        "--json",
        fragment="forward pass failed: RuntimeError: forward is not implemented",
    ),
    C(
        "forward-shape-mismatch",
        "preview",
        MLP,
        "--input-shape",
        "8,3",
        fragment="forward pass failed",
    ),
    C(
        "forward-sys-exit",
        "preview",
        f"{CTORS}:ForwardExits",
        "--input-shape",
        "2,4",
        fragment="forward pass failed: SystemExit: usage: train.py DATA",
    ),
    C(
        "example-inputs-sys-exit",
        "preview",
        f"{BAD}/example_exits.py:Net",
        fragment="example_inputs in example_exits.py failed: SystemExit: 4",
    ),
    C(
        "lsuv-forward-sys-exit",
        "lsuv",
        f"{CTORS}:ForwardExits",
        "--input-shape",
        "2,4",
        "--plan-out",
        "{tmp}/l.toml",
        fragment="SystemExit",
    ),
    C("preview-meta", "preview", MLP, "--device", "meta", fragment="not meta"),
    C("check-meta", "check", MLP, "--device", "meta", fragment="not meta"),
    # -- checkpoints
    C("ckpt-missing", "inspect", MLP, "--load", "{tmp}/nope.pt", fragment="not found"),
    C(
        "ckpt-folder",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="is a folder",
        setup=mkdir("w.pt"),
    ),
    C(
        "ckpt-unknown-extension",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.npz",
        fragment="unknown checkpoint type '.npz'",
        files={"w.npz": b"PK\x03\x04"},
    ),
    C(
        "ckpt-corrupt-pt",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="corrupt or not a torch checkpoint",
        files={"w.pt": b"\x00garbage" * 50},
    ),
    C(
        "ckpt-text-pt",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="corrupt or not a torch checkpoint",
        files={"w.pt": b"hello, this is not a checkpoint\nsecond line\n"},
    ),
    C(
        "ckpt-truncated-pt",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="corrupt or not a torch checkpoint",
        files={"w.pt": truncated_pt},
    ),
    C(
        "ckpt-corrupt-safetensors",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.safetensors",
        fragment="corrupt or not a safetensors file",
        files={"w.safetensors": b"\xff" * 64},
    ),
    C(
        "ckpt-truncated-safetensors",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.safetensors",
        fragment="corrupt or not a safetensors file",
        files={"w.safetensors": truncated_safetensors},
    ),
    C(
        "ckpt-pickled-module",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="holds pickled Python objects",
        files={"w.pt": lambda: _saved(nn.Linear(4, 4))},
    ),
    C(
        "ckpt-wrong-keys",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="missing keys: 0.weight",
        files={"w.pt": lambda: _saved({"encoder.weight": torch.zeros(4, 4)})},
    ),
    C(
        "ckpt-wrong-shapes",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="shape mismatch: 0.weight checkpoint (5, 5) vs model (4, 4)",
        files={"w.pt": lambda: _saved(_mlp_state(width=5))},
    ),
    C(
        "ckpt-empty-dict",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="holds no state_dict",
        files={"w.pt": lambda: _saved({})},
    ),
    C(
        "ckpt-values-not-tensors",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="holds no state_dict",
        files={"w.pt": lambda: _saved({"0.weight": [1.0, 2.0], "0.bias": 3})},
    ),
    C(
        "ckpt-a-list",
        "inspect",
        MLP,
        "--load",
        "{tmp}/w.pt",
        fragment="holds no state_dict",
        files={"w.pt": lambda: _saved([torch.zeros(2)])},
    ),
    # -- plans
    C(
        "plan-toml-syntax",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--json",
        fragment="p.toml is not valid TOML",
        files={"p.toml": b"version = \n[[rule]\n"},
    ),
    C(
        "plan-random-scheme-on-int-parameter",
        "export",
        f"{ZOO}:Counted",
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        fragment="cannot apply to count: normal draws random values and needs a floating-point",
        files={"p.toml": plan('select = "**"\nscheme = "normal"')},
    ),
    C(
        "plan-orthogonal-on-complex-parameter",
        "plan",
        f"{ZOO}:Counted",
        "--plan",
        "{tmp}/p.toml",
        fragment="cannot apply to phase: orthogonal does not support complex tensors",
        files={"p.toml": plan('select = ""\nparams = "phase"\nscheme = "orthogonal"')},
    ),
    C(
        "plan-fractional-constant-on-int-parameter",
        "plan",
        f"{ZOO}:Counted",
        "--plan",
        "{tmp}/p.toml",
        fragment="constant val=0.5 is not a whole number; count is int64",
        files={"p.toml": plan('select = ""\nparams = "count"\nscheme = "constant"\nval = 0.5')},
    ),
    C(
        "plan-version-2",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="plan version 2 is not supported",
        files={"p.toml": plan(head="version = 2\n")},
    ),
    C(
        "plan-seed-string",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="seed must be a non-negative integer, got 'abc'",
        files={"p.toml": plan(head='version = 1\nseed = "abc"\n')},
    ),
    C(
        "plan-unknown-top-level-key",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="unknown top-level key(s) 'rules'",
        files={"p.toml": b'version = 1\n[[rules]]\nselect = "x"\n'},
    ),
    C(
        "plan-rule-not-array",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="'rule' must be an array of tables",
        files={"p.toml": b"version = 1\nrule = 3\n"},
    ),
    C(
        "plan-unknown-scheme",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="kaiming_normel",
        files={"p.toml": plan('select = "type:Linear"\nscheme = "kaiming_normel"')},
    ),
    C(
        "plan-unknown-key",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment='did you mean "nonlinearity"?',
        files={
            "p.toml": plan(
                'select = "type:Linear"\nparams = "weight"\nscheme = "kaiming_normal"\n'
                'nonlinearty = "relu"'
            )
        },
    ),
    C(
        "plan-negative-std",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment='key "std" of scheme normal must be >= 0',
        files={"p.toml": plan('select = "type:Linear"\nscheme = "normal"\nstd = -1.0')},
    ),
    C(
        "plan-bad-mode",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="fan_middle",
        files={
            "p.toml": plan(
                'select = "type:Linear"\nparams = "weight"\nscheme = "kaiming_normal"\n'
                'mode = "fan_middle"'
            )
        },
    ),
    C(
        "plan-bad-nonlinearity",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="relux",
        files={
            "p.toml": plan(
                'select = "type:Linear"\nparams = "weight"\nscheme = "kaiming_normal"\n'
                'nonlinearity = "relux"'
            )
        },
    ),
    C(
        "plan-missing-select",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="missing key 'select'",
        files={"p.toml": plan('scheme = "zeros"')},
    ),
    C(
        "plan-unclosed-glob",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="unclosed '['",
        files={"p.toml": plan('select = "layers.[0"\nscheme = "zeros"')},
    ),
    C(
        "plan-kaiming-on-bias",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="cannot apply to 0.bias",
        files={"p.toml": plan('select = "type:Linear"\nscheme = "kaiming_normal"')},
    ),
    C(
        "plan-eye-on-3d",
        "plan",
        f"{ZOO}:Convs",
        "--plan",
        "{tmp}/p.toml",
        fragment="cannot apply to c1.weight",
        files={"p.toml": plan('select = "c1"\nparams = "weight"\nscheme = "eye"')},
    ),
    C(
        "plan-per-gate-on-linear",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="per_gate applies to RNN/LSTM/GRU",
        files={
            "p.toml": plan(
                'select = "type:Linear"\nparams = "weight"\nscheme = "orthogonal"\nper_gate = true'
            )
        },
    ),
    C(
        "plan-forget-bias-on-gru",
        "plan",
        f"{CTORS}:Small",
        "--plan",
        "{tmp}/p.toml",
        fragment="GRU has no forget gate",
        files={
            "p.toml": plan('select = "gru"\nparams = "bias*"\nscheme = "zeros"\nforget_bias = 1.0')
        },
    ),
    C("plan-missing-file", "plan", MLP, "--plan", "{tmp}/nope.toml", fragment="not found"),
    C(
        "plan-folder",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="is a folder",
        setup=mkdir("p.toml"),
    ),
    C(
        "plan-not-utf8",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="not UTF-8",
        files={"p.toml": "version = 1\n# Größe\n".encode("latin-1")},
    ),
    C(
        "plan-for-preview",
        "preview",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--json",
        fragment="cannot apply to 0.bias",
        files={"p.toml": plan('select = "type:Linear"\nscheme = "xavier_uniform"')},
    ),
    # -- export
    C(
        "export-nothing",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="nothing to export",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-missing-folder",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/out/init.py",
        fragment="does not exist",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-read-only-folder",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/ro/init.py",
        fragment="is read-only",
        files={"p.toml": GOOD_PLAN},
        setup=read_only("ro"),
        skip_as_root=True,
    ),
    C(
        "export-read-only-folder-simulated",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        fragment="is read-only",
        files={"p.toml": GOOD_PLAN},
        patch=no_write_access,
    ),
    C(
        "export-unwritable-folder",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "/proc/inittui-init.py",
        fragment="/proc/inittui-init.py",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-existing-without-force",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        fragment="already exists; pass --force",
        files={"p.toml": GOOD_PLAN, "init.py": b"# mine\n"},
    ),
    C(
        "export-checkpoint-npz",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--checkpoint",
        "{tmp}/w.npz",
        fragment="unknown extension '.npz'",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-script-txt",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.txt",
        fragment="unknown extension '.txt'",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-same-file-twice",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/x.py",
        "--plan-out",
        "{tmp}/./x.py",
        fragment="two outputs name the same file",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-plan-out-over-plan",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--plan-out",
        "{tmp}/p.toml",
        fragment="already exists; pass --force",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-full-disk",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        fragment="No space left on device; nothing was written",
        files={"p.toml": GOOD_PLAN},
        patch=full_disk,
    ),
    C(
        "export-full-disk-force-over-existing",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        "--plan-out",
        "{tmp}/out.toml",
        "--force",
        fragment="No space left on device",
        files={"p.toml": GOOD_PLAN, "init.py": b"# mine\n", "out.toml": b"# also mine\n"},
        patch=full_disk,
    ),
    C(
        "export-full-disk-second-output",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        "--checkpoint",
        "{tmp}/w.pt",
        "--force",
        fragment="No space left on device",
        files={"p.toml": GOOD_PLAN, "w.pt": good_pt},
        patch=full_disk_for_checkpoints,
    ),
    C(
        "export-checkpoint-on-meta",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--checkpoint",
        "{tmp}/w.pt",
        "--device",
        "meta",
        fragment="meta device",
        files={"p.toml": GOOD_PLAN},
    ),
    C(
        "export-bad-plan-writes-nothing",
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        "--checkpoint",
        "{tmp}/w.safetensors",
        fragment="cannot apply to 0.bias",
        files={"p.toml": plan('select = "type:Linear"\nscheme = "orthogonal"')},
    ),
    # -- check
    C("check-max-ratio-below-1", "check", MLP, "--max-ratio", "0.5", fragment="--max-ratio must"),
    C("check-max-ratio-nan", "check", MLP, "--max-ratio", "nan", fragment="--max-ratio must"),
    C("check-max-ratio-text", "check", MLP, "--max-ratio", "ten", fragment="invalid float value"),
    # -- lsuv
    C(
        "lsuv-tol-zero",
        "lsuv",
        MLP,
        "--plan-out",
        "{tmp}/l.toml",
        "--tol",
        "0",
        "--json",
        fragment="--tol must be positive",
    ),
    C(
        "lsuv-plan-out-existing",
        "lsuv",
        MLP,
        "--plan-out",
        "{tmp}/l.toml",
        fragment="already exists; pass --force",
        files={"l.toml": b"# mine\n"},
    ),
    C(
        "lsuv-plan-out-missing-folder",
        "lsuv",
        MLP,
        "--plan-out",
        "{tmp}/none/l.toml",
        fragment="does not exist",
    ),
    C(
        "lsuv-bad-start-plan",
        "lsuv",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--plan-out",
        "{tmp}/l.toml",
        fragment="plan version 2",
        files={"p.toml": plan(head="version = 2\n")},
    ),
    C(
        "lsuv-inputs-missing",
        "lsuv",
        MLP,
        "--plan-out",
        "{tmp}/l.toml",
        "--inputs",
        "{tmp}/nope.safetensors",
        fragment="--inputs '",
    ),
    C(
        "lsuv-inputs-not-a-tensor-container",
        "lsuv",
        MLP,
        "--plan-out",
        "{tmp}/l.toml",
        "--inputs",
        "{tmp}/x.pt",
        fragment="holds a int, not a tensor",
        files={"x.pt": lambda: _saved(7)},
    ),
    C(
        "lsuv-on-meta",
        "lsuv",
        MLP,
        "--plan-out",
        "{tmp}/l.toml",
        "--device",
        "meta",
        fragment="not meta",
    ),
    # -- serve and the TUI: checked before anything starts
    C("serve-missing-file", "serve", "{tmp}/nope.py:Net", fragment="not found"),
    C("serve-name-typo", "serve", f"{ZOO}:Shraed", fragment="did you mean 'Shared'?"),
    C("serve-bad-device", "serve", MLP, "--device", "tpu", fragment="unknown device"),
    C(
        "serve-bad-plan",
        "serve",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="plan version 2",
        files={"p.toml": plan(head="version = 2\n")},
    ),
    C("serve-bad-port", "serve", MLP, "--port", "70000", fragment="--port must be"),
    C("tui-target-no-colon", "plan.toml", fragment="TARGET 'plan.toml' must be"),
    C("tui-bad-device", MLP, "--device", "tpu", fragment="unknown device 'tpu'"),
    C("tui-bad-kwargs", MLP, "--kwargs", "{", fragment="not valid JSON"),
    C("tui-bad-input-shape", MLP, "--input-shape", "8,x", fragment="'8,x' must be"),
    C("tui-bad-input-dtype", MLP, "--input-dtype", "str", fragment="unknown --input-dtype"),
    C(
        "tui-bad-input-dtype-list",
        MLP,
        "--input-dtype",
        "float32,str",
        fragment="unknown --input-dtype 'str'",
    ),
    C("tui-bad-seed", MLP, "--seed", "-3", fragment="--seed: must be an integer 0 or more"),
]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``: files with their bytes, folders as None."""
    result: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        result[key] = None if path.is_dir() else path.read_bytes()
    return result


def one_error_line(result, fragment: str) -> str:
    assert "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    line = lines[0]
    assert line.startswith("error: "), line
    assert fragment in line, line
    return line


def prepare(case: Case, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    if case.skip_as_root and os.geteuid() == 0:
        pytest.skip("root ignores folder permissions; see export-unwritable-folder")
    for name, content in case.files.items():
        (tmp / name).write_bytes(content() if callable(content) else content)
    if case.setup is not None:
        case.setup(tmp)
    monkeypatch.chdir(tmp)  # anything written relative to the cwd would show up here too
    if case.patch is not None:
        case.patch(monkeypatch)
    return [arg.replace("{tmp}", str(tmp)) for arg in case.args]


def run_bad_input(case: Case, cli, tmp_path, monkeypatch, snapshot=None) -> str:  # noqa: ANN001
    """Run ``case`` and assert the contract of every bad input: the case's exit status, an
    empty stdout, exactly one ``error:`` line naming the problem, the folder unchanged
    (``snapshot`` records it; the default reads every file). Returns the error line."""
    snapshot = snapshot or globals()["snapshot"]
    args = prepare(case, tmp_path, monkeypatch)
    before = snapshot(tmp_path)
    result = cli(*args)
    monkeypatch.undo()
    assert result.code == case.code, result.err
    assert result.out == ""
    line = one_error_line(result, case.fragment)
    assert snapshot(tmp_path) == before
    return line


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, cli, tmp_path, monkeypatch):
    run_bad_input(case, cli, tmp_path, monkeypatch)


def test_the_table_is_big_enough():
    assert len(CASES) >= 40
    assert len({c.values[0].name for c in CASES}) == len(CASES)


# The same cases as a user runs them: a real process, real exit codes, nothing leaked.
SUBPROCESS_CASES = (
    "target-sys-exit-on-import",
    "forward-sys-exit",
    "ctor-recursion",
    "ckpt-truncated-pt",
    "plan-not-utf8",
    "export-same-file-twice",
)


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(name, tmp_path, monkeypatch):
    case = next(c.values[0] for c in CASES if c.values[0].name == name)
    args = prepare(case, tmp_path, monkeypatch)
    before = snapshot(tmp_path)
    result = run_cli_subprocess(*args, cwd=tmp_path)
    assert result.code == 2, result.err
    assert result.out == ""
    one_error_line(result, case.fragment)
    assert snapshot(tmp_path) == before


def test_debug_lets_the_exception_through(cli):
    from inittui.core.errors import InittuiError

    with pytest.raises(InittuiError, match="SystemExit: 3"):
        cli("inspect", f"{CTORS}:Exits", "--debug")


def test_a_sys_exit_anywhere_in_a_command_is_one_line(cli, monkeypatch):
    import inittui.core.tree as tree

    def exits(*_args, **_kwargs):
        raise SystemExit(7)

    monkeypatch.setattr(tree, "build_tree", exits)
    result = cli("inspect", MLP, "--json")
    assert result.code == 2 and result.out == ""
    one_error_line(result, "called sys.exit(7)")


# --------------------------------------------------------------------------- valid edges


def test_an_empty_plan_is_valid_and_changes_nothing(cli, tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    result = cli("plan", MLP, "--plan", empty, "--json")
    assert result.code == 0, result.err
    assert result.json()["rules"] == []
    out = tmp_path / "w.pt"
    result = cli("export", MLP, "--plan", empty, "--checkpoint", out)
    assert result.code == 0, result.err
    state = torch.load(out, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in _mlp_state().items())


def test_check_failing_is_exit_1_not_an_error(cli, tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_bytes(plan('select = "type:Linear"\nparams = "weight"\nscheme = "zeros"'))
    result = cli("check", MLP, "--plan", bad)
    assert result.code == 1
    assert "check failed" in result.out and result.err == ""


# --------------------------------------------------------------------------- the TUI

SIZE = (80, 24)


async def test_tui_bad_target_shows_the_error_and_stays_up():
    from textual.widgets import Static

    from inittui.tui.app import InitApp

    app = InitApp(f"{ZOO}:Shraed")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ready)
        error = app.query_one("#load-error", Static)
        assert error.display and "did you mean 'Shared'?" in plain(error)
        assert "Traceback" not in plain(error)
        for key in ("p", "e", "o", "s"):  # no model: warnings, not crashes
            await pilot.press(key)
            await pilot.pause()
        assert app.is_running


async def test_tui_opening_a_bad_plan_shows_the_error_and_keeps_the_old_plan(tmp_path):
    from textual.widgets import Input, Static

    from inittui.core.plan import Plan, Rule, plan_to_toml
    from inittui.tui.app import InitApp
    from inittui.tui.screens.dialogs import PathScreen

    start = tmp_path / "start.toml"
    start.write_text(plan_to_toml(Plan((Rule("type:Linear", "zeros", params="bias"),))))
    bad = tmp_path / "bad.toml"
    bad.write_bytes(plan('select = "type:Linear"\nscheme = "kaiming_normel"'))
    app = InitApp(MLP, plan_path=str(start))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        old = app.session.plan
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        app.screen.query_one("#path", Input).value = str(bad)
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "kaiming_normel" in plain(app.screen.query_one("#path-error"))
        )
        error = plain(app.screen.query_one("#path-error", Static))
        assert "\n" not in error.strip() and "Traceback" not in error
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PathScreen))
        assert app.session.plan == old and app.plan_path == str(start)
        assert app.is_running


async def test_tui_invalid_argument_in_the_assign_dialog_is_refused():
    from textual.widgets import Static

    from inittui.tui.app import InitApp
    from inittui.tui.screens.assign import AssignScreen

    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert app.tree_widget.reveal("0")
        await pilot.pause()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
        screen = app.screen
        screen.choose("uniform")
        await pilot.pause()
        for name, value in (("a", "1"), ("b", "0")):
            field = next(w for w in screen.query(".arg") if w.name == name and w.display)
            field.value = value
        await pilot.pause()
        assert "needs a <= b" in plain(screen.query_one("#assign-error", Static))
        screen.action_confirm()
        await pilot.pause()
        assert isinstance(app.screen, AssignScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        assert app.session.plan.rules == ()


TUI_EXPORT_CASES = [
    pytest.param("script", "none/init.py", "does not exist", id="missing-folder"),
    pytest.param("script", "init.txt", "unknown extension '.txt'", id="script-extension"),
    pytest.param("checkpoint", "w.ckpt", "unknown extension '.ckpt'", id="checkpoint-extension"),
    pytest.param("plan", "plan.json", "unknown extension '.json'", id="plan-extension"),
    pytest.param("script", "folder.py", "it is a folder", id="path-is-a-folder"),
]


@pytest.mark.parametrize(("kind", "name", "fragment"), TUI_EXPORT_CASES)
async def test_tui_export_to_a_bad_path_shows_an_error_and_writes_nothing(
    kind, name, fragment, tmp_path
):
    from textual.widgets import Checkbox, Input

    from inittui.tui.app import InitApp
    from inittui.tui.screens.export import ExportScreen

    (tmp_path / "folder.py").mkdir()
    before = sorted(tmp_path.rglob("*"))
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        screen = app.screen
        for other in ("script", "checkpoint", "plan"):
            screen.query_one(f"#use-{other}", Checkbox).value = other == kind
            screen.query_one(f"#path-{other}", Input).value = ""
        screen.query_one(f"#path-{kind}", Input).value = str(tmp_path / name)
        await pilot.pause()
        await pilot.press("ctrl+s")
        error = screen.query_one("#export-error")
        await wait_for(pilot, lambda: fragment in plain(error))
        assert "\n" not in plain(error).strip() and "Traceback" not in plain(error)
        assert isinstance(app.screen, ExportScreen) and app.is_running
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen))
    assert sorted(tmp_path.rglob("*")) == before


async def test_tui_export_over_an_existing_file_asks_and_no_keeps_it(tmp_path):
    from textual.widgets import Checkbox, Input

    from inittui.tui.app import InitApp
    from inittui.tui.screens.dialogs import ConfirmScreen
    from inittui.tui.screens.export import ExportScreen

    target = tmp_path / "init.py"
    target.write_text("# mine\n")
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        screen = app.screen
        for other in ("script", "checkpoint", "plan"):
            screen.query_one(f"#use-{other}", Checkbox).value = other == "script"
        screen.query_one("#path-script", Input).value = str(target)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: "already exist" in plain(screen.query_one("#export-error")))
    assert target.read_text() == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.py"]


TUI_PLAN_PATH_CASES = [
    pytest.param("s", "none/plan.toml", "does not exist", id="save-missing-folder"),
    pytest.param("s", "plan.json", "unknown extension '.json'", id="save-extension"),
    pytest.param("s", "folder.toml", "it is a folder", id="save-over-a-folder"),
    pytest.param("o", "missing.toml", "not found", id="open-missing-file"),
    pytest.param("o", "folder.toml", "folder", id="open-a-folder"),
    pytest.param("o", "binary.toml", "it is not UTF-8 text", id="open-binary-file"),
]


@pytest.mark.parametrize(("key", "name", "fragment"), TUI_PLAN_PATH_CASES)
async def test_tui_plan_path_dialogs_refuse_bad_paths_in_one_line(key, name, fragment, tmp_path):
    from textual.widgets import Input, Static

    from inittui.tui.app import InitApp
    from inittui.tui.screens.dialogs import PathScreen

    (tmp_path / "folder.toml").mkdir()
    (tmp_path / "binary.toml").write_bytes(b"\x00\xff\x10 not toml")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        app.screen.query_one("#path", Input).value = str(tmp_path / name)
        await pilot.press("enter")
        await wait_for(pilot, lambda: fragment in plain(app.screen.query_one("#path-error")))
        error = plain(app.screen.query_one("#path-error", Static))
        assert "\n" not in error.strip() and "Traceback" not in error
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PathScreen))
        assert app.is_running and not app.session.plan.rules
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
