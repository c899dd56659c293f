"""Tests for inittui.core.stats against a float64 numpy reference."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inittui.core.stats import (
    HIST_BINS,
    StatsCancelled,
    TensorStats,
    compute_stats,
    naive_stats,
    tensor_stats,
)
from inittui.core.stats import compute as stats_compute
from inittui.core.stats import large as stats_large

REL = 1e-4
ABS = 1e-6
REPO = Path(__file__).resolve().parents[1]

FLOAT_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
ALL_DTYPES = FLOAT_DTYPES + [torch.int8, torch.uint8, torch.int32, torch.int64, torch.bool]


# ---------------------------------------------------------------------------------------------
# reference


def reference(t: torch.Tensor) -> dict:
    """Float64 figures of ``t`` (numpy), scaled by a power of two so nothing under/overflows."""
    x = t.detach().to(torch.float64).reshape(-1).numpy()
    fin = np.isfinite(x)
    f = x[fin]
    out = {
        "numel": x.size,
        "n": f.size,
        "nan": int(np.isnan(x).sum()),
        "inf": int(np.isinf(x).sum()),
        "zero_fraction": float((x == 0).sum() / x.size) if x.size else None,
        "values": f,
    }
    if f.size == 0:
        out.update(mean=None, std=None, min=None, max=None, abs_mean=None, maxabs=0.0)
        return out
    maxabs = float(np.abs(f).max())
    s = 2.0 ** -math.frexp(maxabs)[1] if maxabs > 0 else 1.0
    g = f * s
    out.update(
        mean=float(g.mean() / s),
        std=float(g.std(ddof=1) / s) if f.size > 1 else None,
        min=float(f.min()),
        max=float(f.max()),
        abs_mean=float(np.abs(g).mean() / s),
        maxabs=maxabs,
    )
    return out


def close(a: float | None, b: float | None, atol: float = ABS, rel: float = REL) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(atol, rel * max(abs(a), abs(b)))


def assert_hist_ok(stats: TensorStats, ref: dict, bins: int) -> None:
    """Exact counts, up to values lying within 1e-4 of a bin width of an edge."""
    f = ref["values"]
    if f.size == 0:
        assert stats.hist_edges == [] and stats.hist_counts == []
        return
    edges = np.asarray(stats.hist_edges)
    assert len(edges) == bins + 1 and len(stats.hist_counts) == bins
    assert np.all(np.diff(edges) > 0)
    assert sum(stats.hist_counts) == f.size
    if ref["min"] != ref["max"]:
        assert edges[0] == ref["min"] and edges[-1] == ref["max"]
    ref_counts, _ = np.histogram(f, bins=edges)
    width = edges[-1] / bins - edges[0] / bins  # no overflow for float64 extremes
    # elements that may legitimately fall on either side of an edge (float rounding)
    with np.errstate(over="ignore"):
        dist = np.abs(f[:, None] - edges[None, 1:-1]).min(axis=1) if bins > 1 else np.inf
    ambiguous = int(np.sum(dist <= 1e-4 * width))
    moved = int(np.abs(np.asarray(stats.hist_counts) - ref_counts).sum())
    assert moved <= 2 * ambiguous, (moved, ambiguous, stats.hist_counts, ref_counts.tolist())


def assert_matches(stats: TensorStats | None, t: torch.Tensor, bins: int = HIST_BINS) -> None:
    ref = reference(t)
    assert stats is not None
    assert stats.nan == ref["nan"] and stats.inf == ref["inf"]
    assert close(stats.zero_fraction, ref["zero_fraction"], atol=0.0, rel=1e-12)
    # absolute tolerance: 1e-6, relative to the data magnitude when it exceeds 1
    atol = ABS * max(1.0, ref["maxabs"])
    for fld in ("mean", "abs_mean", "min", "max"):
        assert close(getattr(stats, fld), ref[fld], atol=atol), (fld, getattr(stats, fld), ref)
    assert close(stats.std, ref["std"], atol=atol), ("std", stats.std, ref["std"])
    if ref["n"]:
        assert ref["min"] <= stats.mean <= ref["max"]
    assert_hist_ok(stats, ref, bins)


@pytest.fixture
def small_chunks(monkeypatch):
    """Tiny chunks so small tensors exercise the multi-chunk and packed-histogram code."""
    monkeypatch.setattr(stats_large, "_CHUNK_CPU", 1024)
    monkeypatch.setattr(stats_large, "_PACK_MIN", 64)


# ---------------------------------------------------------------------------------------------
# property tests

shapes = st.lists(st.integers(1, 12), min_size=0, max_size=3).map(tuple)
special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0])


@st.composite
def small_tensors(draw):
    shape = draw(shapes)
    n = int(np.prod(shape)) if shape else 1
    scale = draw(st.sampled_from([1e-30, 1e-3, 1.0, 1e3]))
    offset = draw(st.sampled_from([0.0, 1.0, -50.0, 1000.0]))
    vals = draw(
        st.lists(
            st.one_of(st.floats(-4, 4, width=32), special)
            if draw(st.booleans())
            else st.floats(-4, 4, width=32),
            min_size=n,
            max_size=n,
        )
    )
    x = torch.tensor(vals, dtype=torch.float64).reshape(shape) * scale + offset
    return x.to(draw(st.sampled_from(ALL_DTYPES)))


@settings(max_examples=80, deadline=None)
@given(small_tensors(), st.sampled_from([1, 3, 32]))
def test_small_tensors_match_reference(t, bins):
    assert_matches(tensor_stats(t, bins=bins), t, bins)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(stats_compute._GROUP_MAX_NUMEL + 1, 12_000),
    dtype=st.sampled_from(ALL_DTYPES),
    loc=st.sampled_from([0.0, 0.01, -3.0, 1000.0]),
    scale=st.sampled_from([1e-30, 1e-4, 0.02, 1.0, 300.0]),
    n_special=st.integers(0, 3),
    zeros=st.booleans(),
    bins=st.sampled_from([1, 7, 32, 64, 300]),
    seed=st.integers(0, 2**31 - 1),
)
def test_streaming_path_matches_reference(
    small_chunks, n, dtype, loc, scale, n_special, zeros, bins, seed
):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc, scale, n)
    if zeros:
        x[rng.integers(0, n, n // 10)] = 0.0
    x[rng.integers(0, n, n_special)] = rng.choice([np.nan, np.inf, -np.inf], n_special)
    if dtype in (torch.int8, torch.uint8, torch.int32, torch.int64, torch.bool):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        x = np.clip(np.round(x), -100, 100)
        if dtype == torch.uint8:
            x = np.abs(x)
    t = torch.from_numpy(x).to(dtype)
    assert_matches(tensor_stats(t, bins=bins), t, bins)


# ---------------------------------------------------------------------------------------------
# hard cases


def test_constant_tensors_have_zero_std():
    for n in (768, 100_000):
        ln = torch.nn.LayerNorm(n)
        for p, v in ((ln.weight, 1.0), (ln.bias, 0.0)):
            s = tensor_stats(p)
            assert s.std == 0.0 and s.mean == v and s.min == v and s.max == v
            assert s.abs_mean == abs(v)
            assert s.zero_fraction == (1.0 if v == 0 else 0.0)
            assert sum(s.hist_counts) == n and s.hist_counts[HIST_BINS // 2] == n
            assert s.hist_edges[0] < v < s.hist_edges[-1]
            assert_matches(s, p)
    s = tensor_stats(torch.full((5000,), 3.7))
    assert s.std == 0.0 and s.mean == pytest.approx(3.7)


@pytest.mark.parametrize("n", [100, 200_000])
def test_large_offset_small_spread(n):
    g = torch.Generator().manual_seed(1)
    t = torch.randn(n, generator=g) * 0.01 + 1000.0
    s = tensor_stats(t)
    ref = reference(t)
    assert abs(s.std - ref["std"]) <= 1e-4 * ref["std"]
    assert abs(s.mean - ref["mean"]) <= 1e-6 * 1000
    assert_matches(s, t)


def test_single_element():
    for t in (torch.tensor([2.5]), torch.tensor(-1.0), torch.tensor([[0.0]])):
        s = tensor_stats(t)
        assert s.std is None
        assert s.mean == s.min == s.max == float(t)
        assert_matches(s, t)
    s = tensor_stats(torch.tensor([math.nan, 4.0, math.inf]))
    assert s.std is None and s.mean == 4.0 and (s.nan, s.inf) == (1, 1)


@pytest.mark.parametrize("n", [50, 300_000])
def test_nan_inf_mixed(n):
    g = torch.Generator().manual_seed(2)
    t = torch.randn(n, generator=g)
    t[3] = math.nan
    t[7] = math.inf
    t[11] = -math.inf
    t[-1] = math.nan
    t[20] = 0.0
    s = tensor_stats(t)
    assert (s.nan, s.inf) == (2, 2)
    assert all(math.isfinite(v) for v in (s.mean, s.std, s.min, s.max, s.abs_mean))
    assert_matches(s, t)
    assert_matches(naive_stats(t), t)


@pytest.mark.parametrize("n", [10, 100_000])
def test_all_nan_and_all_inf(n):
    s = tensor_stats(torch.full((n,), math.nan))
    assert (s.nan, s.inf, s.mean, s.std, s.min, s.max, s.abs_mean) == (
        n,
        0,
        None,
        None,
        None,
        None,
        None,
    )
    assert s.zero_fraction == 0.0 and s.hist_edges == [] and s.hist_counts == []
    t = torch.tensor([math.inf, -math.inf] * (n // 2))
    s = tensor_stats(t)
    assert (s.nan, s.inf, s.mean) == (0, n, None)
    assert naive_stats(t) == s


def test_huge_tensor():
    g = torch.Generator().manual_seed(3)
    t = torch.randn(50_000_000, generator=g).mul_(0.02).add_(0.001)
    s = tensor_stats(t)
    x = t.double()
    std, mean = torch.std_mean(x)
    assert close(s.mean, mean.item()) and close(s.std, std.item())
    assert close(s.abs_mean, x.abs().mean().item())
    assert (s.min, s.max) == (t.min().item(), t.max().item())
    assert sum(s.hist_counts) == t.numel()
    ref_counts = torch.histc(t, HIST_BINS, s.min, s.max).to(torch.int64)
    assert (torch.tensor(s.hist_counts) - ref_counts).abs().sum().item() <= 100


@pytest.mark.parametrize("n", [500, 100_000])
def test_very_small_and_very_large_values(n):
    g = torch.Generator().manual_seed(4)
    base = torch.randn(n, generator=g, dtype=torch.float64)
    for t in (
        (base * 1e-30).float(),
        base * 1e-300,
        base * 1e300,
        base * 1e-30 + 1e-29,
        (base * 1e-5 + 1.0).float(),
    ):
        s = tensor_stats(t)
        ref = reference(t)
        for fld in ("mean", "std", "abs_mean"):  # relative, not merely absolute
            assert abs(getattr(s, fld) - ref[fld]) <= 1e-4 * abs(ref[fld]), (fld, s, ref)
        assert_matches(s, t)


def test_extreme_float64_ranges():
    g = torch.Generator().manual_seed(9)
    u = torch.rand(10_000, generator=g, dtype=torch.float64)
    for t in (
        (u * 2 - 1) * 1.7e308,  # max - min overflows float64: edges must stay finite
        1e308 + u * 7e307,  # the sample mean overflows
        (u * 2 - 1)[:300] * 1.7e308,  # small tensor: batched path hands it to the streaming one
    ):
        s = tensor_stats(t)
        assert all(math.isfinite(e) for e in s.hist_edges)
        assert s.hist_edges[0] == s.min and s.hist_edges[-1] == s.max
        assert_matches(s, t)


def test_unrepresentative_sample_triggers_recentering():
    # the strided sample sees only the zeros, the data sits around 1: the first shift is far
    # from the mean and the variance sums must be redone around the mean
    n = stats_large._SAMPLE * 32
    g = torch.Generator().manual_seed(10)
    t = 1.0 + 0.01 * torch.randn(n, generator=g)
    t[:: n // stats_large._SAMPLE] = 0.0
    assert_matches(tensor_stats(t), t)
    t64 = t.double() * 1e-5 + 3.0
    t64[:: n // stats_large._SAMPLE] = -7.0
    assert_matches(tensor_stats(t64), t64)


def test_single_finite_value_in_large_tensor():
    t = torch.full((50_000,), math.nan)
    t[123] = 2.0
    t[7] = -math.inf
    s = tensor_stats(t)
    assert (s.mean, s.std, s.min, s.max, s.nan, s.inf) == (2.0, None, 2.0, 2.0, 49_998, 1)
    assert_matches(s, t)


def test_ragged_batches():
    g = torch.Generator().manual_seed(11)
    items = []
    for i in range(120):  # lengths share power-of-two buckets, > 64K elements in one bucket
        n = [513, 700, 1000, 1023, 2049, 4000, 4096][i % 7]
        t = torch.randn(n, generator=g) * (i + 1) * 0.1
        if i % 4 == 0:
            t[i % n] = [math.nan, math.inf, -math.inf, 0.0][i % 3]
        if i % 9 == 0:
            t[:] = 0.5
        if i % 10 == 0:
            t[:] = math.nan
        items.append((f"t{i}", t))
    out = compute_stats(items, bins=16)
    for name, t in items:
        assert_matches(out[name], t, bins=16)
        single = tensor_stats(t, bins=16)
        assert out[name].hist_counts == single.hist_counts
        assert close(out[name].std, single.std, atol=1e-12, rel=1e-12)


@pytest.mark.filterwarnings("ignore::UserWarning")  # quantized tensors are deprecated
def test_sparse_and_quantized_inputs():
    dense = torch.zeros(50, 40)
    dense[3, 4] = 1.5
    dense[10, 20] = -2.0
    s = tensor_stats(dense.to_sparse())
    assert_matches(s, dense)
    q = torch.quantize_per_tensor(torch.randn(300), scale=0.1, zero_point=0, dtype=torch.qint8)
    assert_matches(tensor_stats(q), q.dequantize())


def test_negative_zero_counts_as_zero():
    t = torch.randn(10_000)
    t[:100] = 0.0
    t[100:300] = -0.0
    s = tensor_stats(t)
    assert s.zero_fraction == pytest.approx(300 / 10_000)
    assert tensor_stats(t[:2000]).zero_fraction == pytest.approx(300 / 2000)


# ---------------------------------------------------------------------------------------------
# tensors without data, empty tensors, dtypes, layouts


def test_no_data_tensors_give_none():
    assert tensor_stats(torch.empty(3, 4, device="meta")) is None
    lazy = torch.nn.LazyLinear(4)
    assert tensor_stats(lazy.weight) is None
    assert tensor_stats(torch.nn.parameter.UninitializedBuffer()) is None
    out = compute_stats([("w", lazy.weight), ("m", torch.empty(2, device="meta"))])
    assert out == {"w": None, "m": None}
    with pytest.raises(ValueError):
        naive_stats(torch.empty(3, device="meta"))


def test_empty_tensor():
    for t in (torch.empty(0), torch.empty(3, 0, dtype=torch.float16)):
        s = tensor_stats(t)
        assert isinstance(s, TensorStats)
        assert (s.mean, s.std, s.min, s.max, s.abs_mean, s.zero_fraction) == (None,) * 6
        assert (s.nan, s.inf, s.hist_edges, s.hist_counts) == (0, 0, [], [])
        assert naive_stats(t) == s


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("n", [1000, 20_000])
def test_dtypes(dtype, n):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, generator=g) * 3
    t = (x > 0) if dtype == torch.bool else x.to(dtype)
    assert_matches(tensor_stats(t), t)
    assert_matches(naive_stats(t), t)


def test_non_contiguous_views():
    g = torch.Generator().manual_seed(6)
    base = torch.randn(300, 200, generator=g)
    for t in (
        base.t(),
        base[:, ::3],
        base[::2, 5:17],
        base[:, 0],
        torch.randn(1, 70, generator=g).expand(500, 70),
        base.to(torch.bfloat16).t()[::2],
    ):
        assert not t.is_contiguous()
        assert_matches(tensor_stats(t), t)


def test_input_is_not_modified():
    g = torch.Generator().manual_seed(7)
    for t in (
        torch.randn(5000, generator=g),
        torch.randn(3, 40_000, generator=g).t(),
        torch.randn(20_000, generator=g).to(torch.bfloat16),
        torch.tensor([1.0, math.nan, -math.inf, 0.0, -0.0] * 3000),
        torch.randn(200_000, generator=g, dtype=torch.float64) * 1e300,
        torch.randint(-5, 5, (9000,)),
        torch.rand(9000, generator=g) > 0.5,
    ):
        before = t.clone()
        stride, ptr = t.stride(), t.data_ptr()
        tensor_stats(t)
        compute_stats([("a", t), ("b", t[:10])])
        naive_stats(t)
        # bit-for-bit (NaN payloads, -0.0 included)
        bits = t.contiguous().reshape(-1).view(torch.uint8)
        assert torch.equal(bits, before.contiguous().reshape(-1).view(torch.uint8))
        assert (t.stride(), t.data_ptr()) == (stride, ptr)


def test_parameters_requiring_grad():
    lin = torch.nn.Linear(300, 200)
    s = tensor_stats(lin.weight)
    assert_matches(s, lin.weight.detach())
    assert lin.weight.grad is None


# ---------------------------------------------------------------------------------------------
# batch API


def _mixed_model_tensors() -> list[tuple[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(8)
    out = []
    for i in range(40):
        n = [1, 5, 768, 2304, 4096, 4097, 30_000][i % 7]
        t = torch.randn(n, generator=g) * (0.01 * (i + 1)) + (i % 3)
        if i % 5 == 0:
            t[0] = math.nan
        if i % 11 == 0:
            t = t.double()
        if i % 13 == 0:
            t = torch.ones(n)
        out.append((f"t{i}", t))
    out.append(("empty", torch.empty(0)))
    out.append(("meta", torch.empty(3, device="meta")))
    return out


def test_compute_stats_equals_tensor_stats():
    items = _mixed_model_tensors()
    batch = compute_stats(items)
    assert list(batch) == [name for name, _ in items]
    for name, t in items:
        single = tensor_stats(t)
        got = batch[name]
        if single is None:
            assert got is None
            continue
        for fld in ("mean", "std", "min", "max", "abs_mean", "zero_fraction"):
            assert close(getattr(got, fld), getattr(single, fld), atol=1e-12, rel=1e-12), fld
        assert (got.nan, got.inf, got.hist_counts) == (single.nan, single.inf, single.hist_counts)
        assert got.hist_edges == pytest.approx(single.hist_edges, rel=1e-12, abs=1e-12)
        if t.numel():
            assert_matches(got, t)


def test_compute_stats_multi_chunk(small_chunks):
    items = _mixed_model_tensors()
    for name, st_ in compute_stats(items, bins=7).items():
        t = dict(items)[name]
        if st_ is not None and t.numel():
            assert_matches(st_, t, bins=7)


def test_tied_weights_computed_once():
    emb = torch.nn.Embedding(100, 16)
    head = torch.nn.Linear(16, 100, bias=False)
    head.weight = emb.weight
    out = compute_stats([("emb", emb.weight), ("head", head.weight), ("view", emb.weight[:50])])
    assert out["emb"] is out["head"]
    assert out["view"] is not out["emb"]
    assert_matches(out["view"], emb.weight[:50])


def test_progress_callback():
    items = _mixed_model_tensors()
    total = sum(t.numel() for _, t in items if not t.is_meta)
    calls: list[tuple[int, int]] = []
    compute_stats(items, progress=lambda d, t: calls.append((d, t)))
    assert calls, "progress never called"
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == total and done[0] > 0


def test_progress_per_chunk(small_chunks):
    calls = []
    compute_stats([("x", torch.randn(10_000))], progress=lambda d, t: calls.append(d))
    assert len(calls) >= 10 and calls[-1] == 10_000


def test_cancel_raises():
    items = _mixed_model_tensors()
    with pytest.raises(StatsCancelled):
        compute_stats(items, cancel=lambda: True)
    polls = []

    def cancel_later() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(StatsCancelled):
        compute_stats(items, cancel=cancel_later)
    assert issubclass(StatsCancelled, Exception)
    assert compute_stats(items, cancel=lambda: False)["t1"] is not None


def test_cancel_inside_large_tensor(small_chunks):
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)

    with pytest.raises(StatsCancelled):
        compute_stats(
            [("x", torch.randn(50_000))], progress=progress, cancel=lambda: len(seen) >= 3
        )
    assert 0 < seen[-1] < 50_000


def test_bins_argument():
    t = torch.randn(5000)
    for bins in (1, 2, 5, 32, 181, 182, 40_000):
        s = tensor_stats(t, bins=bins)
        assert len(s.hist_counts) == bins and len(s.hist_edges) == bins + 1
        assert sum(s.hist_counts) == 5000
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            tensor_stats(t, bins=bad)


def test_to_dict():
    s = tensor_stats(torch.tensor([1.0, 2.0, math.nan]), bins=4)
    d = s.to_dict()
    assert set(d) == {
        "mean",
        "std",
        "min",
        "max",
        "abs_mean",
        "zero_fraction",
        "nan",
        "inf",
        "hist",
    }
    assert d["hist"] == {"edges": s.hist_edges, "counts": s.hist_counts}
    assert d["nan"] == 1 and d["mean"] == 1.5 and d["hist"]["counts"] == [1, 0, 0, 1]


def test_naive_matches_fast_on_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Embedding(3000, 64),
        torch.nn.Linear(64, 256),
        torch.nn.LayerNorm(256),
        torch.nn.Linear(256, 64),
    )
    fast = compute_stats(model.named_parameters())
    for name, p in model.named_parameters():
        assert_matches(fast[name], p)
        assert_matches(naive_stats(p), p)


def test_module_imports_no_ui_libraries():
    files = sorted((REPO / "inittui" / "core" / "stats").glob("*.py"))
    assert len(files) >= 5
    for path in files:
        src = path.read_text()
        for lib in ("textual", "rich", "numpy"):
            assert f"import {lib}" not in src and f"from {lib}" not in src, path


def test_benchmark_quick_mode(capsys):
    spec = importlib.util.spec_from_file_location(
        "bench_stats", REPO / "benchmarks" / "bench_stats.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ratio = bench.main(["--quick"])
    out = capsys.readouterr().out
    assert "(target <= 0.10)" in out
    assert "ratio fast/one-pass = " in out
    # The ratio it returns is the one it prints, and is fast/naive of the printed times.
    assert f"ratio fast/naive = {ratio:.2f} " in out
    naive_ms = float(re.search(r"naive loop\s*:\s*([\d.]+) ms", out).group(1))
    fast_ms = float(re.search(r"compute_stats\s*:\s*([\d.]+) ms", out).group(1))
    assert ratio == pytest.approx(fast_ms / naive_ms, rel=0.05, abs=0.005)
    # It compared the figures of every tensor of the quick model.
    tensors = len(list(bench.build_model(True).parameters()))
    assert (
        f"figures match within rel {bench.REL_TOL:g} / abs {bench.ABS_TOL:g} for all {tensors} tensors"
        in out
    )


def test_every_cancellation_is_one_type():
    from inittui.core.errors import Cancelled, CancelledError, InittuiError

    assert issubclass(StatsCancelled, Cancelled) and issubclass(CancelledError, Cancelled)
    assert not issubclass(StatsCancelled, InittuiError)  # a cancel is not bad input
    with pytest.raises(Cancelled):
        compute_stats(_mixed_model_tensors(), cancel=lambda: True)


def test_planned_stats_applies_the_plan_to_a_copy():
    from inittui.core.plan import Plan, Rule, resolve_plan
    from inittui.core.stats import planned_stats
    from inittui.core.tree import build_tree

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = Plan(rules=(Rule(select="0", params="bias", scheme="constant", args={"val": 0.5}),))
    resolved = resolve_plan(plan, model, build_tree(model))
    calls = []
    stats = planned_stats(model, resolved, progress=lambda d, t: calls.append((d, t)))
    assert set(stats) == {"0.bias"} and calls
    assert stats["0.bias"].mean == 0.5 and stats["0.bias"].std == 0.0
    for name, value in model.state_dict().items():  # the model keeps its values
        assert torch.equal(value, before[name])
    with pytest.raises(Exception) as caught:
        planned_stats(model, resolved, cancel=lambda: True)
    from inittui.core.errors import Cancelled

    assert isinstance(caught.value, Cancelled)
