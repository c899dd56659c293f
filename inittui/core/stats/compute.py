"""The public entry points: :func:`compute_stats` (dedupes tied tensors, batches the small
ones, streams the large ones), :func:`tensor_stats`, the reference :func:`naive_stats` and
:func:`planned_stats` (the figures a plan would give, on a copy of the model)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

from inittui.core.stats.large import _large_stats, _Workspace
from inittui.core.stats.parallel import run_parallel, worker_count
from inittui.core.stats.records import (
    HIST_BINS,
    TensorStats,
    _alias_key,
    _check_bins,
    _compute_dtype,
    _edges,
    _empty,
    _flat,
    _has_data,
    _make,
    _Ticker,
)
from inittui.core.stats.small import _group_stats

if TYPE_CHECKING:
    from inittui.core.plan import ResolvedPlan

_GROUP_MAX_NUMEL = 1 << 12  # tensors up to this size are batched together
_GROUP_MAX_TOTAL = 1 << 16  # elements per batch (padded): temporaries stay in cache

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
    work, alias = _with_data_once(items)
    ticker = _Ticker(sum(t.numel() for _, t in work), progress, cancel)
    run = _Run(bins, ticker, result)
    with torch.no_grad():
        for name, t in work:
            run.add(name, _flat(t))
        run.run()
    for name, src in alias.items():
        result[name] = result[src]
    return result


def _with_data_once(
    items: list[tuple[str, torch.Tensor]],
) -> tuple[list[tuple[str, torch.Tensor]], dict[str, str]]:
    """The tensors with data, each storage view once; and alias name -> computed name."""
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
    return work, alias


class _Run:
    """One :func:`compute_stats` call: large tensors and batches of small ones (same
    power-of-two length bucket: the padding stays < 2x) become tasks, run on single-threaded
    workers when that pays (:mod:`~inittui.core.stats.parallel`), else in this thread."""

    def __init__(self, bins: int, ticker: _Ticker, result: dict[str, TensorStats | None]):
        self.bins, self.ticker, self.result = bins, ticker, result
        self.local = threading.local()  # per-thread scratch buffers
        self.pending: dict[_GroupKey, list[tuple[str, torch.Tensor]]] = {}
        self.pending_size: dict[_GroupKey, int] = {}
        self.tasks: list[tuple[torch.device, int, Callable[[_Ticker], None]]] = []

    def workspace(self, dev: torch.device) -> _Workspace:
        spaces = self.local.__dict__.setdefault("spaces", {})
        if dev not in spaces:
            spaces[dev] = _Workspace(dev)
        return spaces[dev]

    def add(self, name: str, x: torch.Tensor) -> None:
        if x.numel() == 0:
            self.result[name] = _empty(0)
        elif x.numel() <= _GROUP_MAX_NUMEL:
            key = (x.device, x.dtype, x.numel().bit_length())
            self.pending.setdefault(key, []).append((name, x))
            self.pending_size[key] = self.pending_size.get(key, 0) + x.numel()
            if self.pending_size[key] >= _GROUP_MAX_TOTAL:
                self.flush(key)
        else:
            self.tasks.append((x.device, x.numel(), lambda tk: self.large(name, x, tk)))

    def large(self, name: str, x: torch.Tensor, ticker: _Ticker) -> None:
        self.result[name] = _large_stats(x, self.bins, self.workspace(x.device), ticker)

    def flush(self, key: _GroupKey) -> None:
        group = self.pending.pop(key)
        size = self.pending_size.pop(key)
        self.tasks.append((key[0], size, lambda tk: self.group(group)))

    def group(self, group: list[tuple[str, torch.Tensor]]) -> None:
        outs = _group_stats([x for _, x in group], self.bins)
        for (name, x), st in zip(group, outs, strict=True):
            if st is None:  # extreme float64 magnitude: the streaming path pre-scales
                ws = self.workspace(x.device)
                st = _large_stats(x, self.bins, ws, _Ticker(0, None, None))
            self.result[name] = st

    def run(self) -> None:
        """Every pending batch, then every task: CPU ones on workers when that pays."""
        for key in list(self.pending):
            self.flush(key)
        cpu = [(n, fn) for dev, n, fn in self.tasks if dev.type == "cpu"]
        threads = worker_count(sum(n for n, _ in cpu), len(cpu))
        if threads > 1:
            run_parallel(cpu, threads, self.ticker)
        for dev, n, fn in self.tasks:
            if threads == 1 or dev.type != "cpu":
                self.ticker.begin(n)
                fn(self.ticker)
                self.ticker.finish()


def tensor_stats(t: torch.Tensor, bins: int = HIST_BINS) -> TensorStats | None:
    """Statistics of one tensor, or ``None`` when it has no data (meta / lazy / complex).

    A tensor with ``numel() == 0`` gives a :class:`TensorStats` whose figures are all ``None``
    (``nan = inf = 0``, empty histogram).  Same results as :func:`compute_stats`.
    """
    return compute_stats([("t", t)], bins=bins)["t"]


def planned_stats(
    model: nn.Module,
    resolved: ResolvedPlan,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict[str, TensorStats | None]:
    """Statistics of the parameters ``resolved`` (a :class:`~inittui.core.plan.ResolvedPlan`)
    initializes, as the plan leaves them: applied to a copy of ``model`` (the model keeps
    its values). ``progress`` and ``cancel`` serve both the apply and the statistics;
    a cancel raises a :class:`~inittui.core.errors.Cancelled`."""
    from inittui.core.apply import apply_plan

    planned = copy.deepcopy(model)
    apply_plan(planned, resolved, progress=progress, cancel=cancel)
    named = dict(planned.named_parameters(remove_duplicate=False))
    tensors = [
        (step.param, named[step.param].detach()) for step in resolved.steps if step.param in named
    ]
    return compute_stats(tensors, progress=progress, cancel=cancel)


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
