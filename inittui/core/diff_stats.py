"""The statistics of ``inittui diff``: one parameter's two states compared.

* **identical**: the two tensors are bit-equal (same shape, dtype and bytes).
* **std ratio** ``r = std_b / std_a`` (statistics from :func:`inittui.core.stats.compute_stats`,
  accumulated in float64). Its sampling error: the sample std of ``n`` values from a
  distribution with kurtosis ``k`` has ``sd(ln s) ~ sqrt((k - 1) / (4 n))`` (``1 / sqrt(2 n)``
  for a normal, ``k = 3``), so ``sd(ln r) = sqrt((k_a - 1) / (4 n_a) + (k_b - 1) / (4 n_b))``
  with each side's kurtosis estimated on its sample (below). ``r`` differs beyond sampling
  error when ``|ln r| > SIGMAS * sd(ln r)``; ``ratio_band`` is ``exp(+-SIGMAS * sd(ln r))``.
* **Kolmogorov-Smirnov** ``D = max_x |F_a(x) - F_b(x)|`` over the two empirical CDFs of the
  finite values (both sorted, ``searchsorted``; exact as ``scipy.stats.ks_2samp``'s
  statistic). A tensor over ``KS_MAX_VALUES`` elements is subsampled: ``KS_MAX_VALUES``
  indices drawn with replacement by a generator seeded with 0 (the same indices on both
  sides when the sizes agree), so the result is deterministic. ``D`` differs beyond
  sampling error when ``D > c(alpha) * sqrt((n + m) / (n m))`` with
  ``c(alpha) = sqrt(-ln(alpha / 2) / 2)``, ``alpha = KS_ALPHA``.
* **constants** (every value equal, on either side) compare exactly: equal constants are
  ``identical``, anything else ``differs``.

Only torch and the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from inittui.core.stats import TensorStats

KS_ALPHA = 1e-3
KS_C = math.sqrt(-math.log(KS_ALPHA / 2) / 2)  # c(alpha) = 1.9495 at alpha = 1e-3
SIGMAS = 4.0
KS_MAX_VALUES = 100_000
_SAMPLE_SEED = 0

_SAME_SIZE_INT = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}


@dataclass(frozen=True)
class ParamDiff:
    """One parameter's two states compared (see the module docstring)."""

    name: str
    aliases: list[str]
    shape: tuple[int, ...] | None
    a_mean: float | None
    a_std: float | None
    b_mean: float | None
    b_std: float | None
    std_ratio: float | None
    ratio_band: tuple[float, float] | None
    ks: float | None
    ks_critical: float | None
    flags: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return "differs" in self.flags

    @property
    def identical(self) -> bool:
        return "identical" in self.flags

    def to_dict(self) -> dict[str, Any]:
        """One entry of ``diff --json``'s ``parameters``."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "shape": None if self.shape is None else list(self.shape),
            "a": {"mean": _finite(self.a_mean), "std": _finite(self.a_std)},
            "b": {"mean": _finite(self.b_mean), "std": _finite(self.b_std)},
            "std_ratio": _finite(self.std_ratio),
            "ratio_band": None if self.ratio_band is None else list(self.ratio_band),
            "ks": _finite(self.ks),
            "ks_critical": _finite(self.ks_critical),
            "flags": list(self.flags),
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def bit_equal(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Same shape, dtype and bytes (NaN equal to the same NaN, -0.0 not equal to 0.0)."""
    if x.shape != y.shape or x.dtype != y.dtype or x.device != y.device:
        return False
    if x.data_ptr() == y.data_ptr() and x.stride() == y.stride():
        return True
    as_int = _SAME_SIZE_INT.get(x.dtype)
    if as_int is not None:
        return torch.equal(x.contiguous().view(as_int), y.contiguous().view(as_int))
    return torch.equal(x, y)


def sample_values(t: torch.Tensor, limit: int = KS_MAX_VALUES) -> tuple[torch.Tensor, bool]:
    """The finite values of ``t`` as float64 on the CPU, at most ``limit`` of them (drawn
    with replacement, indices from a generator seeded with 0); and whether it subsampled."""
    flat = t.detach().reshape(-1)
    sampled = flat.numel() > limit
    if sampled:
        generator = torch.Generator().manual_seed(_SAMPLE_SEED)
        index = torch.randint(flat.numel(), (limit,), generator=generator)
        flat = flat[index.to(flat.device)]
    values = flat.to(device="cpu", dtype=torch.float64)
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        values = values[finite]
    return values, sampled


def ks_statistic(x: torch.Tensor, y: torch.Tensor) -> float | None:
    """The two-sample Kolmogorov-Smirnov statistic of two 1-D tensors (None if one is
    empty): the largest distance between their empirical CDFs, evaluated at every value."""
    n, m = x.numel(), y.numel()
    if n == 0 or m == 0:
        return None
    xs, _ = torch.sort(x.to(torch.float64))
    ys, _ = torch.sort(y.to(torch.float64))
    points = torch.cat([xs, ys])
    cdf_x = torch.searchsorted(xs, points, right=True).to(torch.float64) / n
    cdf_y = torch.searchsorted(ys, points, right=True).to(torch.float64) / m
    return float((cdf_x - cdf_y).abs().max())


def ks_critical(n: int, m: int, c: float = KS_C) -> float | None:
    """``c(alpha) * sqrt((n + m) / (n m))``: D above it rejects "same distribution"."""
    if n == 0 or m == 0:
        return None
    return c * math.sqrt((n + m) / (n * m))


def _kurtosis(values: torch.Tensor) -> float:
    """The sample kurtosis (3 for a normal, 1.8 for a uniform); 3 when undefined."""
    if values.numel() < 4:
        return 3.0
    centred = values - values.mean()
    var = float((centred**2).mean())
    if var <= 0:
        return 3.0
    return max(1.0, float((centred**4).mean()) / (var * var))


def log_ratio_sd(n_a: int, k_a: float, n_b: int, k_b: float) -> float:
    """``sd(ln(std_b / std_a))`` for sample sizes ``n`` and kurtoses ``k``."""
    return math.sqrt((k_a - 1) / (4 * n_a) + (k_b - 1) / (4 * n_b))


def _constant(stats: TensorStats) -> bool:
    return stats.min is not None and stats.min == stats.max and not stats.nan and not stats.inf


def compare_param(
    name: str,
    aliases: list[str],
    a: torch.Tensor,
    b: torch.Tensor,
    a_stats: TensorStats | None,
    b_stats: TensorStats | None,
) -> ParamDiff:
    """Compare one parameter's two states (see the module docstring)."""
    shape = tuple(a.shape)
    flags: list[str] = []
    if a_stats is None or b_stats is None or a_stats.std is None or b_stats.std is None:
        same = bit_equal(a, b)
        no_data = a_stats is None or b_stats is None
        flags = ["identical"] if same else ["no_data" if no_data else "differs"]
        a_mean, a_std = _get(a_stats, "mean"), _get(a_stats, "std")
        b_mean, b_std = _get(b_stats, "mean"), _get(b_stats, "std")
        return ParamDiff(
            name, aliases, shape, a_mean, a_std, b_mean, b_std, None, None, None, None, flags
        )
    if tuple(b.shape) != shape:
        flags.append("differs")
    identical = bit_equal(a, b)
    x, sampled_a = sample_values(a)
    y, sampled_b = sample_values(b)
    ks = ks_statistic(x, y)
    critical = ks_critical(x.numel(), y.numel())
    ratio = b_stats.std / a_stats.std if a_stats.std > 0 else None
    band = None
    constant = _constant(a_stats) or _constant(b_stats)
    if not constant:
        n_a = a.numel() - a_stats.nan - a_stats.inf
        n_b = b.numel() - b_stats.nan - b_stats.inf
        half = SIGMAS * log_ratio_sd(n_a, _kurtosis(x), n_b, _kurtosis(y))
        band = (math.exp(-half), math.exp(half))
    if identical:
        flags = ["identical"]
    elif constant:
        flags.append("differs")  # constants compare exactly: not bit-equal is a difference
    elif (ratio is not None and not band[0] <= ratio <= band[1]) or (
        ks is not None and critical is not None and ks > critical
    ):
        flags.append("differs")
    if constant:
        flags.append("constant")
    if sampled_a or sampled_b:
        flags.append("subsampled")
    if a_stats.nan or a_stats.inf or b_stats.nan or b_stats.inf:
        flags.append("nonfinite")
    flags = list(dict.fromkeys(flags))
    return ParamDiff(
        name, aliases, shape, a_stats.mean, a_stats.std, b_stats.mean, b_stats.std,
        ratio, band, ks, critical, flags,
    )  # fmt: skip


def _get(stats: TensorStats | None, key: str) -> float | None:
    return None if stats is None else getattr(stats, key)
