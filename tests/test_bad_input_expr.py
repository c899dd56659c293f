"""Bad input, expressions: an expression that cannot be read or evaluated for a parameter is
one ``error:`` line naming the rule, the key, the text (and the parameter), exit 2, nothing
written. The rows follow ``tests/test_bad_input.py``."""

from __future__ import annotations

import pytest
from test_bad_input import MLP, C, Case, plan, run_bad_input

WEIGHTS = 'select = "**"\nparams = "weight"\nscheme = "normal"\n'


def export(name: str, rule: str, fragment: str) -> pytest.param:
    """``export`` of a one-rule plan on the MLP (Sequential(Linear, ReLU, Linear))."""
    return C(
        name,
        "export",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        "--checkpoint",
        "{tmp}/w.pt",
        fragment=fragment,
        files={"p.toml": plan(rule)},
    )


CASES = [
    export(
        "expr-unknown-name",
        WEIGHTS + 'std = "0.02 / sqrt(2 * n_layers)"',
        "rule 1 (select '**'): std = \"0.02 / sqrt(2 * n_layers)\" uses unknown name 'n_layers'",
    ),
    export("expr-division-by-zero", WEIGHTS + 'std = "1 / 0"', 'std = "1 / 0" divides by zero'),
    export(
        "expr-division-by-zero-per-parameter",
        WEIGHTS + 'std = "1 / (fan_in - 4)"',
        'std = "1 / (fan_in - 4)" divides by zero (1 / 0) for 0.weight',
    ),
    export(
        "expr-negative-std",
        WEIGHTS + 'std = "0.02 - fan_in"',
        'std = "0.02 - fan_in" gives -3.98 for 0.weight; std must be >= 0',
    ),
    export(
        "expr-negative-std-constant",
        WEIGHTS + 'std = "-0.5"',
        'std = "-0.5" gives -0.5; std must be >= 0',
    ),
    export(
        "expr-layer-without-container",
        WEIGHTS + 'std = "0.02 / (layer + 1)"',
        "uses layer, but no repeated container (a ModuleList or Sequential of same-type "
        "modules) is above it for 0.weight",
    ),
    export(
        "expr-missing-config",
        WEIGHTS + 'std = "0.02 / config.n_layer"',
        "uses config.n_layer, but Sequential has no config attribute",
    ),
    export(
        "expr-missing-arg",
        WEIGHTS + 'std = "1 / arg.hidden"',
        "without a constructor argument 'hidden'; pass --arg hidden=VALUE",
    ),
    export(
        "expr-syntax-error", WEIGHTS + 'std = "0.02 /"', 'std = "0.02 /" is not a valid expression'
    ),
    export(
        "expr-disallowed-call",
        WEIGHTS + "std = \"__import__('os')\"",
        "calls __import__; the functions are sqrt, log, exp, min, max, abs",
    ),
    export(
        "expr-disallowed-subscript",
        WEIGHTS + 'std = "fan_in[0]"',
        "a subscript [...] is not allowed",
    ),
    export(
        "expr-overflow",
        WEIGHTS + 'std = "10 ** 1000"',
        'std = "10 ** 1000" overflows',
    ),
    export(
        "expr-on-an-integer-argument",
        'select = "**"\nparams = "weight"\nscheme = "dirac"\ngroups = "1 + 1"',
        'key "groups" of scheme dirac must be an integer',
    ),
    export(
        "expr-scale-unknown-name",
        WEIGHTS + 'scale = "big"',
        "scale must be a finite number or an expression; scale = \"big\" uses unknown name 'big'",
    ),
    export(
        "expr-uniform-a-above-b",
        'select = "**"\nparams = "weight"\nscheme = "uniform"\na = "fan_in"\nb = 1.0',
        'a = "fan_in" gives 4.0 for 0.weight; scheme uniform',
    ),
    export(
        "expr-choice-argument",
        'select = "**"\nparams = "weight"\nscheme = "kaiming_normal"\nmode = "fan_in * 2"',
        'bad value "fan_in * 2" for key "mode"',
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_expr(case: Case, cli, tmp_path, monkeypatch):
    run_bad_input(case, cli, tmp_path, monkeypatch)
