"""Fast per-tensor statistics: the hot path of inittui on big models.

Only ``torch``, ``math`` and the standard library are used (no numpy, no UI code), and every
computation is a plain torch op, so the same code runs on CPU and CUDA.

Figures (for a tensor ``x`` with ``N = x.numel()`` elements, ``F`` = its finite elements,
``n = |F|``):

* ``nan`` / ``inf``: number of NaN / +-Inf elements.
* ``mean = (1/n) * sum_F x``
* ``std = sqrt( sum_F (x - mean)^2 / (n - 1) )`` (sample std, Bessel's correction, like
  ``torch.std``); ``None`` when ``n < 2``.
* ``min`` / ``max`` over ``F``; ``abs_mean = (1/n) * sum_F |x|``.
* ``zero_fraction = #{x == 0} / N`` (over *all* elements; NaN/Inf are never zero).
* histogram of ``F`` with ``bins`` equal-width bins, edges ``e_k = min + k (max - min) / bins``
  (``k = 0..bins``), bin ``j`` holds ``e_j <= x < e_{j+1}`` and the last bin is closed
  (``x == max`` belongs to it), like ``numpy.histogram``.  When ``min == max`` the edges span
  ``[v - d, v + d]`` with ``d = 1e-6 * |v|`` (``1e-6`` when ``v == 0``) and every value is
  counted in bin ``bins // 2`` (the bin whose left edge is ``v`` for even ``bins``).

All figures except the NaN/Inf counts and ``zero_fraction`` are over the finite values only,
so one NaN does not silently poison the mean of a 50M-element embedding.

How it is fast (CPU: ``torch.var_mean``, ``torch.histc``, ``torch.isfinite`` and ``x == 0`` run
at ~1 GB/s, while ``sum``, ``aminmax`` and in-cache element-wise ops run at 20+ GB/s):

1. Pass 1 streams ``aminmax`` over the tensor in chunks.  ``min``/``max`` propagate NaN and
   show +-Inf, so a finite ``(min, max)`` proves the tensor is all finite and no ``isfinite``
   pass is needed; otherwise (rare) the NaN/Inf are counted and the finite values gathered,
   then processed the same way.  A constant tensor (``min == max``) is answered exactly here
   (``std = 0``, no second pass).
2. A shift ``c`` is estimated from a strided sample of <= 4096 elements (``c = 0`` when the
   sample mean is within a quarter sample-std of 0, which saves one op per chunk).  Pass 2
   processes chunks of 1M elements so every temporary stays in cache: ``a = |x|`` gives
   ``sum |x|`` and, when a chunk's ``min |x|`` is 0, the zero count (``count_nonzero`` on the
   integer bit pattern of ``a``: only ``+0.0`` is all zero bits); ``d = x - c`` gives
   ``S1 = sum d`` and ``S2 = sum d^2``, and the *corrected two-pass* formula ::

       mean = c + S1 / n
       var  = (S2 - S1^2 / n) / (n - 1)

   is exact in exact arithmetic for any ``c`` and numerically good while ``|mean - c|`` is at
   most a few std (the relative error of ``var`` grows like ``S2 / (S2 - S1^2/n)``); when that
   ratio exceeds 16 (an unrepresentative sample) the sums are recomputed with ``c = mean``.
   Sums are cascade sums (``torch.sum``, ~1e-8 relative; a BLAS ``dot`` is faster but ~3e-6)
   over at most one chunk, and chunk results are accumulated in float64.
3. Histogram: ``u = (x - min) * bins / (max - min)`` (one fused ``add(alpha=)`` op when the data
   is not far off-centre, else subtract-then-scale, which is exact at ``x = min``), truncated
   to int16 and clamped to ``bins - 1``; then ``g`` sub-chunks are packed into one base-``bins``
   number (``bins**g <= 32768``, ``g = 3`` for 32 bins) so the serial ``torch.bincount`` sees
   ``1/g`` of the elements, and the ``bins**g`` joint histogram is marginalised at the end.
   Counts are exact for the edges as computed in floating point; a value within ~1e-6 of a
   bin width from an edge may land in the neighbouring bin compared to ``numpy.histogram``.

Precision: float32 (and bf16/fp16/small ints/bool, cast per chunk) are computed in float32
while the value spread is within ``[2**-40, 2**40]``, else in float64 (e.g. values ~1e-30,
whose squares underflow float32); float64, int32 and int64 are computed in float64 (float64
inputs with extreme magnitudes are first scaled by an exact power of two).  Tensors on devices
other than CPU and CUDA (e.g. MPS, which lacks float64) are copied to the CPU first.

Small tensors (``numel <= 4096``: biases, norms) are batched: up to 64K elements of the same
dtype and similar length become the rows of one zero-padded ``[k, L]`` float64 matrix, and
every figure is a row reduction, so ~25 ops serve a whole batch instead of ~25 per tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "HIST_BINS",
    "StatsCancelled",
    "TensorStats",
    "compute_stats",
    "naive_stats",
    "tensor_stats",
]

HIST_BINS = 32

_CHUNK_CPU = 1 << 20  # elements per chunk on CPU: temporaries (4-8 MB) stay in L2/L3
_CHUNK_ACCEL = 1 << 24  # elements per chunk on accelerators (bounds temporary memory only)
_GROUP_MAX_NUMEL = 1 << 12  # tensors up to this size are batched together
_GROUP_MAX_TOTAL = 1 << 16  # elements per batch (padded): temporaries stay in cache
_SAMPLE = 4096  # elements in the strided sample that estimates the shift
_PACK_LIMIT = 1 << 15  # bins**g must fit an int16 joint-histogram index
_PACK_MIN = 1 << 17  # pack only chunks this big (the bins**g histogram costs ~30 us)
_CANCEL_RATIO = 16.0  # recompute the variance sums when S2 / (S2 - S1^2/n) exceeds this
_F32_SPREAD_LO = 2.0**-40  # float32 compute only for spreads in [LO, HI] (no under/overflow
_F32_SPREAD_HI = 2.0**40  # of squares or of their sums)
_F64_MAG_HI = 2.0**960  # float64: pre-scale when max |x| exceeds this (sum |x| overflow)
_F64_SPREAD_LO = 2.0**-450  # float64: pre-scale when the spread is outside [LO, HI]
_F64_SPREAD_HI = 2.0**480
_CONST_REL_HALF_WIDTH = 1e-6  # half width of the histogram range of a constant tensor


class StatsCancelled(Exception):
    """Raised by :func:`compute_stats` when its ``cancel`` callback returns True."""


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


# --------------------------------------------------------------------------------------------
# helpers shared by the fast and the naive path


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


def _pow2_floor(v: float) -> float:
    """Largest power of two <= v (v > 0, finite)."""
    return math.ldexp(1.0, math.frexp(v)[1] - 1)


def _pack_width(bins: int) -> int:
    """Largest ``g >= 1`` with ``bins**g <= 32768`` (number of indices packed per bincount)."""
    g = 1
    while bins > 1 and bins ** (g + 1) <= _PACK_LIMIT:
        g += 1
    return g


# --------------------------------------------------------------------------------------------
# progress / cancel


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


# --------------------------------------------------------------------------------------------
# large tensors: chunked two-pass streaming


class _Workspace:
    """Reusable per-device scratch buffers (one per role and dtype)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.chunk = _CHUNK_CPU if device.type == "cpu" else _CHUNK_ACCEL
        self._bufs: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def buf(self, role: str, dtype: torch.dtype, size: int) -> torch.Tensor:
        """A ``size``-element view of the scratch buffer for ``role`` (grown on demand)."""
        b = self._bufs.get((role, dtype))
        if b is None or b.numel() < size:
            grown = max(size, min(self.chunk, 2 * (0 if b is None else b.numel())))
            b = torch.empty(grown, dtype=dtype, device=self.device)
            self._bufs[(role, dtype)] = b
        return b[:size]


def _as_compute(
    xc: torch.Tensor, cd: torch.dtype, factor: float, ws: _Workspace, role: str = "cast"
) -> torch.Tensor:
    """Chunk ``xc`` in dtype ``cd`` times the exact power of two ``factor`` (no copy if none)."""
    if xc.dtype == cd and factor == 1.0:
        return xc
    out = ws.buf(role, cd, xc.numel())
    out.copy_(xc)
    if factor != 1.0:
        out.mul_(factor)
    return out


def _large_stats(
    x: torch.Tensor, bins: int, ws: _Workspace, ticker: _Ticker, numel: int | None = None
) -> TensorStats:
    """Stats of a 1-D tensor with data, streamed in chunks (see the module docstring).

    ``numel`` is the element count of the original tensor when ``x`` holds only its finite
    values (the NaN/Inf slow path); it is the denominator of ``zero_fraction``.
    """
    f64 = torch.float64
    n = x.numel()
    numel = n if numel is None else numel
    chunk = ws.chunk
    starts = range(0, n, chunk)
    # ---- pass 1: min / max (NaN propagates, Inf shows) and a strided sample for the shift
    if n <= chunk:
        lo_t, hi_t = torch.aminmax(x)
    else:
        mins, maxs = [], []
        for s in starts:
            mn, mx = torch.aminmax(x[s : s + chunk])
            mins.append(mn)
            maxs.append(mx)
            ticker.tick(min(chunk, n - s) // 2)
        lo_t, hi_t = torch.stack(mins).min(), torch.stack(maxs).max()
    sample = (x if n <= _SAMPLE else x[:: n // _SAMPLE][:_SAMPLE]).to(f64)
    if sample.numel() > 1:
        sd_t, mean_t = torch.std_mean(sample)
    else:
        mean_t = sd_t = sample.sum()
    lo, hi, c0, sd0 = torch.stack([lo_t.to(f64), hi_t.to(f64), mean_t, sd_t]).tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _nonfinite_stats(x, bins, ws, ticker, numel)
    if lo == hi:  # constant: exact answer without a second pass
        return _make(
            numel=numel,
            n=n,
            mean=lo,
            var=0.0,
            lo=lo,
            hi=hi,
            abs_sum=abs(lo) * n,
            zeros=n if lo == 0 else 0,
            nan=0,
            inf=0,
            counts=[],
            bins=bins,
        )

    # ---- choose the compute dtype, an exact power-of-two pre-scale and the shift
    spread = hi - lo
    mag = max(abs(lo), abs(hi))
    cd = _compute_dtype(x.dtype)
    factor = 1.0
    if cd == torch.float32 and not (_F32_SPREAD_LO <= spread <= _F32_SPREAD_HI):
        cd = f64
    if x.dtype == f64:
        if mag > _F64_MAG_HI:
            factor = 1.0 / _pow2_floor(mag)
        elif not (_F64_SPREAD_LO <= spread <= _F64_SPREAD_HI):
            factor = 1.0 / _pow2_floor(spread)
    lo_s, hi_s = lo * factor, hi * factor
    if not math.isfinite(c0) or not (lo <= c0 <= hi):
        c0 = 0.5 * lo + 0.5 * hi
    if not math.isfinite(sd0):
        sd0 = 0.0
    if abs(c0) <= 0.25 * sd0:  # centred data (most weights): no shift, saves one op a chunk
        c = 0.0
    else:
        c = torch.tensor(c0 * factor, dtype=cd).item()  # the shift as the kernels will see it
        c = min(max(c, lo_s), hi_s)

    # ---- pass 2: sum |x|, zeros, shifted sums, histogram
    dev = x.device
    zeros_possible = lo <= 0.0 <= hi
    int_view = torch.int64 if cd == f64 else torch.int32
    on_cpu = dev.type == "cpu"
    g = _pack_width(bins)
    idx_dtype = torch.int16 if bins <= _PACK_LIMIT else torch.int32
    hscale = bins / (hi_s - lo_s)
    # u = (x - lo) * hscale is the fractional bin index.  When |lo| and |hi| are at most a few
    # spreads, the fused ``hscale * x + (-lo * hscale)`` (one op) is off by < 1e-5 of a bin;
    # with a large offset (mean 1000, std 0.01) subtract first, which is exact at x = lo.
    fused_hist = mag <= 4.0 * spread
    neg_lo = torch.tensor(-lo_s * hscale, dtype=cd, device=dev)
    abs_parts: list[torch.Tensor] = []
    s1_parts: list[torch.Tensor] = []
    s2_parts: list[torch.Tensor] = []
    zero_parts: list[torch.Tensor] = []
    joint: torch.Tensor | None = None  # bins**g joint histogram of packed index tuples
    direct: torch.Tensor | None = None  # plain histogram (small chunks, leftovers)
    for s in starts:
        src = x[s : s + chunk]
        m = src.numel()
        xc = _as_compute(src, cd, factor, ws)
        d = ws.buf("d", cd, m)
        torch.abs(xc, out=d)
        abs_parts.append(d.sum())
        if zeros_possible:
            if factor < 1.0:  # down-scaling could flush tiny values to zero: count unscaled
                zero_parts.append(m - torch.count_nonzero(src))
            elif not on_cpu or d.amin().item() == 0:  # CPU: skip chunks without a zero
                # |x| has only +0.0, whose bit pattern is all zeros (faster than a float test)
                zero_parts.append(m - torch.count_nonzero(d.view(int_view)))
        if c == 0.0:
            s1_parts.append(xc.sum())
        else:
            torch.sub(xc, c, out=d)
            s1_parts.append(d.sum())
        s2_parts.append(d.square_().sum())  # cascade sum: ~1e-8 relative (BLAS dot: ~3e-6)
        if bins > 1:
            if fused_hist:  # may give -1 ulp at x = lo: truncation still maps it to bin 0
                torch.add(neg_lo, xc, alpha=hscale, out=d)
            else:  # exact 0 at x = lo, never negative (rounding is monotonic)
                torch.sub(xc, lo_s, out=d).mul_(hscale)
            idx = ws.buf("idx", idx_dtype, m)
            idx.copy_(d)  # truncation = floor for u >= 0
            idx.clamp_(0, bins - 1)  # x = max gives u = bins
            # pack g sub-chunks into one base-`bins` number: bincount sees m/g elements
            q = m // g if g > 1 and m >= _PACK_MIN else 0
            if q:
                packed = ws.buf("pack", idx_dtype, q)
                torch.add(idx[q : 2 * q], idx[:q], alpha=bins, out=packed)
                for j in range(2, g):
                    torch.add(idx[j * q : (j + 1) * q], packed, alpha=bins, out=packed)
                h = torch.bincount(packed, minlength=bins**g)
                joint = h if joint is None else joint.add_(h)
            if g * q < m:
                h = torch.bincount(idx[g * q :], minlength=bins)
                direct = h if direct is None else direct.add_(h)
        ticker.tick(m - m // 2 if n > chunk else m)

    k = len(abs_parts)
    sums = torch.stack(abs_parts + s1_parts + s2_parts).to(f64).view(3, k).sum(1)
    tail = [sums]
    if zero_parts:
        tail.append(torch.stack(zero_parts).sum().to(f64).view(1))
    if bins > 1:
        counts = torch.zeros(bins, dtype=torch.int64, device=dev) if direct is None else direct
        if joint is not None:
            cube = joint.view((bins,) * g)
            for j in range(g):
                counts = counts + cube.sum(dim=tuple(a for a in range(g) if a != j))
        tail.append(counts.to(f64))
    vals = torch.cat(tail).tolist()
    abs_sum, s1, s2 = vals[:3]
    zeros = round(vals[3]) if zero_parts else 0
    hist = [round(v) for v in vals[-bins:]] if bins > 1 else [n]

    # ---- a shift far from the mean loses digits in S2 - S1^2/n: redo the sums around the mean
    centered = s2 - s1 * s1 / n
    if n > 1 and s2 > 0.0 and (centered <= 0.0 or s2 > _CANCEL_RATIO * centered):
        c = torch.tensor(c + s1 / n, dtype=cd).item()
        s1_parts, s2_parts = [], []
        for s in starts:
            xc = _as_compute(x[s : s + chunk], cd, factor, ws)
            d = ws.buf("d", cd, xc.numel())
            torch.sub(xc, c, out=d)
            s1_parts.append(d.sum())
            s2_parts.append(d.square_().sum())
            ticker.check()
        k = len(s1_parts)
        s1, s2 = torch.stack(s1_parts + s2_parts).to(f64).view(2, k).sum(1).tolist()
        centered = s2 - s1 * s1 / n

    return _make(
        numel=numel,
        n=n,
        mean=(c + s1 / n) / factor,
        var=centered / (n - 1) if n > 1 else None,
        unscale=factor,
        lo=lo,
        hi=hi,
        abs_sum=abs_sum / factor,
        zeros=zeros,
        nan=0,
        inf=0,
        counts=hist,
        bins=bins,
    )


def _nonfinite_stats(
    x: torch.Tensor, bins: int, ws: _Workspace, ticker: _Ticker, numel: int
) -> TensorStats:
    """Slow path for a tensor that holds NaN/Inf: count them, then stream the finite values."""
    finite = torch.isfinite(x)
    nan = int(torch.isnan(x).sum())
    n_fin = int(finite.sum())
    inf = x.numel() - n_fin - nan
    if n_fin == 0:
        return _empty(numel, nan=nan, inf=inf)
    res = _large_stats(x[finite], bins, ws, ticker, numel=numel)
    return TensorStats(
        mean=res.mean,
        std=res.std,
        min=res.min,
        max=res.max,
        abs_mean=res.abs_mean,
        zero_fraction=res.zero_fraction,
        nan=nan,
        inf=inf,
        hist_edges=res.hist_edges,
        hist_counts=res.hist_counts,
    )


# --------------------------------------------------------------------------------------------
# small tensors: one batched float64 pass for many tensors


def _group_stats(flats: list[torch.Tensor], bins: int) -> list[TensorStats | None]:
    """Stats of many small 1-D tensors (same device and dtype) with ~25 dense ops in total.

    The tensors become the rows of one zero-padded ``[k, L]`` float64 matrix and every figure
    is a row reduction (``sum(dim=1)`` etc.), so the cost does not grow with ``k`` the way a
    per-tensor loop of tiny ops does.  NaN/Inf and the padding are masked out with
    ``isfinite & valid``; the histogram is one ``bincount`` over ``row * bins + bin``.
    Returns ``None`` for a tensor whose magnitude is too extreme for the unscaled float64
    formulas (the caller then uses the streaming path, which pre-scales).
    """
    f64 = torch.float64
    dev = flats[0].device
    k = len(flats)
    lens = [f.numel() for f in flats]
    width = max(lens)
    ragged = min(lens) != width
    if ragged:
        mat = torch.nn.utils.rnn.pad_sequence(flats, batch_first=True)
    else:
        mat = torch.stack(flats)
    mat = mat.to(f64)
    fin = torch.isfinite(mat)
    if ragged:
        valid = torch.arange(width, device=dev) < torch.tensor(lens, device=dev)[:, None]
        fin &= valid
    clean = not ragged and bool(fin.all())
    if clean:
        vals = mat
        nan_c = inf_c = torch.zeros(k, dtype=torch.int64, device=dev)
        zeros = (mat == 0).sum(1)
        lo, hi = torch.aminmax(mat, dim=1)
    else:  # padding is 0: never NaN/Inf, but it must not count as a zero
        vals = torch.where(fin, mat, 0.0)
        nan_c = torch.isnan(mat).sum(1)
        inf_c = torch.isinf(mat).sum(1)
        zeros = ((mat == 0) & valid).sum(1) if ragged else (mat == 0).sum(1)
        lo = torch.where(fin, mat, math.inf).amin(1)
        hi = torch.where(fin, mat, -math.inf).amax(1)
    cnt = fin.sum(1)
    shift = vals.sum(1) / cnt.clamp(min=1)
    d = vals - shift[:, None]
    if not clean:
        d = torch.where(fin, d, 0.0)
    s1 = d.sum(1)
    s2 = d.square_().sum(1)
    abs_sum = vals.abs().sum(1)
    span = hi - lo
    ok = (cnt > 0) & (span > 0) & torch.isfinite(span)
    scale = torch.where(ok, bins / torch.where(ok, span, 1.0), 0.0)
    base = torch.where(cnt > 0, lo, 0.0)
    idx = ((vals - base[:, None]) * scale[:, None]).to(torch.int64).clamp_(0, bins - 1)
    idx += torch.arange(0, k * bins, bins, device=dev)[:, None]
    if not clean:  # dump NaN/Inf/padding into an extra bin that is dropped
        idx = torch.where(fin, idx, k * bins)
    hist = torch.bincount(idx.view(-1), minlength=k * bins + 1)[: k * bins]
    hist_rows = hist.view(k, bins).tolist()
    rows = torch.stack(
        [cnt.to(f64), shift, s1, s2, lo, hi, abs_sum, zeros.to(f64), nan_c.to(f64), inf_c.to(f64)]
    ).T.tolist()

    out: list[TensorStats | None] = []
    for i, (n, sh, a1, a2, mn, mx, ab, zc, nc, ic) in enumerate(rows):
        n = int(n)
        numel = lens[i]
        if n == 0:
            out.append(_empty(numel, nan=int(nc), inf=int(ic)))
            continue
        mag = max(abs(mn), abs(mx))
        spread = mx - mn
        if mag > 2.0**400 or (0.0 < spread < 2.0**-400):
            out.append(None)
            continue
        var = (a2 - a1 * a1 / n) / (n - 1) if n > 1 else None
        out.append(
            _make(
                numel=numel,
                n=n,
                mean=sh + a1 / n,
                var=var,
                lo=mn,
                hi=mx,
                abs_sum=ab,
                zeros=int(zc),
                nan=int(nc),
                inf=int(ic),
                counts=hist_rows[i],
                bins=bins,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# public API


_GroupKey = tuple[torch.device, torch.dtype, int]  # (device, dtype, numel bit length)


def compute_stats(
    tensors: Iterable[tuple[str, torch.Tensor]],
    bins: int = HIST_BINS,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict[str, TensorStats | None]:
    """Statistics for many named tensors (e.g. ``model.named_parameters()``).

    Returns ``{name: TensorStats | None}`` in input order; ``None`` for tensors without data
    (meta device, lazy ``UninitializedParameter``/``UninitializedBuffer``, complex dtypes).
    Small tensors are batched (see :func:`_group_stats`); large ones are streamed in chunks.
    Tensors sharing the same storage view (tied weights) are computed once.

    ``progress(done_elements, total_elements)`` is called after every chunk/batch;
    ``cancel()`` is polled as often, and when it returns True :class:`StatsCancelled` is
    raised.  Inputs are never modified.
    """
    bins = _check_bins(bins)
    items = list(tensors)
    result: dict[str, TensorStats | None] = {name: None for name, _ in items}
    work: list[tuple[str, torch.Tensor]] = []
    alias: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in items:
        if not isinstance(t, torch.Tensor) or not _has_data(t):
            continue
        key = _alias_key(t)
        if key is not None:
            if key in seen:
                alias[name] = seen[key]
                continue
            seen[key] = name
        work.append((name, t))

    ticker = _Ticker(sum(t.numel() for _, t in work), progress, cancel)
    workspaces: dict[torch.device, _Workspace] = {}

    def workspace(dev: torch.device) -> _Workspace:
        if dev not in workspaces:
            workspaces[dev] = _Workspace(dev)
        return workspaces[dev]

    def run_large(name: str, x: torch.Tensor) -> None:
        ticker.begin(x.numel())
        result[name] = _large_stats(x, bins, workspace(x.device), ticker)
        ticker.finish()

    pending: dict[_GroupKey, list[tuple[str, torch.Tensor]]] = {}
    pending_size: dict[_GroupKey, int] = {}

    def flush(key: _GroupKey) -> None:
        group = pending.pop(key)
        ticker.begin(pending_size.pop(key))
        outs = _group_stats([x for _, x in group], bins)
        ticker.finish()
        for (name, x), st in zip(group, outs, strict=True):
            if st is None:  # extreme float64 magnitude: the streaming path pre-scales
                st = _large_stats(x, bins, workspace(x.device), _Ticker(0, None, None))
            result[name] = st

    with torch.no_grad():
        for name, t in work:
            x = _flat(t)
            if x.numel() == 0:
                result[name] = _empty(0)
            elif x.numel() <= _GROUP_MAX_NUMEL:
                # rows of similar length (same power-of-two bucket) keep the padding < 2x
                key = (x.device, x.dtype, x.numel().bit_length())
                pending.setdefault(key, []).append((name, x))
                pending_size[key] = pending_size.get(key, 0) + x.numel()
                if pending_size[key] >= _GROUP_MAX_TOTAL:
                    flush(key)
            else:
                run_large(name, x)
        for key in list(pending):
            flush(key)
    for name, src in alias.items():
        result[name] = result[src]
    return result


def tensor_stats(t: torch.Tensor, bins: int = HIST_BINS) -> TensorStats | None:
    """Statistics of one tensor, or ``None`` when it has no data (meta / lazy / complex).

    A tensor with ``numel() == 0`` gives a :class:`TensorStats` whose figures are all ``None``
    (``nan = inf = 0``, empty histogram).  Same results as :func:`compute_stats`.
    """
    return compute_stats([("t", t)], bins=bins)["t"]


def naive_stats(t: torch.Tensor, bins: int = HIST_BINS) -> TensorStats:
    """Straightforward reference: ``isfinite`` + ``var_mean`` + ``aminmax`` + ``histc``.

    Computed on the whole tensor in float32 (float64 for float64 and wide-integer input) over
    the finite values; used as the benchmark baseline and by the tests.  Raises
    ``ValueError`` for tensors without data.
    """
    bins = _check_bins(bins)
    if not _has_data(t):
        raise ValueError("tensor has no data (meta, uninitialized or complex)")
    with torch.no_grad():
        x = _flat(t)
        numel = x.numel()
        if numel == 0:
            return _empty(0)
        x = x.to(_compute_dtype(t.dtype))
        finite = torch.isfinite(x)
        if bool(finite.all()):
            nan = inf = 0
            xf = x
        else:
            nan = int(torch.isnan(x).sum())
            inf = int(torch.isinf(x).sum())
            xf = x[finite]
        zeros = int((x == 0).sum())
        n = xf.numel()
        if n == 0:
            return _empty(numel, nan=nan, inf=inf)
        var, mean = torch.var_mean(xf) if n > 1 else (None, xf.mean())
        lo_t, hi_t = torch.aminmax(xf)
        lo, hi = lo_t.item(), hi_t.item()
        edges = _edges(lo, hi, bins)
        counts = torch.histc(xf, bins=bins, min=edges[0], max=edges[-1]).to(torch.int64)
        return _make(
            numel=numel,
            n=n,
            mean=mean.item(),
            var=None if var is None else var.item(),
            lo=lo,
            hi=hi,
            abs_sum=xf.abs().sum().item(),
            zeros=zeros,
            nan=nan,
            inf=inf,
            counts=counts.tolist(),
            bins=bins,
        )
