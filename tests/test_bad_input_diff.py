"""Bad input, ``inittui diff``: a side that is none of the four forms, missing files, a
checkpoint for another model, a plan that does not resolve, an unknown preset. The rows
follow ``tests/test_bad_input.py`` (same ``Case``, same assertions: exit 2, one ``error:``
line, nothing on stdout, the folder untouched)."""

from __future__ import annotations

import pytest
from test_bad_input import MLP, C, Case, _mlp_state, _saved, plan, run_bad_input

CASES = [
    C(
        "diff-unknown-side",
        "diff", MLP, "current", "weights.txt",
        fragment="cannot tell what B 'weights.txt' is; give a plan file (.toml), preset:NAME",
    ),
    C(
        "diff-unknown-side-a",
        "diff", MLP, "Current", "current",
        fragment="cannot tell what A 'Current' is",
    ),
    C(
        "diff-missing-plan",
        "diff", MLP, "{tmp}/nope.toml", "current",
        fragment="plan file",
    ),
    C(
        "diff-missing-checkpoint",
        "diff", MLP, "current", "{tmp}/nope.pt",
        fragment="nope.pt' (side B) not found; check the path",
    ),
    C(
        "diff-checkpoint-of-another-model",
        "diff", MLP, "current", "{tmp}/w.pt",
        fragment="w.pt does not match the model: shape mismatch",
        files={"w.pt": lambda: _saved(_mlp_state(width=8))},
    ),
    C(
        "diff-plan-does-not-resolve",
        "diff", MLP, "{tmp}/p.toml", "current",
        fragment="kaiming_normal",
        files={"p.toml": plan('select = "**"\nparams = "bias"\nscheme = "kaiming_normal"')},
    ),
    C(
        "diff-bad-plan-key",
        "diff", MLP, "current", "{tmp}/p.toml",
        fragment='unknown key "stdd" for scheme normal',
        files={"p.toml": plan('select = "**"\nscheme = "normal"\nstdd = 1.0')},
    ),
    C("diff-unknown-preset", "diff", MLP, "current", "preset:nope", fragment="nope"),
    C(
        "diff-on-meta",
        "diff", MLP, "current", "current", "--device", "meta",
        fragment="diff needs values: use --device cpu, cuda or mps, not meta",
    ),
    C(
        "diff-preview-batch-0",
        "diff", MLP, "current", "current", "--preview", "--batch", "0",
        fragment="--batch must be 1 or more",
    ),
    C("diff-one-side-only", "diff", MLP, "current", fragment="required: B"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_diff(case: Case, cli, tmp_path, monkeypatch):
    line = run_bad_input(case, cli, tmp_path, monkeypatch)
    assert "Traceback" not in line
