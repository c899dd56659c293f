"""Large tensors: the chunked two-pass streaming described in :mod:`inittui.core.stats`
(pass 1: min/max and a sample for the shift; pass 2: ``sum |x|``, zeros, shifted sums and
the packed histogram over cache-sized chunks; the sums redone around the mean when the
shift was far off)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inittui.core.stats.records import TensorStats, _compute_dtype, _empty, _make, _Ticker

_CHUNK_CPU = 1 << 18  # elements per chunk on CPU: temporaries (~2.5 MB per thread) stay in cache
_CHUNK_ACCEL = 1 << 24  # elements per chunk on accelerators (bounds temporary memory only)
_SAMPLE = 4096  # elements in the strided sample that estimates the shift
_PACK_LIMIT = 1 << 15  # bins**g must fit an int16 joint-histogram index
_PACK_MIN = 1 << 17  # pack only chunks this big (the bins**g histogram costs ~30 us)
_CANCEL_RATIO = 16.0  # recompute the variance sums when S2 / (S2 - S1^2/n) exceeds this
_F32_SPREAD_LO = 2.0**-40  # float32 compute only for spreads in [LO, HI] (no under/overflow
_F32_SPREAD_HI = 2.0**40  # of squares or of their sums)
_F64_MAG_HI = 2.0**960  # float64: pre-scale when max |x| exceeds this (sum |x| overflow)
_F64_SPREAD_LO = 2.0**-450  # float64: pre-scale when the spread is outside [LO, HI]
_F64_SPREAD_HI = 2.0**480
_F64 = torch.float64


def _pow2_floor(v: float) -> float:
    """Largest power of two <= v (v > 0, finite)."""
    return math.ldexp(1.0, math.frexp(v)[1] - 1)


def _pack_width(bins: int) -> int:
    """Largest ``g >= 1`` with ``bins**g <= 32768`` (number of indices packed per bincount)."""
    g = 1
    while bins > 1 and bins ** (g + 1) <= _PACK_LIMIT:
        g += 1
    return g


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


@dataclass(frozen=True)
class _Scaling:
    """How pass 2 sees the values: in ``dtype``, times the exact power of two ``factor``,
    shifted by ``shift`` (in scaled units, as the kernels see it; 0.0: no shift op)."""

    dtype: torch.dtype
    factor: float
    shift: float


def _large_stats(
    x: torch.Tensor, bins: int, ws: _Workspace, ticker: _Ticker, numel: int | None = None
) -> TensorStats:
    """Stats of a 1-D tensor with data, streamed in chunks (see the package docstring).

    ``numel`` is the element count of the original tensor when ``x`` holds only its finite
    values (the NaN/Inf slow path); it is the denominator of ``zero_fraction``.
    """
    n = x.numel()
    numel = n if numel is None else numel
    lo, hi, c0, sd0 = _first_pass(x, ws.chunk, ticker)
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
    scaling = _choose_scaling(x.dtype, lo, hi, c0, sd0)
    abs_sum, s1, s2, zeros, hist = _second_pass(x, bins, ws, ticker, scaling, lo, hi)
    c, factor = scaling.shift, scaling.factor
    # ---- a shift far from the mean loses digits in S2 - S1^2/n: redo the sums around the mean
    centered = s2 - s1 * s1 / n
    if n > 1 and s2 > 0.0 and (centered <= 0.0 or s2 > _CANCEL_RATIO * centered):
        c, s1, s2 = _shifted_sums(x, ws, ticker, scaling, c + s1 / n)
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


def _first_pass(x: torch.Tensor, chunk: int, ticker: _Ticker) -> list[float]:
    """``[min, max, sample mean, sample std]``: min/max over chunks (NaN propagates, Inf
    shows), mean and std of a strided sample (the shift estimate)."""
    n = x.numel()
    if n <= chunk:
        lo_t, hi_t = torch.aminmax(x)
    else:
        mins, maxs = [], []
        for s in range(0, n, chunk):
            mn, mx = torch.aminmax(x[s : s + chunk])
            mins.append(mn)
            maxs.append(mx)
            ticker.tick(min(chunk, n - s) // 2)
        lo_t, hi_t = torch.stack(mins).min(), torch.stack(maxs).max()
    sample = (x if n <= _SAMPLE else x[:: n // _SAMPLE][:_SAMPLE]).to(_F64)
    if sample.numel() > 1:
        sd_t, mean_t = torch.std_mean(sample)
    else:
        mean_t = sd_t = sample.sum()
    return torch.stack([lo_t.to(_F64), hi_t.to(_F64), mean_t, sd_t]).tolist()


def _choose_scaling(src: torch.dtype, lo: float, hi: float, c0: float, sd0: float) -> _Scaling:
    """The compute dtype, an exact power-of-two pre-scale and the shift (see Precision)."""
    spread = hi - lo
    mag = max(abs(lo), abs(hi))
    cd = _compute_dtype(src)
    factor = 1.0
    if cd == torch.float32 and not (_F32_SPREAD_LO <= spread <= _F32_SPREAD_HI):
        cd = _F64
    if src == _F64:
        if mag > _F64_MAG_HI:
            factor = 1.0 / _pow2_floor(mag)
        elif not (_F64_SPREAD_LO <= spread <= _F64_SPREAD_HI):
            factor = 1.0 / _pow2_floor(spread)
    if not math.isfinite(c0) or not (lo <= c0 <= hi):
        c0 = 0.5 * lo + 0.5 * hi
    if not math.isfinite(sd0):
        sd0 = 0.0
    if abs(c0) <= 0.25 * sd0:  # centred data (most weights): no shift, saves one op a chunk
        return _Scaling(cd, factor, 0.0)
    c = torch.tensor(c0 * factor, dtype=cd).item()  # the shift as the kernels will see it
    return _Scaling(cd, factor, min(max(c, lo * factor), hi * factor))


class _ChunkHistogram:
    """The histogram of pass 2, one chunk at a time: ``u = (x - lo) * bins / (hi - lo)``
    truncated to a bin index; ``g`` sub-chunks packed into one base-``bins`` number so the
    serial ``bincount`` sees ``1/g`` of the elements (a ``bins**g`` joint histogram,
    marginalised in :meth:`counts`)."""

    def __init__(
        self, bins: int, lo_s: float, hi_s: float, scaling: _Scaling, fused: bool, ws: _Workspace
    ) -> None:
        self.bins, self.lo_s, self.ws = bins, lo_s, ws
        self.g = _pack_width(bins)
        self.idx_dtype = torch.int16 if bins <= _PACK_LIMIT else torch.int32
        self.hscale = bins / (hi_s - lo_s)
        # When |lo| and |hi| are at most a few spreads, the fused ``hscale * x + (-lo *
        # hscale)`` (one op) is off by < 1e-5 of a bin; with a large offset (mean 1000, std
        # 0.01) subtract first, which is exact at x = lo.
        self.fused = fused
        self.neg_lo = torch.tensor(-lo_s * self.hscale, dtype=scaling.dtype, device=ws.device)
        self.joint: torch.Tensor | None = None  # bins**g joint histogram of packed tuples
        self.direct: torch.Tensor | None = None  # plain histogram (small chunks, leftovers)

    def add(self, xc: torch.Tensor, d: torch.Tensor) -> None:
        """Count chunk ``xc`` (in compute units); ``d`` is scratch of the same size."""
        bins, g, m = self.bins, self.g, xc.numel()
        if self.fused:  # may give -1 ulp at x = lo: truncation still maps it to bin 0
            torch.add(self.neg_lo, xc, alpha=self.hscale, out=d)
        else:  # exact 0 at x = lo, never negative (rounding is monotonic)
            torch.sub(xc, self.lo_s, out=d).mul_(self.hscale)
        idx = self.ws.buf("idx", self.idx_dtype, m)
        idx.copy_(d)  # truncation = floor for u >= 0
        idx.clamp_(0, bins - 1)  # x = max gives u = bins
        q = m // g if g > 1 and m >= _PACK_MIN else 0
        if q:
            packed = self.ws.buf("pack", self.idx_dtype, q)
            torch.add(idx[q : 2 * q], idx[:q], alpha=bins, out=packed)
            for j in range(2, g):
                torch.add(idx[j * q : (j + 1) * q], packed, alpha=bins, out=packed)
            h = torch.bincount(packed, minlength=bins**g)
            self.joint = h if self.joint is None else self.joint.add_(h)
        if g * q < m:
            h = torch.bincount(idx[g * q :], minlength=bins)
            self.direct = h if self.direct is None else self.direct.add_(h)

    def counts(self) -> torch.Tensor:
        bins, g = self.bins, self.g
        counts = self.direct
        if counts is None:
            counts = torch.zeros(bins, dtype=torch.int64, device=self.ws.device)
        if self.joint is not None:
            cube = self.joint.view((bins,) * g)
            for j in range(g):
                counts = counts + cube.sum(dim=tuple(a for a in range(g) if a != j))
        return counts


def _second_pass(
    x: torch.Tensor,
    bins: int,
    ws: _Workspace,
    ticker: _Ticker,
    scaling: _Scaling,
    lo: float,
    hi: float,
) -> tuple[float, float, float, int, list[int]]:
    """``(sum |x|, S1, S2, zeros, histogram)`` in one pass over the chunks (scaled units)."""
    n, chunk = x.numel(), ws.chunk
    cd, factor, c = scaling.dtype, scaling.factor, scaling.shift
    zeros_possible = lo <= 0.0 <= hi
    int_view = torch.int64 if cd == _F64 else torch.int32
    on_cpu = x.device.type == "cpu"
    hist = None
    if bins > 1:
        fused = max(abs(lo), abs(hi)) <= 4.0 * (hi - lo)
        hist = _ChunkHistogram(bins, lo * factor, hi * factor, scaling, fused, ws)
    abs_parts: list[torch.Tensor] = []
    s1_parts: list[torch.Tensor] = []
    s2_parts: list[torch.Tensor] = []
    zero_parts: list[torch.Tensor] = []
    for s in range(0, n, chunk):
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
        if hist is not None:
            hist.add(xc, d)
        ticker.tick(m - m // 2 if n > chunk else m)
    k = len(abs_parts)
    tail = [torch.stack(abs_parts + s1_parts + s2_parts).to(_F64).view(3, k).sum(1)]
    if zero_parts:
        tail.append(torch.stack(zero_parts).sum().to(_F64).view(1))
    if hist is not None:
        tail.append(hist.counts().to(_F64))
    vals = torch.cat(tail).tolist()  # one device sync for every figure
    zeros = round(vals[3]) if zero_parts else 0
    counts = [round(v) for v in vals[-bins:]] if hist is not None else [n]
    return vals[0], vals[1], vals[2], zeros, counts


def _shifted_sums(
    x: torch.Tensor, ws: _Workspace, ticker: _Ticker, scaling: _Scaling, shift: float
) -> tuple[float, float, float]:
    """``(c, S1, S2)`` again around ``shift`` (as the kernels see it)."""
    cd, chunk = scaling.dtype, ws.chunk
    c = torch.tensor(shift, dtype=cd).item()
    s1_parts, s2_parts = [], []
    for s in range(0, x.numel(), chunk):
        xc = _as_compute(x[s : s + chunk], cd, scaling.factor, ws)
        d = ws.buf("d", cd, xc.numel())
        torch.sub(xc, c, out=d)
        s1_parts.append(d.sum())
        s2_parts.append(d.square_().sum())
        ticker.check()
    k = len(s1_parts)
    s1, s2 = torch.stack(s1_parts + s2_parts).to(_F64).view(2, k).sum(1).tolist()
    return c, s1, s2


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
