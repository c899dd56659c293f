"""The scheme table: torch parity, statistics, validation, shapes, code, PyTorch defaults."""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import init

from inittui.core import runtime
from inittui.core.errors import InittuiError
from inittui.core.schemes import (
    REQUIRED,
    SCHEMES,
    Expected,
    SchemeError,
    default_init,
    fans,
    get_scheme,
)

SQRT5 = math.sqrt(5.0)
HALF = (torch.bfloat16, torch.float16)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# (scheme, args) cases, with non-default arguments, covering every scheme in the table.
CASES: list[tuple[str, dict]] = [
    ("uniform", {}),
    ("uniform", {"a": -0.3, "b": 0.7}),
    ("normal", {"mean": 0.5, "std": 0.02}),
    ("trunc_normal", {"std": 0.02}),
    ("trunc_normal", {"mean": 0.0, "std": 1.0, "a": -0.1, "b": 0.1}),  # rejection path
    ("constant", {"val": 0.25}),
    ("ones", {}),
    ("zeros", {}),
    ("eye", {}),
    ("dirac", {"groups": 2}),
    ("xavier_uniform", {"gain": 2.0}),
    ("xavier_normal", {}),
    ("kaiming_uniform", {"a": SQRT5}),
    ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("orthogonal", {"gain": 1.5}),
    ("sparse", {"sparsity": 0.3}),
    ("lecun_normal", {}),
    ("variance_scaling", {}),
    (
        "variance_scaling",
        {"variance_scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"},
    ),
    ("variance_scaling", {"variance_scale": 0.5, "mode": "fan_avg", "distribution": "uniform"}),
    ("keep", {}),
]
CASE_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]


def test_cases_cover_the_table():
    assert {name for name, _ in CASES} == set(SCHEMES)
    assert list(SCHEMES)[:3] == ["uniform", "normal", "trunc_normal"]


def torch_reference(name: str, t: torch.Tensor, args: dict, g: torch.Generator | None) -> None:
    """Call torch's own function the way a user would, on ``t``."""
    a = SCHEMES[name].validate(args)
    if name == "keep":
        return
    if name == "lecun_normal":
        init.kaiming_normal_(t, mode="fan_in", nonlinearity="linear", generator=g)
    elif name == "variance_scaling":  # JAX's definition with torch's draws
        fan_in, fan_out = init._calculate_fan_in_and_fan_out(t)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[a["mode"]]
        std = math.sqrt(a["variance_scale"] / n)
        if a["distribution"] == "truncated_normal":
            s = std / 0.87962566103423978
            init.trunc_normal_(t, mean=0.0, std=s, a=-2 * s, b=2 * s, generator=g)
        elif a["distribution"] == "untruncated_normal":
            init.normal_(t, mean=0.0, std=std, generator=g)
        else:
            bound = math.sqrt(3 * a["variance_scale"] / n)
            init.uniform_(t, a=-bound, b=bound, generator=g)
    elif name == "orthogonal" and t.dtype in HALF:
        work = torch.empty(t.shape, dtype=torch.float32)
        init.orthogonal_(work, generator=g, **a)
        t.copy_(work)
    elif SCHEMES[name].uses_generator:
        getattr(init, name + "_")(t, generator=g, **a)
    else:
        getattr(init, name + "_")(t, **a)


def shapes_for(name: str) -> list[tuple[int, ...]]:
    scheme = SCHEMES[name]
    if name == "eye":
        return [(5, 7), (7, 5)]
    if name == "dirac":
        return [(8, 4, 3), (8, 4, 3, 3), (4, 4, 3, 3, 3)]
    if name == "sparse":
        return [(20, 10), (7, 3)]
    shapes = [(64, 32), (16, 8, 3, 3)]
    if scheme.min_dims == 0:
        shapes += [(33,), ()]
    return shapes


# -- parity with torch's own functions --------------------------------------------------


# torch.nn.init.sparse_ ignores the generator for its zero pattern: tested on its own below.
PARITY_CASES = [(name, args) for name, args in CASES if name != "sparse"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *HALF], ids=str)
@pytest.mark.parametrize(("name", "args"), PARITY_CASES, ids=lambda x: str(x))
def test_apply_equals_torch(name, args, dtype):
    scheme = SCHEMES[name]
    for seed, shape in enumerate(shapes_for(name)):
        ours = torch.full(shape, 7.0, dtype=dtype)
        theirs = ours.clone()
        scheme.apply(ours, args, gen(seed))
        torch_reference(name, theirs, args, gen(seed))
        assert torch.equal(ours, theirs), (name, shape, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *HALF], ids=str)
def test_sparse_is_torch_algorithm_with_generator(dtype):
    """With generator=None it is torch's sparse_ bit for bit; with one it is reproducible."""
    scheme = SCHEMES["sparse"]
    for shape, sparsity in [((20, 10), 0.3), ((7, 3), 0.5), ((9, 4), 0.0)]:
        torch.manual_seed(5)
        ours = torch.empty(shape, dtype=dtype)
        scheme.apply(ours, {"sparsity": sparsity, "std": 0.5}, None)
        torch.manual_seed(5)
        theirs = torch.empty(shape, dtype=dtype)
        init.sparse_(theirs, sparsity, std=0.5)
        assert torch.equal(ours, theirs)

        results = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            t = torch.empty(shape, dtype=dtype)
            scheme.apply(t, {"sparsity": sparsity, "std": 0.5}, gen(3))
            results.append(t)
        assert torch.equal(results[0], results[1]), "must not depend on the global RNG"
        dense = torch.empty(shape, dtype=dtype).normal_(0, 0.5, generator=gen(3))
        zeros = results[0] == 0
        assert torch.equal(results[0][~zeros], dense[~zeros])
        assert (zeros.sum(0) == math.ceil(sparsity * shape[0])).all()


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_orthogonal_half_is_float32_orthogonal_cast(dtype):
    with pytest.raises((NotImplementedError, RuntimeError)):
        init.orthogonal_(torch.empty(16, 8, dtype=dtype))  # why the helper exists
    for shape in [(16, 8), (8, 16), (6, 4, 3, 3)]:
        ours = torch.empty(shape, dtype=dtype)
        SCHEMES["orthogonal"].apply(ours, {"gain": 2.0}, gen(1))
        reference = torch.empty(shape)
        init.orthogonal_(reference, gain=2.0, generator=gen(1))
        assert torch.equal(ours, reference.to(dtype))


def test_orthogonal_strided_tensor_gets_the_contiguous_values():
    weight = torch.empty(8, 4, 3, 3).to(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError):
        init.orthogonal_(weight.clone(memory_format=torch.preserve_format))
    SCHEMES["orthogonal"].apply(weight, {}, gen(0))
    reference = torch.empty(8, 4, 3, 3)
    init.orthogonal_(reference, generator=gen(0))
    assert torch.equal(weight, reference)


def test_every_other_torch_function_works_on_half_types():
    """The claim in runtime's docstring: only orthogonal_ (and sparse_'s RNG) need help."""
    for dtype in HALF:
        for name, args in CASES:
            if SCHEMES[name].function and SCHEMES[name].function.startswith("torch.nn.init."):
                t = torch.empty(shapes_for(name)[0], dtype=dtype)
                torch_reference(name, t, args, gen(0))


def test_apply_respects_requires_grad_leaf():
    weight = nn.Parameter(torch.empty(16, 8))
    for name, args in CASES:
        if SCHEMES[name].applicability(weight.shape) is None:
            SCHEMES[name].apply(weight, args, gen(0))
    assert weight.requires_grad and weight.grad_fn is None


# -- expected statistics ---------------------------------------------------------------


STAT_CASES: list[tuple[str, dict, tuple[int, ...]]] = [
    ("uniform", {"a": -0.3, "b": 0.7}, (1000, 1000)),
    ("normal", {"mean": 0.5, "std": 0.02}, (1000, 1000)),
    ("trunc_normal", {"std": 0.02}, (1000, 1000)),
    ("trunc_normal", {"std": 0.02, "a": -0.04, "b": 0.04}, (1000, 1000)),
    ("trunc_normal", {"mean": 0.3, "std": 1.0, "a": -0.1, "b": 0.1}, (1000, 1000)),
    ("trunc_normal", {"mean": 0.0, "std": 1.0, "a": 0.5, "b": 3.0}, (1000, 1000)),
    ("constant", {"val": -1.5}, (100, 10)),
    ("ones", {}, (100, 10)),
    ("zeros", {}, (100, 10)),
    ("eye", {}, (40, 60)),
    ("dirac", {"groups": 2}, (8, 6, 3, 3)),
    ("xavier_uniform", {"gain": 2.0}, (1000, 500)),
    ("xavier_normal", {}, (500, 100, 3, 3)),
    ("kaiming_uniform", {"a": SQRT5}, (1000, 1000)),
    ("kaiming_uniform", {"nonlinearity": "tanh", "mode": "fan_out"}, (300, 200, 3, 3)),
    ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"}, (1000, 1000)),
    ("kaiming_normal", {"a": 0.2}, (1000, 1000)),
    ("orthogonal", {"gain": 1.5}, (1000, 400)),
    ("orthogonal", {}, (200, 50, 3, 3)),
    ("sparse", {"sparsity": 0.3, "std": 0.05}, (1000, 1000)),
    ("lecun_normal", {}, (1000, 1000)),
]


@pytest.mark.parametrize(("name", "args", "shape"), STAT_CASES, ids=lambda x: str(x))
def test_expected_matches_measured(name, args, shape):
    scheme = SCHEMES[name]
    expected = scheme.expected(shape, args)
    t = torch.empty(shape, dtype=torch.float64)
    scheme.apply(t, args, gen(0))
    n = t.numel()
    mean, std = t.mean().item(), t.std(correction=0).item()
    assert expected.std is not None and expected.mean is not None
    assert math.isclose(std, expected.std, rel_tol=0.02, abs_tol=1e-12), expected.formula
    assert abs(mean - expected.mean) <= 6 * expected.std / math.sqrt(n) + 1e-12
    if expected.bound is not None:
        spread = (t - expected.mean).abs().max().item()
        assert expected.bound * 0.99 <= spread <= expected.bound
    if expected.low is not None:
        assert expected.low <= t.min().item() and t.max().item() <= expected.high
    assert "=" in expected.formula


def test_trunc_normal_expected_std():
    scheme = SCHEMES["trunc_normal"]
    wide = scheme.expected((10, 10), {"std": 0.02, "a": -2.0, "b": 2.0})
    assert math.isclose(wide.std, 0.02, rel_tol=1e-9)  # [-2, 2] is 100 std wide: no cut
    narrow = scheme.expected((10, 10), {"std": 0.02, "a": -0.04, "b": 0.04})
    assert math.isclose(narrow.std, 0.02 * 0.8796, rel_tol=1e-3)  # cut at 2 sigma
    assert (narrow.low, narrow.high) == (-0.04, 0.04)
    assert "absolute" in narrow.formula
    shifted = scheme.expected((10, 10), {"mean": 0.0, "std": 1.0, "a": 0.0, "b": 50.0})
    assert math.isclose(shifted.mean, math.sqrt(2 / math.pi), rel_tol=1e-9)  # half-normal
    assert math.isclose(shifted.std, math.sqrt(1 - 2 / math.pi), rel_tol=1e-9)


def test_kaiming_uniform_sqrt5_is_linear_default_bound():
    expected = SCHEMES["kaiming_uniform"].expected((128, 300), {"a": SQRT5})
    assert math.isclose(expected.bound, 1 / math.sqrt(300), rel_tol=1e-12)
    assert math.isclose(expected.std, 1 / math.sqrt(300) / math.sqrt(3), rel_tol=1e-12)
    assert "sqrt(5)" in expected.formula
    assert "sqrt(5)" not in SCHEMES["kaiming_uniform"].expected((128, 300), {}).formula


def test_xavier_formula_text():
    expected = SCHEMES["xavier_normal"].expected((64, 32), {})
    assert "sqrt(2/(32+64))" in expected.formula and "0.1443" in expected.formula


@pytest.mark.parametrize("nonlinearity", SCHEMES["kaiming_normal"].args[2].choices)
def test_kaiming_gain_for_every_nonlinearity(nonlinearity):
    expected = SCHEMES["kaiming_normal"].expected((8, 16), {"nonlinearity": nonlinearity, "a": 0.3})
    gain = init.calculate_gain(nonlinearity, 0.3)
    assert expected.std == gain / math.sqrt(16)


def test_expected_for_keep_and_empty():
    keep = SCHEMES["keep"].expected((3, 4), {})
    assert keep.mean is None and keep.std is None
    empty = SCHEMES["kaiming_normal"].expected((0, 5), {})
    assert isinstance(empty, Expected) and empty.std is None and "no elements" in empty.formula
    with pytest.raises(SchemeError, match="at least 2 dims"):
        SCHEMES["kaiming_normal"].expected((5,), {})


# -- fans --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=0, max_size=6))
def test_fans_equal_torch(shape):
    ours = fans(shape)
    if len(shape) < 2:
        assert ours is None
        return
    probe = torch.empty(shape, device="meta")
    assert ours == init._calculate_fan_in_and_fan_out(probe)


def test_fans_examples():
    assert fans((64, 32)) == (32, 64)
    assert fans((16, 8, 3, 3)) == (72, 144)
    assert fans((64,)) is None and fans(()) is None


# -- validation --------------------------------------------------------------------------


def test_validate_fills_defaults_and_normalizes_numbers():
    kaiming = get_scheme("kaiming_normal")
    assert kaiming.validate({}) == {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"}
    assert list(kaiming.validate({"nonlinearity": "relu", "a": 1})) == ["a", "mode", "nonlinearity"]
    values = get_scheme("normal").validate({"std": 1})
    assert values == {"mean": 0.0, "std": 1.0} and type(values["std"]) is float
    assert get_scheme("dirac").validate({"groups": 3}) == {"groups": 3}
    assert get_scheme("ones").validate(None) == {}


def test_validate_unknown_key_suggests():
    with pytest.raises(SchemeError) as info:
        get_scheme("kaiming_normal").validate({"nonlinearty": "relu"})
    assert str(info.value) == (
        'unknown key "nonlinearty" for scheme kaiming_normal; did you mean "nonlinearity"? '
        "allowed: a, mode, nonlinearity"
    )
    assert info.value.key == "nonlinearty"
    assert isinstance(info.value, ValueError) and isinstance(info.value, InittuiError)
    with pytest.raises(SchemeError, match=r"takes no arguments"):
        get_scheme("zeros").validate({"gain": 2.0})
    with pytest.raises(SchemeError, match="allowed: gain"):
        get_scheme("xavier_uniform").validate({"scale": 2.0})  # no extras beyond torch's


@pytest.mark.parametrize(
    ("name", "args", "key", "pattern"),
    [
        ("normal", {"std": -1.0}, "std", r'"std".*must be >= 0, got -1.0'),
        ("trunc_normal", {"std": 0.0}, "std", r"must be > 0"),
        ("sparse", {"sparsity": 1.0}, "sparsity", r"must be in \[0, 1\)"),
        ("sparse", {"sparsity": -0.1}, "sparsity", r"must be in \[0, 1\)"),
        ("sparse", {}, "sparsity", r'needs key "sparsity"'),
        ("constant", {}, "val", r'scheme constant needs key "val"'),
        ("normal", {"std": "abc"}, "std", r'"std" of scheme normal must be a number, got str'),
        ("normal", {"std": True}, "std", r"must be a number, got bool"),
        ("normal", {"std": float("nan")}, "std", r"finite"),
        ("constant", {"val": float("inf")}, "val", r"finite"),
        ("dirac", {"groups": 2.0}, "groups", r"must be an integer"),
        ("dirac", {"groups": 0}, "groups", r">= 1"),
        ("xavier_uniform", {"gain": -1.0}, "gain", r">= 0"),
        ("kaiming_normal", {"mode": 3}, "mode", r"must be a string"),
        ("kaiming_uniform", {"mode": "fan_avg"}, "mode", r"allowed: fan_in, fan_out"),
        ("kaiming_normal", {"nonlinearity": "gelu"}, "nonlinearity", r"allowed: linear, .*selu"),
    ],
)
def test_validate_errors(name, args, key, pattern):
    with pytest.raises(SchemeError, match=pattern) as info:
        get_scheme(name).validate(args)
    assert info.value.key == key


def test_validate_cross_argument_checks():
    with pytest.raises(SchemeError, match="a <= b"):
        get_scheme("uniform").validate({"a": 1.0, "b": 0.0})
    with pytest.raises(SchemeError, match="a < b"):
        get_scheme("trunc_normal").validate({"a": 0.5, "b": 0.5})
    assert get_scheme("uniform").validate({"a": 0.0, "b": 0.0}) == {"a": 0.0, "b": 0.0}


def test_get_scheme_unknown():
    with pytest.raises(SchemeError, match=r'"kaiming_normal_".*did you mean "kaiming_normal"'):
        get_scheme("kaiming_normal_")
    with pytest.raises(SchemeError, match="schemes: uniform, normal"):
        get_scheme("nonsense")


def test_table_is_well_formed():
    torch_names = {
        "uniform", "normal", "trunc_normal", "constant", "ones", "zeros", "eye", "dirac",
        "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal",
        "sparse",
    }  # fmt: skip
    assert torch_names | {"lecun_normal", "variance_scaling", "keep"} == set(SCHEMES)
    for name in torch_names:
        params = inspect.signature(getattr(init, name + "_")).parameters
        for arg in SCHEMES[name].args:
            torch_default = params[arg.name].default
            if arg.default is REQUIRED:
                assert torch_default is inspect.Parameter.empty, (name, arg.name)
            else:
                assert arg.default == torch_default, (name, arg.name)
        assert SCHEMES[name].uses_generator == ("generator" in params)
        for helper in SCHEMES[name].helpers:
            assert helper in runtime.RUNTIME_HELPERS


# -- applicability ----------------------------------------------------------------------


def test_applicability_reasons():
    assert SCHEMES["kaiming_normal"].applicability((64,), name="bias") == (
        "kaiming_normal needs a tensor with at least 2 dims to compute fan_in/fan_out; "
        "bias has shape (64,)"
    )
    assert "exactly 2 dims" in SCHEMES["eye"].applicability((4, 4, 3))
    assert "3 to 5 dims" in SCHEMES["dirac"].applicability((4, 4))
    assert "exactly 2 dims" in SCHEMES["sparse"].applicability((4, 4, 1))
    reason = SCHEMES["dirac"].applicability((6, 4, 3), {"groups": 4}, name="conv.weight")
    assert "divisible by groups" in reason and "conv.weight" in reason
    assert SCHEMES["dirac"].applicability((8, 4, 3), {"groups": 4}) is None
    assert SCHEMES["keep"].applicability(()) is None
    assert SCHEMES["normal"].applicability(()) is None
    with pytest.raises(SchemeError, match="divisible"):
        SCHEMES["dirac"].apply(torch.empty(6, 4, 3), {"groups": 4}, None)


APPLICABILITY_SHAPES = [
    (), (0,), (5,), (0, 5), (5, 0), (0, 0), (3, 4, 0), (4, 4, 0), (0, 4, 3), (6, 4, 3),
    (4, 3, 3, 3), (2, 2, 2, 2, 2), (2, 2, 2, 2, 2, 2), (3, 0, 2, 2),
]  # fmt: skip


@pytest.mark.parametrize(("name", "args"), CASES, ids=CASE_IDS)
def test_applicability_agrees_with_torch(name, args):
    """applicability is None exactly when torch's statement runs without error, except that
    a dims rule also refuses empty tensors torch would silently skip (kaiming on (0,))."""
    scheme = SCHEMES[name]
    namespace = {"torch": torch, **runtime.RUNTIME_HELPERS, "g": gen(0)}
    for shape in APPLICABILITY_SHAPES:
        reason = scheme.applicability(shape, args)
        namespace["p"] = torch.empty(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(scheme.code("p", args), namespace)
                raised = None
            except (ValueError, RuntimeError, IndexError, ZeroDivisionError) as error:
                raised = error
        if reason is None:
            assert raised is None, (shape, raised)
        else:
            assert raised is not None or "needs a tensor with" in reason, (shape, reason)
        if reason is None:
            scheme.expected(shape, args)


# -- code ------------------------------------------------------------------------------


def test_code_text():
    kaiming = SCHEMES["kaiming_normal"]
    assert kaiming.code("p", {"nonlinearity": "relu"}) == (
        "torch.nn.init.kaiming_normal_(p, a=0.0, mode='fan_in', nonlinearity='relu', generator=g)"
    )
    assert SCHEMES["ones"].code("w", {}) == "torch.nn.init.ones_(w)"
    assert SCHEMES["keep"].code("p", {}) == "pass"
    assert SCHEMES["orthogonal"].code("p[0:128]", {}, "gen") == (
        "_orthogonal_(p[0:128], gain=1.0, generator=gen)"
    )
    assert SCHEMES["lecun_normal"].code("p", {}) == (
        "torch.nn.init.kaiming_normal_(p, mode='fan_in', nonlinearity='linear', generator=g)"
    )
    third = 0.1 + 0.2
    assert repr(third) in SCHEMES["normal"].code("p", {"std": third})
    with pytest.raises(SchemeError):
        SCHEMES["normal"].code("p", {"sd": 1.0})


@pytest.mark.parametrize(("name", "args"), CASES, ids=CASE_IDS)
def test_code_runs_standalone_like_apply(name, args):
    scheme = SCHEMES[name]
    if name == "normal":
        args = {**args, "std": 0.1 + 0.2}  # a float that needs all 17 digits
    for seed, shape in enumerate(shapes_for(name)):
        start = torch.randn(shape, generator=gen(99))
        applied = start.clone()
        scheme.apply(applied, args, gen(seed))

        namespace: dict = {"torch": torch}
        exec(runtime.helper_source(scheme.helpers), namespace)
        namespace["w"], namespace["rng"] = start.clone(), gen(seed)
        statement = scheme.code("w", args, "rng")
        compile(statement, "<test>", "exec")
        with torch.no_grad():
            exec(statement, namespace)
        assert torch.equal(namespace["w"], applied), (name, shape)


def test_code_on_a_slice_target():
    weight = torch.zeros(12, 5)
    namespace = {"torch": torch, "p": weight, "g": gen(0)}
    exec(SCHEMES["xavier_uniform"].code("p[4:8]", {}), namespace)
    reference = torch.empty(4, 5)
    init.xavier_uniform_(reference, generator=gen(0))
    assert torch.equal(weight[4:8], reference)
    assert (weight[:4] == 0).all() and (weight[8:] == 0).all()


def test_helper_source():
    text = runtime.helper_source(["_sparse_", "_orthogonal_", "_sparse_"])
    assert text.index("def _orthogonal_") < text.index("def _sparse_")
    assert text.count("def _sparse_") == 1
    assert "inittui" not in text.replace("inittui.core", "")
    with pytest.raises(KeyError, match="known: _orthogonal_"):
        runtime.helper_source(["_nope_"])
    assert runtime.helper_source([]) == ""


# -- PyTorch's own defaults ------------------------------------------------------------


def replay(module: nn.Module, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Values our defaults give, drawing from the global RNG in torch's reset order."""
    values = {}
    for name in names or [n for n, _ in module.named_parameters()]:
        param = module.get_parameter(name)
        rule = default_init(module, name)
        assert rule is not None, name
        t = torch.full_like(param, float("nan"))
        SCHEMES[rule[0]].apply(t, rule[1], None)
        values[name] = t
    return values


RANDOM_MODULES = {
    "Linear": lambda: nn.Linear(20, 30),
    "Linear-empty": lambda: nn.Linear(0, 4),
    "Conv1d": lambda: nn.Conv1d(3, 8, 5),
    "Conv2d-groups": lambda: nn.Conv2d(4, 8, 3, groups=2),
    "Conv3d-nobias": lambda: nn.Conv3d(2, 4, (1, 2, 3), bias=False),
    "ConvTranspose1d": lambda: nn.ConvTranspose1d(3, 6, 3),
    "ConvTranspose2d-groups": lambda: nn.ConvTranspose2d(4, 6, 3, groups=2),
    "ConvTranspose3d": lambda: nn.ConvTranspose3d(2, 3, 2),
    "Bilinear": lambda: nn.Bilinear(5, 7, 3),
    "Embedding": lambda: nn.Embedding(50, 8),
    "EmbeddingBag": lambda: nn.EmbeddingBag(50, 8),
    "RNN": lambda: nn.RNN(6, 10, num_layers=2),
    "LSTM-proj-bidir": lambda: nn.LSTM(6, 10, proj_size=4, bidirectional=True),
    "GRU-nobias": lambda: nn.GRU(6, 9, bias=False),
    "RNNCell": lambda: nn.RNNCell(5, 7),
    "LSTMCell": lambda: nn.LSTMCell(5, 7),
    "GRUCell": lambda: nn.GRUCell(5, 7),
}


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("make", RANDOM_MODULES.values(), ids=RANDOM_MODULES.keys())
def test_default_init_reproduces_torch_exactly(make):
    torch.manual_seed(123)
    module = make()
    torch.manual_seed(123)
    ours = replay(module)
    for name, param in module.named_parameters():
        assert torch.equal(ours[name], param.detach()), name


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_default_init_linear_statistics():
    torch.manual_seed(0)
    linear = nn.Linear(2000, 1000)
    scheme, args = default_init(linear, "weight")
    assert (scheme, args) == (
        "kaiming_uniform",
        {"a": SQRT5, "mode": "fan_in", "nonlinearity": "leaky_relu"},
    )
    expected = SCHEMES[scheme].expected(linear.weight.shape, args)
    bound = 1 / math.sqrt(2000)
    assert math.isclose(expected.bound, bound, rel_tol=1e-12)
    assert linear.weight.abs().max().item() <= bound
    assert math.isclose(linear.weight.std().item(), expected.std, rel_tol=0.01)
    ours = torch.empty(1000, 2000)
    SCHEMES[scheme].apply(ours, args, gen(1))
    assert math.isclose(ours.std().item(), linear.weight.std().item(), rel_tol=0.01)
    assert default_init(linear, "bias") == ("uniform", {"a": -bound, "b": bound})
    assert default_init(nn.Linear(0, 3), "bias") == ("uniform", {"a": 0.0, "b": 0.0})


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.BatchNorm1d(5),
        lambda: nn.BatchNorm2d(5),
        lambda: nn.BatchNorm3d(5),
        lambda: nn.SyncBatchNorm(5),
        lambda: nn.InstanceNorm2d(5, affine=True),
        lambda: nn.LayerNorm((4, 5)),
        lambda: nn.LayerNorm(5, bias=False),
        lambda: nn.GroupNorm(2, 6),
        lambda: nn.RMSNorm(6),
        lambda: nn.PReLU(),
        lambda: nn.PReLU(4, init=0.1),
    ],
)
def test_default_init_deterministic_modules(make):
    module = make()
    ours = replay(module)
    assert ours
    for name, param in module.named_parameters():
        assert torch.equal(ours[name], param.detach()), name
    if isinstance(module, nn.PReLU):
        assert default_init(module, "weight") == ("constant", {"val": module.init})


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"kdim": 6, "vdim": 5, "add_bias_kv": True}, {"bias": False}],
    ids=["packed", "separate-kv", "no-bias"],
)
def test_default_init_multihead_attention(kwargs):
    torch.manual_seed(7)
    mha = nn.MultiheadAttention(16, 4, **kwargs)
    # torch's order: out_proj's Linear reset (weight, bias), then _reset_parameters.
    torch.manual_seed(7)
    ours = replay(mha, ["out_proj.weight"])
    if mha.out_proj.bias is not None:
        bound = 1 / math.sqrt(16)
        torch.empty(16).uniform_(-bound, bound)  # the draw that MHA then zeros
    names = ["in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"]
    names += ["in_proj_bias", "out_proj.bias", "bias_k", "bias_v"]
    ours.update(replay(mha, [n for n in names if _has(mha, n)]))
    assert set(ours) == {n for n, _ in mha.named_parameters()}
    for name, param in mha.named_parameters():
        assert torch.equal(ours[name], param.detach()), name
    if mha.out_proj.bias is not None:
        assert default_init(mha, "out_proj.bias") == ("zeros", {})
        assert default_init(mha.out_proj, "bias") == ("zeros", {})  # only MHA makes one


def _has(module: nn.Module, name: str) -> bool:
    try:
        return module.get_parameter(name) is not None
    except AttributeError:
        return False


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_default_init_transformer():
    torch.manual_seed(0)
    model = nn.Transformer(
        d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64
    )
    for name, param in model.named_parameters():
        scheme, args = default_init(model, name)
        if param.dim() > 1:
            assert scheme == "xavier_uniform", name
        expected = SCHEMES[scheme].expected(param.shape, args)
        values = param.detach()
        if scheme in ("ones", "zeros"):
            assert (values == expected.mean).all(), name
        else:
            assert values.abs().max().item() <= expected.bound, name
    assert default_init(model, "encoder.layers.0.self_attn.in_proj_bias") == ("zeros", {})
    assert default_init(model, "encoder.layers.0.norm1.weight") == ("ones", {})
    assert default_init(model, "encoder.layers.0.linear1.bias")[0] == "uniform"
    layer = nn.TransformerEncoderLayer(32, 2, 64)
    assert default_init(layer, "linear1.weight")[0] == "kaiming_uniform"
    assert default_init(layer, "self_attn.out_proj.bias") == ("zeros", {})


def test_default_init_unknown_and_overridden():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    class MyLinear(nn.Linear):
        def reset_parameters(self):
            nn.init.zeros_(self.weight)

    class PlainSubclass(nn.Linear):
        pass

    assert default_init(Custom(), "scale") is None
    assert default_init(MyLinear(3, 4), "weight") is None
    assert default_init(PlainSubclass(3, 4), "weight")[0] == "kaiming_uniform"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = nn.LazyLinear(4)
    assert default_init(lazy, "weight") is None
    with pytest.raises(ValueError, match="no parameter"):
        default_init(nn.Linear(3, 4), "gamma")
    with pytest.raises(ValueError, match="no submodule"):
        default_init(nn.Sequential(nn.Linear(3, 4)), "1.weight")
    assert default_init(nn.Sequential(nn.Linear(3, 4)), "0.bias")[0] == "uniform"


# --------------------------------------------------------------------------- dtypes

_DTYPES = ["float32", "float64", "float16", "bfloat16", "complex64", "int64", "int32",
           "uint8", "bool"]  # fmt: skip


def _sample_args(scheme) -> dict:
    args = {"val": 1} if scheme.name == "constant" else {}
    if scheme.name == "sparse":
        args["sparsity"] = 0.5
    return args


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("name", list(SCHEMES))
def test_dtype_problem_is_none_exactly_when_torch_fills_the_dtype(name, dtype):
    """Checked against torch: every scheme on a tensor of every dtype."""
    import warnings

    from inittui.core.schemes import dtype_problem

    scheme = SCHEMES[name]
    shape = (4, 4, 3) if name == "dirac" else (4, 4)
    tensor = torch.zeros(shape, dtype=getattr(torch, dtype))
    args = _sample_args(scheme)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scheme.apply(tensor, args, torch.Generator().manual_seed(0))
        works = True
    except (NotImplementedError, RuntimeError):
        works = False
    problem = dtype_problem(name, scheme.validate(args), dtype, "w")
    assert (problem is None) == works, problem
    if problem is not None:
        assert problem.endswith(f"w is {dtype}")


@pytest.mark.parametrize(
    ("dtype", "val", "fragment"),
    [
        ("int64", 1.5, "not a whole number"),
        ("int8", 300, "does not fit in int8"),
        ("bool", 2, "not 0 or 1"),
        ("int64", float("inf"), "not a whole number"),
    ],
)
def test_constant_refuses_values_an_integer_dtype_would_change(dtype, val, fragment):
    from inittui.core.schemes import dtype_problem

    problem = dtype_problem("constant", {"val": val}, dtype, "count")
    assert problem is not None and fragment in problem
    assert dtype_problem("constant", {"val": 3}, "int64", "count") is None


def test_every_row_owns_its_facts():
    """Fan-based rows are exactly the ones whose std needs fans; sample args are valid;
    ``default`` is a row that resolves per module and takes no arguments."""
    from inittui.core.schemes import DEFAULT, ROWS

    for row in ROWS.values():
        row.validate(row.sample_args())
        assert row.dtypes in ("any", "float", "real")
    fan_based = {name for name, row in SCHEMES.items() if row.fan_based}
    assert fan_based == {
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "lecun_normal",
        "variance_scaling",
    }
    assert get_scheme("default") is DEFAULT and DEFAULT.per_module
    scheme, args = DEFAULT.resolve(torch.nn.Linear(16, 4), "bias", {})
    assert scheme.name == "uniform" and args == {"a": -0.25, "b": 0.25}
    with pytest.raises(SchemeError, match="takes no arguments"):
        DEFAULT.validate({"std": 1.0})


def test_rows_filled_mixture_matches_the_values():
    from inittui.core.schemes.stats import with_rows_filled

    expected = SCHEMES["uniform"].expected((400,), {"a": -1.0, "b": 1.0})
    mixed = with_rows_filled(expected, 400, 100, 200, 3.0)
    values = torch.cat([torch.linspace(-1, 1, 300_000), torch.full((100_000,), 3.0)])
    assert mixed.mean == pytest.approx(values.mean().item(), abs=1e-4)
    assert mixed.std == pytest.approx(values.std(unbiased=False).item(), rel=1e-4)
    assert mixed.high == 3.0 and "rows 100:200" in mixed.formula
