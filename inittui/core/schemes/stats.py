"""What each scheme's values look like: :class:`Expected` (mean, std, bound, interval and
the formula as text), the fans, and the argument and shape checks that need the same
arithmetic (the truncated normal's mass is computed here, once)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from torch import nn

from inittui.core.schemes.args import fmt_num


@dataclass(frozen=True)
class Expected:
    """What the values of a tensor look like after a scheme ran on it.

    ``std`` is the standard deviation of the distribution the values come from (for the
    deterministic schemes, the population std of the values themselves); ``bound`` is the
    half-width of a uniform scheme's interval around ``mean``. ``low``/``high`` are the
    closed interval that holds every value when there is one (uniform schemes, the
    truncated normal's absolute ``[a, b]``, constants). ``mean`` and ``std`` are None when
    nothing can be said (``keep``, an empty tensor).
    """

    mean: float | None
    std: float | None
    bound: float | None
    formula: str
    low: float | None = None
    high: float | None = None


def fans(shape: Sequence[int]) -> tuple[int, int] | None:
    """``(fan_in, fan_out)`` exactly as ``torch.nn.init._calculate_fan_in_and_fan_out``.

    For a tensor of shape (out, in, *kernel): fan_in = in * prod(kernel) and
    fan_out = out * prod(kernel). None for fewer than 2 dims.
    """
    dims = tuple(int(s) for s in shape)
    if len(dims) < 2:
        return None
    receptive_field = 1
    for size in dims[2:]:
        receptive_field *= size
    return dims[1] * receptive_field, dims[0] * receptive_field


# -- statistics of each scheme --------------------------------------------------------


def constant_expected(value: float, what: str) -> Expected:
    return Expected(value, 0.0, None, f"{what}: every value = {fmt_num(value)}", value, value)


def _indicator_expected(ones: int, total: int, what: str) -> Expected:
    """Statistics of a tensor with ``ones`` ones among ``total`` values, the rest zeros."""
    mean = ones / total
    std = math.sqrt(mean * (1.0 - mean))
    formula = (
        f"{what}: {ones} ones among {total} values, the rest 0: mean = {ones}/{total} = "
        f"{fmt_num(mean)}, std = sqrt(mean * (1 - mean)) = {fmt_num(std)}"
    )
    return Expected(mean, std, None, formula, 0.0, 1.0 if ones else 0.0)


def uniform_stats(dims: tuple[int, ...], v: dict) -> Expected:
    a, b = v["a"], v["b"]
    std = (b - a) / math.sqrt(12.0)
    formula = (
        f"U(a, b) = U({fmt_num(a)}, {fmt_num(b)}): mean = (a + b)/2 = {fmt_num((a + b) / 2)}, "
        f"std = (b - a)/sqrt(12) = {fmt_num(std)}"
    )
    return Expected((a + b) / 2, std, (b - a) / 2, formula, a, b)


def normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    mean, std = v["mean"], v["std"]
    return Expected(
        mean, std, None, f"N(mean, std^2): mean = {fmt_num(mean)}, std = {fmt_num(std)}"
    )


def _phi(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def normal_mass(alpha: float, beta: float) -> float:
    """Phi(beta) - Phi(alpha) for the standard normal CDF Phi, accurate in the tails."""
    root2 = math.sqrt(2.0)
    if alpha >= 0.0:
        return 0.5 * (math.erfc(alpha / root2) - math.erfc(beta / root2))
    if beta <= 0.0:
        return 0.5 * (math.erfc(-beta / root2) - math.erfc(-alpha / root2))
    return 0.5 * (math.erf(beta / root2) - math.erf(alpha / root2))


def truncated_normal_moments(mean: float, std: float, a: float, b: float) -> tuple[float, float]:
    """Mean and std of N(mean, std^2) truncated to the absolute interval [a, b].

    With alpha = (a - mean)/std, beta = (b - mean)/std, Z = Phi(beta) - Phi(alpha) and phi,
    Phi the standard normal density and CDF (Phi via math.erf)::

        mean' = mean + std * (phi(alpha) - phi(beta)) / Z
        std'  = std * sqrt(1 + (alpha*phi(alpha) - beta*phi(beta)) / Z
                              - ((phi(alpha) - phi(beta)) / Z)^2)

    Raises ``ZeroDivisionError`` when Z underflows (the interval lies ~38 std or more
    away from the mean).
    """
    alpha, beta = (a - mean) / std, (b - mean) / std
    mass = normal_mass(alpha, beta)
    if mass <= 0.0:
        raise ZeroDivisionError("the normal's mass in [a, b] underflows")
    shift = (_phi(alpha) - _phi(beta)) / mass
    variance_factor = 1.0 + (alpha * _phi(alpha) - beta * _phi(beta)) / mass - shift * shift
    return mean + std * shift, std * math.sqrt(max(variance_factor, 0.0))


def trunc_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    mean, std, a, b = v["mean"], v["std"], v["a"], v["b"]
    alpha, beta = (a - mean) / std, (b - mean) / std
    head = (
        f"N(mean, std^2) = N({fmt_num(mean)}, {fmt_num(std)}^2) truncated to [a, b] = "
        f"[{fmt_num(a)}, {fmt_num(b)}] (a and b are absolute values, not multiples of std): "
        f"alpha = (a - mean)/std = {fmt_num(alpha)}, beta = (b - mean)/std = {fmt_num(beta)}"
    )
    try:
        t_mean, t_std = truncated_normal_moments(mean, std, a, b)
    except ZeroDivisionError:
        return Expected(
            None, None, None, head + "; [a, b] is too far in the tail to compute the std", a, b
        )
    formula = (
        f"{head}, Z = Phi(beta) - Phi(alpha) = {fmt_num(normal_mass(alpha, beta))}; "
        f"std' = std * sqrt(1 + (alpha*phi(alpha) - beta*phi(beta))/Z - "
        f"((phi(alpha) - phi(beta))/Z)^2) = {fmt_num(t_std)}, mean' = {fmt_num(t_mean)}"
    )
    return Expected(t_mean, t_std, None, formula, a, b)


def eye_stats(dims: tuple[int, ...], v: dict) -> Expected:
    rows, cols = dims
    return _indicator_expected(min(rows, cols), rows * cols, "identity matrix")


def _dirac_ones(dims: tuple[int, ...], groups: int) -> int:
    return groups * min(dims[0] // groups, dims[1])


def dirac_stats(dims: tuple[int, ...], v: dict) -> Expected:
    groups = int(v["groups"])
    return _indicator_expected(
        _dirac_ones(dims, groups), math.prod(dims), f"Dirac delta (groups={groups})"
    )


def dirac_shape_check(dims: tuple[int, ...], v: dict) -> str | None:
    groups = int(v["groups"])
    if dims[0] % groups != 0:
        return f"with groups={groups} needs out_channels (dim 0 = {dims[0]}) divisible by groups"
    if _dirac_ones(dims, groups) > 0 and 0 in dims[2:]:
        return "needs non-empty kernel dims to place the center tap"
    return None


def _fans_of(dims: tuple[int, ...], v: dict | None = None) -> tuple[float, float]:
    """torch's fans of ``dims``, or the fans a caller computed from the forward, given as
    ``v["_fans"]`` (:mod:`inittui.core.fans`: a transformers Conv1D, a transposed conv)."""
    if v is not None and v.get("_fans") is not None:
        return v["_fans"]
    fan = fans(dims)
    assert fan is not None  # applicability guarantees 2+ dims
    return fan


def xavier_shape_check(dims: tuple[int, ...], v: dict) -> str | None:
    fan_in, fan_out = _fans_of(dims, v)
    if fan_in + fan_out == 0:
        return "cannot compute its std: fan_in + fan_out = 0"
    return None


def _xavier_std(dims: tuple[int, ...], v: dict) -> tuple[float, str]:
    gain = v["gain"]
    fan_in, fan_out = _fans_of(dims, v)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))  # as torch computes it
    text = (
        f"std = gain * sqrt(2 / (fan_in + fan_out)) = {fmt_num(gain)} * "
        f"sqrt(2/({fan_in}+{fan_out})) = {fmt_num(std)}"
    )
    return std, text


def xavier_uniform_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _xavier_std(dims, v)
    bound = math.sqrt(3.0) * std
    formula = f"{text}; U(-bound, bound) with bound = sqrt(3) * std = {fmt_num(bound)}"
    return Expected(0.0, std, bound, formula, -bound, bound)


def xavier_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _xavier_std(dims, v)
    return Expected(0.0, std, None, f"N(0, std^2) with {text}")


_GAIN_TEXT = {
    "sigmoid": "1",
    "tanh": "5/3",
    "relu": "sqrt(2)",
    "leaky_relu": "sqrt(2 / (1 + a^2))",
    "selu": "3/4",
}


def _kaiming_std(dims: tuple[int, ...], v: dict) -> tuple[float, str]:
    fan_in, fan_out = _fans_of(dims, v)
    mode, nonlinearity, a = v["mode"], v["nonlinearity"], v["a"]
    fan = fan_in if mode == "fan_in" else fan_out
    gain = nn.init.calculate_gain(nonlinearity, a)  # type: ignore[arg-type]
    std = gain / math.sqrt(fan)  # as torch computes it
    gain_text = _GAIN_TEXT.get(nonlinearity, "1")
    slope = f", a={fmt_num(a)}" if nonlinearity == "leaky_relu" else ""
    text = (
        f"gain = calculate_gain('{nonlinearity}'{slope}) = {gain_text} = {fmt_num(gain)}; "
        f"std = gain / sqrt({mode}) = {fmt_num(gain)}/sqrt({fan}) = {fmt_num(std)}"
    )
    return std, text


def kaiming_uniform_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _kaiming_std(dims, v)
    bound = math.sqrt(3.0) * std
    formula = f"{text}; U(-bound, bound) with bound = sqrt(3) * std = {fmt_num(bound)}"
    if v["nonlinearity"] == "leaky_relu" and math.isclose(v["a"], math.sqrt(5.0), rel_tol=1e-12):
        formula += (
            f" (a = sqrt(5), PyTorch's default for Linear/Conv weights: gain = sqrt(1/3), "
            f"so bound = 1/sqrt({v['mode']}))"
        )
    return Expected(0.0, std, bound, formula, -bound, bound)


def kaiming_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _kaiming_std(dims, v)
    return Expected(0.0, std, None, f"N(0, std^2) with {text}")


def lecun_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    fan_in, _ = _fans_of(dims, v)
    std = 1.0 / math.sqrt(fan_in)
    return Expected(
        0.0,
        std,
        None,
        f"N(0, std^2) with std = 1 / sqrt(fan_in) = 1/sqrt({fan_in}) = {fmt_num(std)}",
    )


def orthogonal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    rows = dims[0]
    cols = math.prod(dims) // rows
    gain = v["gain"]
    rms = gain * math.sqrt(min(rows, cols) / (rows * cols))
    formula = (
        f"gain times a semi-orthogonal ({rows} x {cols}) matrix: the entries' RMS is "
        f"gain * sqrt(min(rows, cols) / (rows * cols)) = {fmt_num(gain)} * "
        f"sqrt({min(rows, cols)}/({rows}*{cols})) = {fmt_num(rms)}"
    )
    return Expected(0.0, rms, None, formula)


def sparse_stats(dims: tuple[int, ...], v: dict) -> Expected:
    rows, _ = dims
    sparsity, std = v["sparsity"], v["std"]
    zeros = math.ceil(sparsity * rows)
    overall = std * math.sqrt((rows - zeros) / rows)
    formula = (
        f"N(0, std^2) with ceil(sparsity * rows) = {zeros} of {rows} entries zeroed in each "
        f"column: std = std * sqrt((rows - zeros) / rows) = {fmt_num(std)} * "
        f"sqrt({rows - zeros}/{rows}) = {fmt_num(overall)}"
    )
    return Expected(0.0, overall, None, formula)


def uniform_args_check(v: dict) -> str | None:
    if v["a"] > v["b"]:
        return f"needs a <= b, got a={v['a']!r}, b={v['b']!r}"
    return None


_TRUNC_NORMAL_MAX_PROPOSALS = 1e3


@dataclass(frozen=True)
class TruncGeometry:
    """Where [a, b] lies for N(mean, std^2): standardized bounds, the normal's mass in
    [a, b] (computed once, here) and the standardized point of [a, b] nearest the mean."""

    alpha: float
    beta: float
    mass: float
    z_mode: float

    @classmethod
    def of(cls, v: dict) -> TruncGeometry:
        mean, std, a, b = (float(v[k]) for k in ("mean", "std", "a", "b"))
        alpha, beta = (a - mean) / std, (b - mean) / std
        z_mode = (max(a, min(mean, b)) - mean) / std
        return cls(alpha, beta, normal_mass(alpha, beta), z_mode)

    @property
    def rejects_from_uniform(self) -> bool:
        """Whether torch's trunc_normal_ samples by U(a, b) proposals (mass <= 0.3)."""
        return self.mass <= 0.3


def trunc_normal_args_check(v: dict) -> str | None:
    std, a, b = v["std"], v["a"], v["b"]
    if a >= b:
        return f"needs a < b (absolute bounds), got a={a!r}, b={b!r}"
    # torch.nn.init.trunc_normal_ (torch 2.13) draws N(mean, std^2) and redraws values
    # outside [a, b] when the normal's mass in [a, b] is over 0.3; otherwise it proposes
    # U(a, b) and accepts with the density ratio to the mode. Far from the mean, or with
    # [a, b] very wide in units of std, that loop overflows (a float ** 2) or never ends.
    geometry = TruncGeometry.of(v)
    z_mode, mass = geometry.z_mode, geometry.mass
    if not geometry.rejects_from_uniform or z_mode == 0.0:  # acceptance > exp(-0.32)
        return None
    far = f"[a, b] = [{fmt_num(a)}, {fmt_num(b)}] is {fmt_num(abs(z_mode))} std from the mean"
    if not abs(z_mode) < 1e150:
        return f"{far}: torch's sampler overflows; move [a, b] toward the mean or raise std"
    width = b - a
    if mass > 0.0 and math.isfinite(width):  # mean acceptance of one U(a, b) proposal
        log_rate = (
            math.log(std)
            + 0.5 * math.log(2.0 * math.pi)
            + math.log(mass)
            + 0.5 * z_mode * z_mode
            - math.log(width)
        )
    else:  # far tail: the density decays like exp(-|z| x / std) over the interval
        decay = abs(z_mode) * (width / std)
        if math.isinf(decay):
            log_rate = -math.inf
        else:
            log_rate = math.log(-math.expm1(-decay) / decay) if decay > 1e-12 else 0.0
    if log_rate < -math.log(_TRUNC_NORMAL_MAX_PROPOSALS):
        proposals = "more than 1e300" if log_rate < -690 else f"about {math.exp(-log_rate):.2g}"
        return (
            f"{far} and [a, b] is too wide for it: torch samples it by rejection from "
            f"U(a, b) and would need {proposals} proposals per value (far too slow); "
            "narrow [a, b] or move it toward the mean"
        )
    return None


def trunc_normal_precision_check(v: dict, eps: float, dtype: str) -> str | None:
    """Outside [a, b] with little mass in it, torch's trunc_normal_ accepts U(a, b)
    proposals by a log-density ratio it computes in the tensor's dtype: z^2/2 minus the
    same at the mode. Once eps * z^2/2 > 1 that difference is rounding noise and can come
    out negative for every value: the loop never ends (found by fuzzing)."""
    geometry = TruncGeometry.of(v)
    z_mode = geometry.z_mode
    if geometry.rejects_from_uniform and 0.5 * z_mode * z_mode * eps > 1.0:
        return (
            f"trunc_normal [a, b] = [{v['a']:g}, {v['b']:g}] is {abs(z_mode):.3g} std from the "
            f"mean: torch's sampler computes densities in {dtype}, too coarse that far out "
            f"(it can loop forever); keep [a, b] within "
            f"{math.sqrt(2.0 / eps):.3g} std of the mean"
        )
    return None


def trunc_normal_lints(v: dict) -> list[tuple[str, str]]:
    """The bounds are absolute values: ``a=-2, b=2`` with ``std=0.02`` truncates nothing."""
    mean, std = float(v["mean"]), float(v["std"])
    a, b = float(v["a"]), float(v["b"])
    if std > 0 and (mean - a) / std >= 3 and (b - mean) / std >= 3:
        return [
            (
                "trunc_normal_bounds",
                f"trunc_normal bounds a={a:g}, b={b:g} are absolute: with std={std:g} they "
                f"sit at {(b - mean) / std:.3g} std and truncate (almost) nothing; for ±2 std "
                f"use a={mean - 2 * std:g}, b={mean + 2 * std:g}",
            )
        ]
    return []


def kaiming_args_check(v: dict) -> str | None:
    if v["nonlinearity"] == "leaky_relu":
        try:
            nn.init.calculate_gain("leaky_relu", v["a"])
        except OverflowError:
            return f"a={v['a']!r} is too large: calculate_gain('leaky_relu', a) overflows on a**2"
    return None


# -- the table -----------------------------------------------------------------------


def scaled(expected: Expected, scale: float | None) -> Expected:
    """The expected statistics after multiplying the values by ``scale``."""
    if scale is None:
        return expected

    def times(value: float | None) -> float | None:
        return None if value is None else value * scale

    low, high = times(expected.low), times(expected.high)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return replace(
        expected,
        mean=times(expected.mean),
        std=None if expected.std is None else expected.std * abs(scale),
        bound=None if expected.bound is None else expected.bound * abs(scale),
        low=low,
        high=high,
        formula=f"{expected.formula}; then x {scale:g}",
    )


def with_rows_filled(
    expected: Expected, rows: int, start: int, stop: int, value: float
) -> Expected:
    """The statistics over the whole tensor once rows ``start:stop`` of its ``rows`` are
    set to ``value`` (an LSTM bias's forget block): a mixture of the scheme's values
    (fraction 1 - f) and the constant (fraction f = (stop - start) / rows)."""
    if rows <= 0 or stop <= start:
        return expected
    f = (stop - start) / rows
    low = None if expected.low is None else min(expected.low, value)
    high = None if expected.high is None else max(expected.high, value)
    text = f"{expected.formula}; then rows {start}:{stop} of {rows} = {fmt_num(value)}"
    if expected.mean is None or expected.std is None:
        return replace(expected, formula=text, low=low, high=high)
    m, s = expected.mean, expected.std
    mean = (1 - f) * m + f * value
    second = (1 - f) * (s * s + m * m) + f * value * value
    std = math.sqrt(max(second - mean * mean, 0.0))
    text += (
        f": over the tensor (f = {fmt_num(f)}) mean = (1 - f) * {fmt_num(m)} + f * "
        f"{fmt_num(value)} = {fmt_num(mean)}, std = sqrt((1 - f) * (std^2 + mean^2) + f * "
        f"value^2 - mean'^2) = {fmt_num(std)}"
    )
    return replace(expected, mean=mean, std=std, formula=text, low=low, high=high)
