"""Bad input, numbers: every numeric input is finite and fits the parameter's dtype, seeds
have one range everywhere, and lsuv writes nothing on any error. The rows follow
``tests/test_bad_input.py`` (same ``Case``, same assertions: exit 2, one ``error:`` line,
nothing on stdout, the folder untouched)."""

from __future__ import annotations

import pytest
from harness import MODELS
from test_bad_input import MLP, ZOO, C, Case, plan, run_bad_input

from inittui.core.limits import SEED_MAX

RECURRENT = f"{ZOO}:Recurrent"
TOO_BIG_SEED = str(SEED_MAX + 1)
BIG_INT = "1" + "0" * 400  # a TOML integer beyond float64


def export(name: str, rule: str, *extra: str, fragment: str, model: str = MLP) -> pytest.param:
    """``export`` of a one-rule plan to a script and a checkpoint (neither may appear)."""
    return C(
        name,
        "export",
        model,
        "--plan",
        "{tmp}/p.toml",
        "--script",
        "{tmp}/init.py",
        "--checkpoint",
        "{tmp}/w.pt",
        *extra,
        fragment=fragment,
        files={"p.toml": plan(rule)},
    )


def lsuv(name: str, *extra: str, fragment: str) -> pytest.param:
    return C(name, "lsuv", MLP, "--plan-out", "{tmp}/l.toml", *extra, fragment=fragment)


WEIGHTS = 'select = "**"\nparams = "weight"\n'
LSUV_NUMBERS = "--target-std and --tol must be positive finite numbers"

CASES = [
    # -- scheme arguments whose values overflow the dtype
    export(
        "std-1e300",
        WEIGHTS + 'scheme = "normal"\nstd = 1e300',
        fragment="normal gives values up to 9e+300, which do not fit in float32",
    ),
    export(
        "sparse-std-1e300",
        WEIGHTS + 'scheme = "sparse"\nsparsity = 0.5\nstd = 1e300',
        fragment="sparse gives values up to",
    ),
    export(
        "orthogonal-gain-1e39",
        WEIGHTS + 'scheme = "orthogonal"\ngain = 1e39',
        fragment="orthogonal gives values up to",
    ),
    export(
        "std-1e5-float16",
        WEIGHTS + 'scheme = "normal"\nstd = 1e5',
        "--dtype",
        "float16",
        fragment="which do not fit in float16 (largest value 65504)",
    ),
    export(
        "std-integer-beyond-float64",
        WEIGHTS + f'scheme = "normal"\nstd = {BIG_INT}',
        fragment='key "std" of scheme normal must be a finite number',
    ),
    # -- scale
    export(
        "scale-1e300-float32",
        WEIGHTS + 'scheme = "xavier_uniform"\nscale = 1e300',
        fragment="scale=1e+300 does not fit in float32",
    ),
    export(
        "scale-1e300-float16",
        WEIGHTS + 'scheme = "xavier_uniform"\nscale = 1e300',
        "--dtype",
        "float16",
        fragment="scale=1e+300 does not fit in float16",
    ),
    export(
        "scale-1e39-on-zeros",  # 0 * inf is nan
        WEIGHTS + 'scheme = "zeros"\nscale = 1e39',
        fragment="scale=1e+39 does not fit in float32",
    ),
    export(
        "scale-times-values-overflow",
        WEIGHTS + 'scheme = "normal"\nscale = 1e38',
        fragment="scale=1e+38 makes values up to 9e+38, which do not fit in float32",
    ),
    export(
        "scale-1e3-float16-uniform",
        WEIGHTS + 'scheme = "uniform"\na = -100.0\nb = 100.0\nscale = 1e3',
        "--dtype",
        "float16",
        fragment="makes values up to 1e+05, which do not fit in float16",
    ),
    export(
        "scale-integer-beyond-float64",
        WEIGHTS + f'scheme = "zeros"\nscale = {BIG_INT}',
        fragment="scale must be a finite number",
    ),
    # -- forget_bias
    export(
        "forget-bias-1e39-float32",
        'select = "lstm"\nparams = "bias_*"\nscheme = "zeros"\nforget_bias = 1e39',
        fragment="forget_bias=1e+39 does not fit in float32",
        model=RECURRENT,
    ),
    export(
        "forget-bias-integer-beyond-float64",
        f'select = "lstm"\nparams = "bias_*"\nscheme = "zeros"\nforget_bias = {BIG_INT}',
        fragment="forget_bias must be a finite number",
        model=RECURRENT,
    ),
    # -- lsuv: target and tolerance, nothing written (with and without --json)
    lsuv("lsuv-target-std-inf", "--target-std", "inf", fragment=LSUV_NUMBERS),
    lsuv("lsuv-target-std-nan", "--target-std", "nan", fragment=LSUV_NUMBERS),
    lsuv("lsuv-target-std-nan-json", "--target-std", "nan", "--json", fragment=LSUV_NUMBERS),
    lsuv("lsuv-target-std-inf-json", "--target-std", "inf", "--json", fragment=LSUV_NUMBERS),
    lsuv("lsuv-target-std-negative", "--target-std", "-1", fragment=LSUV_NUMBERS),
    lsuv("lsuv-target-variance-overflows", "--target-std", "1e200", fragment=LSUV_NUMBERS),
    lsuv("lsuv-tol-nan", "--tol", "nan", fragment=LSUV_NUMBERS),
    lsuv("lsuv-tol-nan-json", "--tol", "nan", "--json", fragment=LSUV_NUMBERS),
    lsuv("lsuv-tol-inf-json", "--tol", "inf", "--json", fragment=LSUV_NUMBERS),
    lsuv("lsuv-seed-too-big", "--seed", TOO_BIG_SEED, fragment="must be at most 2**64 - 1"),
    # -- seeds: one range, one message, on the command line and in plans
    C(
        "cli-seed-2-64",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--seed",
        TOO_BIG_SEED,
        fragment=f"--seed: must be at most 2**64 - 1 ({SEED_MAX}), got {TOO_BIG_SEED}",
        files={"p.toml": plan()},
    ),
    C(
        "preview-seed-2-64",
        "preview",
        MLP,
        "--seed",
        TOO_BIG_SEED,
        fragment=f"must be at most 2**64 - 1 ({SEED_MAX}), got {TOO_BIG_SEED}",
    ),
    C(
        "plan-seed-2-64",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment=f"seed must be at most 2**64 - 1 ({SEED_MAX}), got {TOO_BIG_SEED}",
        files={"p.toml": plan(head=f"version = 1\nseed = {TOO_BIG_SEED}\n")},
    ),
    C(
        "plan-seed-2-80",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="seed must be at most 2**64 - 1",
        files={"p.toml": plan(head=f"version = 1\nseed = {2**80}\n")},
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_number(case: Case, cli, tmp_path, monkeypatch):
    run_bad_input(case, cli, tmp_path, monkeypatch)


def test_the_largest_seed_works_in_both_places(cli, tmp_path):
    (tmp_path / "p.toml").write_bytes(
        plan('select = "**"\nscheme = "normal"', head=f"version = 1\nseed = {SEED_MAX}\n")
    )
    from_file = cli("plan", MLP, "--plan", str(tmp_path / "p.toml"), "--json")
    assert from_file.code == 0, from_file.err
    from_option = cli("plan", MLP, "--plan", str(tmp_path / "p.toml"), "--seed", str(SEED_MAX))
    assert from_option.code == 0, from_option.err
    preview = cli("preview", MLP, "--seed", str(SEED_MAX), "--json")
    assert preview.code == 0, preview.err


def test_values_that_fit_still_export(cli, tmp_path):
    """The limits are the dtype's: large but representable values pass."""
    (tmp_path / "p.toml").write_bytes(
        plan(WEIGHTS + 'scheme = "normal"\nstd = 1e37', WEIGHTS + 'scheme = "ones"\nscale = 3e38')
    )
    result = cli("plan", MLP, "--plan", str(tmp_path / "p.toml"))
    assert result.code == 0, result.err
    (tmp_path / "q.toml").write_bytes(plan(WEIGHTS + 'scheme = "normal"\nstd = 1e300'))
    wide = cli("plan", MLP, "--plan", str(tmp_path / "q.toml"), "--dtype", "float64")
    assert wide.code == 0, wide.err


@pytest.mark.timeout(10)
def test_a_glob_that_would_backtrack_resolves_quickly(cli, tmp_path):
    """Not a bad input: ``*a*a*a*a*a*a*a*a*b`` on 60-character paths took minutes as a
    regex; the second rule (``**a*a*a*a*a*a*a*a``) does match the long names."""
    (tmp_path / "p.toml").write_bytes(
        plan(
            'select = "*a*a*a*a*a*a*a*a*b"\nscheme = "ones"',
            'select = "**a*a*a*a*a*a*a*a"\nparams = "weight"\nscheme = "zeros"',
            'select = "**a*a*a*a*a*a*a*a*b"\nscheme = "ones"',
        )
    )
    target = f"{MODELS}/long_names.py:LongNames"
    result = cli("plan", target, "--plan", str(tmp_path / "p.toml"), "--json")
    assert result.code == 0, result.err
    rules = {p["name"]: p["rule"] for p in result.json()["parameters"]}
    long = "a" * 60
    nested = f"{'a' * 30}.{'a' * 29}"
    assert rules == {
        f"{nested}.weight": 2,
        f"{nested}.bias": None,
        f"{long}.weight": 2,
        f"{long}.bias": None,
    }


def test_the_table_is_big_enough():
    assert len(CASES) >= 25
