"""Shared fixtures: the repo root, a runner for the CLI in-process and as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(__file__).resolve().parent / "models"
SAMPLES = ROOT / "sample_models"
# The keys DESIGN.md promises for each layer of ``preview --json``.
PREVIEW_LAYER_KEYS = frozenset(
    {"path", "type", "call", "leaf", "out_shape", "out_mean", "out_std", "zero_fraction",
     "grad_std"}
)  # fmt: skip


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """Run ``inittui ARGS`` in-process; returns exit code, stdout, stderr."""
    from inittui.cli import main

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_cli_subprocess(*args: str, cwd: Path = ROOT, timeout: float = 120) -> CliResult:
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
