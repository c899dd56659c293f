"""``variance_scaling``: JAX's ``jax.nn.initializers.variance_scaling`` drawn with torch's
functions. Its statistics against the published definition (ported below: jax is not a
dependency), every mode x distribution on a big tensor, half dtypes, and the fans: the
printed call passes the step's effective fans (a transformers Conv1D stores (in, out))."""

from __future__ import annotations

import math

import pytest
import torch
from harness import MODELS

from inittui.core.apply import apply_plan
from inittui.core.codegen import render_script, step_source
from inittui.core.fans import traced_tree
from inittui.core.loading import load_model
from inittui.core.plan import parse_plan, resolve_plan
from inittui.core.schemes import SCHEMES
from inittui.core.schemes.jax import TRUNC_STD_2

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
ROW = SCHEMES["variance_scaling"]


def jax_variance_scaling(shape, scale, mode, distribution, generator):
    """jax/_src/nn/initializers.py ``variance_scaling`` ported to torch in float64, for a
    torch layout (out, in, *kernel): variance = scale / n; truncated_normal draws a standard
    normal truncated to (-2, 2) times sqrt(variance) / .87962566103423978; untruncated_normal
    a standard normal times sqrt(variance); uniform U(-1, 1) times sqrt(3 * variance)."""
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / n
    if distribution == "truncated_normal":
        z = torch.empty(shape, dtype=torch.float64)
        torch.nn.init.trunc_normal_(z, 0.0, 1.0, -2.0, 2.0, generator=generator)
        return z * (math.sqrt(variance) / 0.87962566103423978)
    if distribution == "untruncated_normal":
        return torch.randn(shape, dtype=torch.float64, generator=generator) * math.sqrt(variance)
    u = torch.rand(shape, dtype=torch.float64, generator=generator) * 2 - 1
    return u * math.sqrt(3 * variance)


def test_the_constant_is_the_std_of_a_normal_truncated_at_2():
    # scipy.stats.truncnorm.std(a=-2, b=2): var = 1 - 2 * 2 * phi(2) / (Phi(2) - Phi(-2))
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert math.sqrt(1 - 4 * phi2 / mass) == pytest.approx(TRUNC_STD_2, rel=1e-15)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_every_mode_and_distribution_has_std_sqrt_scale_over_n(mode, distribution):
    shape, scale = (300, 500, 3), 2.0  # fan_in 1500, fan_out 900
    args = {"variance_scale": scale, "mode": mode, "distribution": distribution}
    n = {"fan_in": 1500, "fan_out": 900, "fan_avg": 1200}[mode]
    want = math.sqrt(scale / n)
    expected = ROW.expected(shape, args)
    assert expected.mean == 0.0 and expected.std == pytest.approx(want, rel=1e-12)
    values = torch.empty(shape, dtype=torch.float64)
    ROW.apply(values, args, torch.Generator().manual_seed(1))
    reference = jax_variance_scaling(shape, scale, mode, distribution, torch.Generator())
    count = values.numel()  # 450,000: the sample std's relative error is about 1/sqrt(2n)
    tolerance = 5 / math.sqrt(2 * count)
    assert values.std().item() == pytest.approx(want, rel=tolerance)
    assert reference.std().item() == pytest.approx(want, rel=tolerance)
    assert abs(values.mean().item()) < 5 * want / math.sqrt(count)
    top = values.abs().max().item()
    if distribution == "truncated_normal":
        s = want / TRUNC_STD_2
        assert top <= 2 * s and reference.abs().max().item() <= 2 * s
        assert top > 1.9 * s  # truncated at 2 s, not narrower
        assert (expected.low, expected.high) == (-2 * s, 2 * s)
    elif distribution == "uniform":
        assert top <= math.sqrt(3) * want * (1 + 1e-12)
        assert expected.bound == pytest.approx(math.sqrt(3) * want)
    else:
        assert top > 3 * want  # a normal's tail, not truncated
    assert "std = sqrt(variance_scale / n)" in expected.formula


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_half_dtypes_on_cpu(dtype):
    for distribution in DISTRIBUTIONS:
        args = {"distribution": distribution}
        values = torch.empty(256, 512, dtype=dtype)
        ROW.apply(values, args, torch.Generator().manual_seed(0))
        wide = values.double()
        assert torch.isfinite(wide).all()
        assert wide.std().item() == pytest.approx(1 / math.sqrt(512), rel=0.03)
        if distribution == "truncated_normal":
            s = 1 / math.sqrt(512) / TRUNC_STD_2
            limit = torch.tensor(2 * s, dtype=dtype).double().item()
            assert wide.abs().max().item() <= limit


def test_complex_and_integer_tensors_are_refused():
    assert "complex" in ROW.dtype_problem({}, "complex64", "w")
    assert "floating-point" in ROW.dtype_problem({}, "int64", "w")


def test_shapes_and_arguments():
    assert "at least 2 dims" in ROW.applicability((5,))
    assert ROW.applicability((4, 0, 3)) is None  # empty: a no-op, as torch's functions
    ROW.apply(torch.empty(4, 0, 3), {}, None)
    assert "= 0" in ROW.shape_check((4, 3), {**ROW.defaults(), "_fans": (0, 4)})
    with pytest.raises(Exception, match="variance_scale"):
        ROW.validate({"variance_scale": 0.0})
    with pytest.raises(Exception, match="fan_avg"):
        ROW.validate({"mode": "fan_sum"})
    with pytest.raises(Exception, match="truncated_normal"):
        ROW.validate({"distribution": "normal"})


def rule(scheme: str, select: str, **args: object) -> str:
    extra = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in args.items())
    return f'[[rule]]\nselect = "{select}"\nparams = "weight"\nscheme = "{scheme}"\n{extra}'


GPT2 = f"{MODELS}/hf.py:gpt2"


def test_conv1d_draws_with_the_computed_fans_in_script_and_app(tmp_path):
    kwargs = {"n_embd": 256, "n_layer": 1}
    loaded = load_model(GPT2, kwargs)
    tree = traced_tree(loaded)
    plan = parse_plan(rule("variance_scaling", "type:Conv1D", mode="fan_in"))
    resolved = resolve_plan(plan, loaded.model, tree)
    step = resolved.step_for("model.h.0.mlp.c_proj.weight")  # stored (1024, 256): fan_in 1024
    assert (step.fan_in, step.fan_out, step.torch_fan_in) == (1024, 256, 256)
    assert step.expected.std == pytest.approx(1 / math.sqrt(1024), rel=1e-12)
    source = step_source(step)
    assert "_variance_scaling_(p, variance_scale=1.0, mode='fan_in'" in source
    assert "fan_in=1024, fan_out=256, generator=g)" in source
    assert step.fan_view is None and step.fan_fill is None
    script = tmp_path / "init.py"
    script.write_text(render_script(resolved, GPT2, "HFWrapper"))
    assert "def _variance_scaling_(" in script.read_text()
    namespace: dict = {}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    by_script = load_model(GPT2, kwargs).model
    namespace["init_weights"](by_script)
    applied = load_model(GPT2, kwargs).model
    apply_plan(applied, resolved)
    params = dict(by_script.named_parameters())
    for name, value in applied.named_parameters():
        assert torch.equal(value, params[name]), name
    for layer, fan_in in (("attn.c_attn", 256), ("mlp.c_fc", 256), ("mlp.c_proj", 1024)):
        values = params[f"model.h.0.{layer}.weight"].double()
        assert values.std().item() == pytest.approx(1 / math.sqrt(fan_in), rel=0.03), layer
        assert values.abs().max().item() <= 2 / math.sqrt(fan_in) / TRUNC_STD_2


def test_lecun_normal_says_it_is_untruncated():
    summary = SCHEMES["lecun_normal"].summary
    assert "untruncated" in summary and "variance_scaling" in summary
    values = torch.empty(200, 400)
    SCHEMES["lecun_normal"].apply(values, {}, torch.Generator().manual_seed(0))
    assert values.abs().max().item() > 3 / math.sqrt(400)  # not truncated at 2 std
