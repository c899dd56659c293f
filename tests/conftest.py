"""Shared fixtures. Paths, plans and CLI runners are in ``harness.py`` (import from there)."""

from __future__ import annotations

import pytest
from harness import (  # noqa: F401  (re-exported for old ``from conftest import`` callers)
    MODELS,
    PREVIEW_LAYER_KEYS,
    ROOT,
    SAMPLES,
    CliResult,
    run_cli_subprocess,
)


@pytest.fixture
def cli(capsys):
    """Run ``inittui ARGS`` in-process; returns exit code, stdout, stderr."""
    from inittui.cli import main

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
