"""Small tensors (``numel <= 4096``: biases, norms) in batches: up to 64K elements of the
same dtype and similar length become the rows of one zero-padded ``[k, L]`` float64 matrix,
and every figure is a row reduction, so ~25 ops serve a whole batch instead of ~25 per
tensor."""

from __future__ import annotations

import math

import torch

from inittui.core.stats.records import TensorStats, _empty, _make

_F64 = torch.float64


def _group_stats(flats: list[torch.Tensor], bins: int) -> list[TensorStats | None]:
    """Stats of many small 1-D tensors (same device and dtype) with ~25 dense ops in total.

    The tensors become the rows of one zero-padded ``[k, L]`` float64 matrix and every figure
    is a row reduction (``sum(dim=1)`` etc.), so the cost does not grow with ``k`` the way a
    per-tensor loop of tiny ops does.  NaN/Inf and the padding are masked out with
    ``isfinite & valid``; the histogram is one ``bincount`` over ``row * bins + bin``.
    Returns ``None`` for a tensor whose magnitude is too extreme for the unscaled float64
    formulas (the caller then uses the streaming path, which pre-scales).
    """
    lens = [f.numel() for f in flats]
    rows, hist_rows = _row_figures(flats, lens, bins)
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


def _row_figures(
    flats: list[torch.Tensor], lens: list[int], bins: int
) -> tuple[list[list[float]], list[list[int]]]:
    """Per tensor ``[n, shift, S1, S2, min, max, sum |x|, zeros, nan, inf]`` and its
    histogram counts, from row reductions of the padded matrix."""
    dev = flats[0].device
    k = len(flats)
    width = max(lens)
    ragged = min(lens) != width
    if ragged:
        mat = torch.nn.utils.rnn.pad_sequence(flats, batch_first=True)
    else:
        mat = torch.stack(flats)
    mat = mat.to(_F64)
    fin = torch.isfinite(mat)
    valid = None
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
        zeros = ((mat == 0) & valid).sum(1) if valid is not None else (mat == 0).sum(1)
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
    hist_rows = _row_histograms(vals, None if clean else fin, cnt, lo, hi, bins)
    rows = torch.stack(
        [cnt.to(_F64), shift, s1, s2, lo, hi, abs_sum, zeros.to(_F64), nan_c.to(_F64)]
        + [inf_c.to(_F64)]
    ).T.tolist()
    return rows, hist_rows


def _row_histograms(
    vals: torch.Tensor,
    fin: torch.Tensor | None,
    cnt: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    bins: int,
) -> list[list[int]]:
    """Each row's histogram with one ``bincount`` over ``row * bins + bin`` (``fin``: the
    values to count, None for all)."""
    k = vals.shape[0]
    span = hi - lo
    ok = (cnt > 0) & (span > 0) & torch.isfinite(span)
    scale = torch.where(ok, bins / torch.where(ok, span, 1.0), 0.0)
    base = torch.where(cnt > 0, lo, 0.0)
    idx = ((vals - base[:, None]) * scale[:, None]).to(torch.int64).clamp_(0, bins - 1)
    idx += torch.arange(0, k * bins, bins, device=vals.device)[:, None]
    if fin is not None:  # dump NaN/Inf/padding into an extra bin that is dropped
        idx = torch.where(fin, idx, k * bins)
    hist = torch.bincount(idx.view(-1), minlength=k * bins + 1)[: k * bins]
    return hist.view(k, bins).tolist()
