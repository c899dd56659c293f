"""Bad input, splits: ``split`` must be a count >= 1 or positive sizes that add up to the
parameter's output dim, never beside ``per_gate``, never on a 0-dim tensor. The rows follow
``tests/test_bad_input.py`` (same ``Case``, same assertions: exit 2, one ``error:`` line,
nothing on stdout, the folder untouched)."""

from __future__ import annotations

import pytest
from harness import MODELS
from test_bad_input import ZOO, C, Case, plan, run_bad_input

SPLITS = f"{MODELS}/split_models.py"
GPT2_ATTN = f"{SPLITS}:GPT2Attention"


def plan_case(name: str, rule: str, *, fragment: str, model: str = f"{SPLITS}:Fused") -> object:
    """``plan`` of a one-rule plan (``--json``: nothing may reach stdout)."""
    return C(
        name,
        "plan",
        model,
        "--plan",
        "{tmp}/p.toml",
        "--json",
        fragment=fragment,
        files={"p.toml": plan(rule)},
    )


QKV = 'select = "qkv"\nparams = "weight"\nscheme = "xavier_uniform"\n'
C_ATTN = 'select = "c_attn"\nparams = "weight"\nscheme = "xavier_uniform"\n'
SPLIT_FORM = "split must be a number of equal blocks or a list of positive block sizes"

CASES = [
    plan_case("split-zero", QKV + "split = 0", fragment="split must be at least 1, got 0"),
    plan_case("split-negative", QKV + "split = -1", fragment="split must be at least 1, got -1"),
    plan_case("split-float", QKV + "split = 2.5", fragment=f"{SPLIT_FORM}, got 2.5"),
    plan_case("split-string", QKV + 'split = "x"', fragment=f"{SPLIT_FORM}, got 'x'"),
    plan_case("split-bool", QKV + "split = true", fragment=f"{SPLIT_FORM}, got True"),
    plan_case("split-empty-list", QKV + "split = []", fragment=f"{SPLIT_FORM}, got []"),
    plan_case("split-zero-size", QKV + "split = [96, 0]", fragment=f"{SPLIT_FORM}, got [96, 0]"),
    plan_case(
        "split-sizes-do-not-add-up",
        C_ATTN + "split = [64, 64]",
        fragment="split = [64, 64] adds up to 128 but c_attn.weight's output dim 1 "
        "has 384; give sizes that add up to 384",
        model=GPT2_ATTN,
    ),
    plan_case(
        "split-does-not-divide",
        QKV + "split = 5",
        fragment="split = 5 does not divide qkv.weight's output dim 0 of size 96",
    ),
    plan_case(
        "split-with-per-gate",
        'select = "type:LSTM"\nscheme = "orthogonal"\nper_gate = true\nsplit = 4',
        fragment="per_gate and split both split the tensor; keep one of them",
        model=f"{ZOO}:Recurrent",
    ),
    plan_case(
        "split-scalar",
        'select = ""\nparams = "alpha"\nscheme = "normal"\nsplit = 1',
        fragment="split needs a tensor with dimensions, alpha is a scalar (0-dim)",
        model=f"{SPLITS}:Scalar",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_split(case: Case, cli, tmp_path, monkeypatch):
    run_bad_input(case, cli, tmp_path, monkeypatch)
