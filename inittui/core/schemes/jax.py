"""The JAX-compatible scheme's arithmetic: ``variance_scaling`` exactly as
``jax.nn.initializers.variance_scaling`` defines it (jax/_src/nn/initializers.py).

n = fan_in, fan_out or (fan_in + fan_out) / 2 by ``mode``; the values have variance
variance_scale / n (JAX's ``scale``: renamed because ``scale`` is the plan's extension key
that multiplies the values). ``truncated_normal`` draws a normal truncated at 2 of its own stds, with the
std first divided by :data:`TRUNC_STD_2` so the result's std is sqrt(variance_scale / n);
``untruncated_normal`` draws N(0, variance_scale / n); ``uniform``
U(-sqrt(3 variance_scale / n), sqrt(3 variance_scale / n)). The printed code calls the runtime helper ``_variance_scaling_``
with the step's fans.
"""

from __future__ import annotations

import math

from inittui.core.schemes.args import Arg, fmt_num
from inittui.core.schemes.stats import Expected, _fans_of, truncated_normal_moments

TRUNC_STD_2 = 0.87962566103423978
"""The std of a standard normal truncated to [-2, 2]: scipy.stats.truncnorm.std(a=-2, b=2),
the constant JAX divides by."""

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

VARIANCE_SCALING_ARGS = (
    Arg(
        "variance_scale",
        float,
        1.0,
        minimum=0.0,
        exclusive_minimum=True,
        doc="JAX's scale: the variance is variance_scale / n",
    ),
    Arg("mode", str, "fan_in", choices=MODES, doc="n: fan_in, fan_out or their average"),
    Arg(
        "distribution",
        str,
        "truncated_normal",
        choices=DISTRIBUTIONS,
        doc="truncated_normal (at 2 std, std-corrected), untruncated_normal or uniform",
    ),
)


def _n(dims: tuple[int, ...], v: dict) -> tuple[float, str]:
    fan_in, fan_out = _fans_of(dims, v)
    mode = v["mode"]
    if mode == "fan_in":
        return fan_in, f"n = fan_in = {fan_in}"
    if mode == "fan_out":
        return fan_out, f"n = fan_out = {fan_out}"
    return (fan_in + fan_out) / 2, f"n = (fan_in + fan_out)/2 = ({fan_in}+{fan_out})/2"


def variance_scaling_shape_check(dims: tuple[int, ...], v: dict) -> str | None:
    n, text = _n(dims, v)
    if n == 0 and math.prod(dims) > 0:
        return f"cannot compute its std: {text} = 0"
    return None


def variance_scaling_stats(dims: tuple[int, ...], v: dict) -> Expected:
    n, n_text = _n(dims, v)
    scale, distribution = v["variance_scale"], v["distribution"]
    variance = scale / n
    head = (
        f"JAX variance_scaling ({distribution}, mode={v['mode']}): {n_text}; "
        f"std = sqrt(variance_scale / n) = sqrt({fmt_num(scale)}/{fmt_num(n)}) = "
        f"{fmt_num(math.sqrt(variance))}"
    )
    if distribution == "uniform":
        bound = math.sqrt(3.0 * variance)
        formula = (
            f"{head}; U(-bound, bound) with bound = sqrt(3 * variance_scale / n) = {fmt_num(bound)}"
        )
        return Expected(0.0, bound / math.sqrt(3.0), bound, formula, -bound, bound)
    if distribution == "untruncated_normal":
        return Expected(0.0, math.sqrt(variance), None, f"N(0, std^2) with {head}")
    s = math.sqrt(variance) / TRUNC_STD_2
    _, std = truncated_normal_moments(0.0, s, -2.0 * s, 2.0 * s)
    formula = (
        f"{head}; drawn as N(0, s^2) truncated to [-2s, 2s] with s = std / 0.87962566103423978 "
        f"(the std of a standard normal truncated to [-2, 2]) = {fmt_num(s)}: "
        f"values within +-{fmt_num(2.0 * s)}, std {fmt_num(std)}"
    )
    return Expected(0.0, std, None, formula, -2.0 * s, 2.0 * s)


def variance_scaling_interval(dims: tuple[int, ...], v: dict) -> tuple[str, float, float] | None:
    if math.prod(dims) == 0 or v["distribution"] == "untruncated_normal":
        return None
    expected = variance_scaling_stats(dims, v)
    assert expected.low is not None and expected.high is not None
    return f"the interval [{expected.low!r}, {expected.high!r}]", expected.low, expected.high
