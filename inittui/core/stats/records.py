"""The record of one tensor's statistics (:class:`TensorStats`) and what every path shares:
which tensors have data, their flat view, histogram edges, assembling a record, progress
and cancellation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from inittui.core.errors import StatsCancelled

HIST_BINS = 32

_CONST_REL_HALF_WIDTH = 1e-6  # half width of the histogram range of a constant tensor


@dataclass(frozen=True)
class TensorStats:
    """Statistics of one tensor (see the module docstring for the exact definitions).

    ``mean``, ``std``, ``min``, ``max``, ``abs_mean`` and the histogram are over the finite
    values; ``zero_fraction`` is over all ``numel`` elements; ``nan``/``inf`` are counts.
    A figure is ``None`` when undefined (no finite value; ``std`` with fewer than 2).
    """

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    abs_mean: float | None
    zero_fraction: float | None
    nan: int
    inf: int
    hist_edges: list[float] = field(default_factory=list)
    hist_counts: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: figures plus ``{"hist": {"edges": [...], "counts": [...]}}``."""
        return {
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "abs_mean": self.abs_mean,
            "zero_fraction": self.zero_fraction,
            "nan": self.nan,
            "inf": self.inf,
            "hist": {"edges": list(self.hist_edges), "counts": list(self.hist_counts)},
        }


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    return bins


def _has_data(t: torch.Tensor) -> bool:
    """False for tensors without storage we may read (meta, lazy-module placeholders)."""
    if isinstance(t, torch.nn.parameter.UninitializedTensorMixin):
        return False
    if t.is_meta or t.device.type == "meta":
        return False
    return not t.is_complex()


def _flat(t: torch.Tensor) -> torch.Tensor:
    """Detached 1-D tensor with the values of ``t`` (a view when possible, never in place)."""
    t = t.detach()
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.is_quantized:
        t = t.dequantize()
    if t.device.type not in ("cpu", "cuda"):  # e.g. MPS has no float64: compute on the CPU
        t = t.cpu()
    x = t.reshape(-1)
    if x.dtype == torch.bool:
        x = x.view(torch.uint8)
    return x


def _alias_key(t: torch.Tensor) -> tuple | None:
    """Identity of the memory a strided tensor views (tied weights share it), or None."""
    if t.layout != torch.strided or t.is_quantized or t.numel() == 0:
        return None
    try:
        ptr = t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensor subclasses without real storage
        return None
    return (t.device, t.dtype, ptr, t.storage_offset(), tuple(t.shape), t.stride())


def _edges(lo: float, hi: float, bins: int) -> list[float]:
    """``bins + 1`` edges from ``lo`` to ``hi`` (a tiny symmetric range when ``lo == hi``)."""
    if lo == hi:
        half = _CONST_REL_HALF_WIDTH * abs(lo) if lo != 0 else _CONST_REL_HALF_WIDTH
        lo, hi = lo - half, hi + half
    width = hi - lo
    if math.isfinite(width):  # like numpy.linspace
        edges = [lo + width / bins * k for k in range(bins)]
    else:  # float64 extremes: hi - lo overflows, a convex combination does not
        edges = [lo * (1 - k / bins) + hi * (k / bins) for k in range(bins)]
    edges.append(hi)
    return edges


def _const_counts(n: int, bins: int) -> list[int]:
    counts = [0] * bins
    counts[bins // 2] = n
    return counts


def _empty(numel: int, nan: int = 0, inf: int = 0) -> TensorStats:
    return TensorStats(
        mean=None,
        std=None,
        min=None,
        max=None,
        abs_mean=None,
        zero_fraction=None if numel == 0 else 0.0,
        nan=nan,
        inf=inf,
        hist_edges=[],
        hist_counts=[],
    )


def _make(
    *,
    numel: int,
    n: int,
    mean: float,
    var: float | None,
    lo: float,
    hi: float,
    abs_sum: float,
    zeros: int,
    nan: int,
    inf: int,
    counts: list[int],
    bins: int,
    unscale: float = 1.0,
) -> TensorStats:
    """Assemble the figures of ``n >= 1`` finite values out of ``numel`` elements.

    ``var`` is in units scaled by ``unscale`` (``std = sqrt(var) / unscale``).
    """
    if lo == hi:
        mean, var, counts = lo, 0.0, _const_counts(n, bins)
    mean = min(max(mean, lo), hi)  # rounding can never push the mean outside [min, max]
    std = None if n < 2 or var is None else math.sqrt(max(var, 0.0)) / unscale
    return TensorStats(
        mean=float(mean),
        std=std,
        min=float(lo),
        max=float(hi),
        abs_mean=float(abs_sum) / n,
        zero_fraction=zeros / numel,
        nan=nan,
        inf=inf,
        hist_edges=_edges(float(lo), float(hi), bins),
        hist_counts=[int(c) for c in counts],
    )


def _compute_dtype(src: torch.dtype) -> torch.dtype:
    """Default compute dtype: float64 for float64 and wide integers, float32 otherwise."""
    if src in (torch.float64, torch.int64, torch.int32):
        return torch.float64
    return torch.float32


class _Ticker:
    """Element-based progress with cancellation; each tensor reports at most its numel."""

    def __init__(
        self,
        total: int,
        progress: Callable[[int, int], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.cancel = cancel
        self._left = 0

    def begin(self, n: int) -> None:
        self.check()
        self._left = n

    def tick(self, k: int) -> None:
        k = min(k, self._left)
        self._left -= k
        self.done += k
        self.check()
        if self.progress is not None and k:
            self.progress(self.done, self.total)

    def finish(self) -> None:
        self.tick(self._left)

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise StatsCancelled("statistics computation cancelled")
