"""The statistics' worker threads (inittui.core.stats.parallel): same figures as the calling
thread, float64-reference accuracy at chunk boundaries, progress and cancel in the caller."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inittui.core.stats import StatsCancelled, compute_stats
from inittui.core.stats import compute as stats_compute
from inittui.core.stats import large as stats_large
from inittui.core.stats import parallel as stats_parallel
from tests.test_stats import ALL_DTYPES, assert_matches, close

CHUNK = 1024

needs_workers = pytest.mark.skipif(
    stats_parallel._omp() is None or torch.get_num_threads() < 2,
    reason="no reachable OpenMP runtime or a single torch thread: the caller runs everything",
)


@pytest.fixture
def forced(monkeypatch):
    """Tiny chunks and no size threshold: every call with 2+ tasks uses the workers."""
    monkeypatch.setattr(stats_large, "_CHUNK_CPU", CHUNK)
    monkeypatch.setattr(stats_large, "_PACK_MIN", 64)
    monkeypatch.setattr(stats_parallel, "_PARALLEL_MIN", 0)


def _tensor(n: int, dtype: torch.dtype, special: int, zeros: bool, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.02, n)
    if zeros and n:
        x[rng.integers(0, n, max(1, n // 10))] = 0.0
    if n:
        x[rng.integers(0, n, special)] = rng.choice([np.nan, np.inf, -np.inf], special)
    if not dtype.is_floating_point:
        x = np.clip(np.round(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) * 300), -90, 90)
        x = np.abs(x) if dtype == torch.uint8 else x
    return torch.from_numpy(x).to(dtype)


sizes = st.one_of(
    st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7, 4097]),
    st.integers(0, 6 * CHUNK),
)
tensors = st.builds(
    _tensor,
    n=sizes,
    dtype=st.sampled_from(ALL_DTYPES),
    special=st.integers(0, 3),
    zeros=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)


@needs_workers
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(tensors, min_size=2, max_size=6), bins=st.sampled_from([1, 7, 32]))
def test_workers_match_reference_and_caller(forced, items, bins):
    named = [(f"t{i}", t) for i, t in enumerate(items)]
    got = compute_stats(named, bins=bins)
    for name, t in named:
        st_ = got[name]
        if t.numel() == 0:
            assert st_ is not None and st_.mean is None and st_.zero_fraction is None
            continue
        assert_matches(st_, t, bins)
        one = compute_stats([(name, t)], bins=bins)[name]  # one task: the calling thread
        for fld in ("mean", "std", "min", "max", "abs_mean", "zero_fraction"):
            assert close(getattr(st_, fld), getattr(one, fld), atol=1e-12, rel=1e-9), fld
        assert (st_.nan, st_.inf, st_.hist_counts) == (one.nan, one.inf, one.hist_counts)


@needs_workers
def test_workers_are_used_single_threaded_and_leave_the_caller_alone(forced, monkeypatch):
    seen: list[tuple[int, int]] = []
    real = stats_compute._large_stats

    def spy(*args, **kwargs):
        seen.append((threading.get_ident(), torch.get_num_threads()))
        return real(*args, **kwargs)

    monkeypatch.setattr(stats_compute, "_large_stats", spy)
    before = torch.get_num_threads()
    items = [(f"w{i}", torch.randn(5000 + i)) for i in range(6)]
    compute_stats(items)
    assert len(seen) == 6
    assert all(n == 1 for _, n in seen), seen  # each worker runs its ops on one thread
    assert threading.get_ident() not in {tid for tid, _ in seen}
    assert torch.get_num_threads() == before


@needs_workers
def test_progress_and_cancel_stay_in_the_calling_thread(forced, monkeypatch):
    monkeypatch.setattr(stats_parallel, "_POLL_S", 0.001)
    items = [(f"p{i}", torch.randn(20_000)) for i in range(4)]
    total = sum(t.numel() for _, t in items)
    calls: list[tuple[int, int, int]] = []
    compute_stats(items, progress=lambda d, t: calls.append((threading.get_ident(), d, t)))
    assert {c[0] for c in calls} == {threading.get_ident()}
    done = [d for _, d, _ in calls]
    assert done == sorted(done) and done[-1] == total and all(t == total for *_, t in calls)

    polls: list[int] = []

    def cancel() -> bool:
        polls.append(threading.get_ident())
        return len(polls) > 2

    with pytest.raises(StatsCancelled):
        compute_stats(items, cancel=cancel)
    assert set(polls) == {threading.get_ident()}


@needs_workers
def test_a_worker_error_reaches_the_caller(forced, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(stats_compute, "_large_stats", boom)
    with pytest.raises(RuntimeError, match="boom"):
        compute_stats([("a", torch.randn(5000)), ("b", torch.randn(6000))])


def test_small_work_stays_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert stats_parallel.worker_count(stats_parallel._PARALLEL_MIN - 1, 4) == 1
    assert stats_parallel.worker_count(10**9, 1) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert stats_parallel.worker_count(10**9, 4) == 1


def test_nan_in_a_worker_task_is_counted():
    t = torch.randn(3 * CHUNK)
    t[5] = math.nan
    t[7] = -math.inf
    st_ = compute_stats([("x", t), ("y", torch.randn(10))])["x"]
    assert (st_.nan, st_.inf) == (1, 1)
    assert_matches(st_, t)
