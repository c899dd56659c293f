"""Bad input, ``--blocks K`` (preview, check, lsuv): a model with no repeated blocks, K < 1,
K at or above the depth (refused: run without --blocks), --load or --device meta with it.
The rows follow ``tests/test_bad_input.py`` (same ``Case``, same assertions: exit 2, one
``error:`` line, nothing on stdout, the folder untouched)."""

from __future__ import annotations

import pytest
from harness import MODELS
from test_bad_input import C, Case, run_bad_input

NET = f"{MODELS}/blocks_models.py"

CASES = [
    C(
        "blocks-no-repeated-blocks",
        "preview", f"{NET}:Flat", "--blocks", "2",
        fragment="--blocks: Flat has no repeated blocks",
    ),
    C(
        "blocks-zero",
        "check", f"{NET}:ResidualMLP", "--blocks", "0",
        fragment="--blocks must be 1 or more, got 0",
    ),
    C(
        "blocks-negative",
        "preview", f"{NET}:ResidualMLP", "--blocks", "-3",
        fragment="--blocks must be 1 or more, got -3",
    ),
    C(
        "blocks-whole-depth",
        "check", f"{NET}:ResidualMLP", "--blocks", "12",
        fragment="--blocks 12 keeps every block of blocks (12); give --blocks below 12",
    ),
    C(
        "blocks-beyond-depth",
        "preview", f"{NET}:ScaledChain", "--blocks", "40",
        fragment="run without --blocks to preview the whole model",
    ),
    C(
        "blocks-not-a-number",
        "preview", f"{NET}:ResidualMLP", "--blocks", "two",
        fragment="--blocks: invalid int value: 'two'",
    ),
    C(
        "blocks-with-load",
        "preview", f"{NET}:ResidualMLP", "--blocks", "2", "--load", "{tmp}/w.pt",
        fragment="--blocks builds the model on meta: --load CKPT cannot go with it",
    ),
    C(
        "blocks-on-meta",
        "check", f"{NET}:ResidualMLP", "--blocks", "2", "--device", "meta",
        fragment="--blocks needs values: use --device cpu, cuda or mps, not meta",
    ),
    C(
        "blocks-lsuv-no-repeated-blocks",
        "lsuv", f"{NET}:Flat", "--blocks", "1", "--plan-out", "{tmp}/out.toml",
        fragment="--blocks: Flat has no repeated blocks",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_blocks(case: Case, cli, tmp_path, monkeypatch):
    line = run_bad_input(case, cli, tmp_path, monkeypatch)
    assert "Traceback" not in line
