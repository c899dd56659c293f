"""What tests share: the repo's paths, the plan files under tests/plans/ and runners for the
command line (in-process and as a subprocess).

Import it as ``from harness import ...`` (pytest puts tests/ on ``sys.path``); the fixtures
built on it live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(__file__).resolve().parent / "models"
SAMPLES = ROOT / "sample_models"
PLANS = Path(__file__).resolve().parent / "plans"
# He init for every Linear: kaiming_normal(relu) weights, zero biases.
HE_PLAN_FILE = PLANS / "he.toml"
HE_PLAN = HE_PLAN_FILE.read_text(encoding="utf-8")
# A Llama-style plan: defaults, normal(0.02), a scaled down_proj, kaiming q/k, trunc_normal
# embeddings (tests/models/llama.py; the 70B-on-meta tests and benchmarks/bench_meta_70b.py).
LLAMA_PLAN_FILE = PLANS / "llama.toml"
LLAMA_PLAN = LLAMA_PLAN_FILE.read_text(encoding="utf-8")
# The keys docs/json.md promises for each layer of ``preview --json``.
PREVIEW_LAYER_KEYS = frozenset(
    {"path", "type", "call", "leaf", "out_shape", "out_mean", "out_std", "zero_fraction",
     "grad_std"}
)  # fmt: skip


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


def run_cli(*args: object) -> CliResult:
    """Run ``inittui ARGS`` in this process, capturing stdout and stderr."""
    from inittui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_subprocess(*args: object, cwd: Path = ROOT, timeout: float = 120) -> CliResult:
    """Run ``python -m inittui ARGS`` in a fresh process (wide terminal)."""
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "inittui", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
