"""Benchmark: a 70B-parameter Llama on the meta device, load + tree + inspect report.

Usage::

    python benchmarks/bench_meta_70b.py            # tests/models/llama.py:llama_70b (~69B)
    python benchmarks/bench_meta_70b.py --quick    # 8 layers instead of 80, smoke test

Times ``load_model(TARGET, device="meta")`` + ``traced_tree`` (the tree with the fans of
one meta forward) + ``inspect_report`` (what
``inittui inspect --device meta --json`` computes, without printing), then
``resolve_plan`` + ``render_script`` for a typical plan, against the baseline of just
constructing ``Llama(**LLAMA_70B)`` under ``torch.device("meta")``. Each is warmed up once,
then the best of 3 timings is taken; prints the times, ``ratio inspect/construct``,
``ratio plan+script/construct`` and the peak RSS of this process. Also checks that every
parameter stays on meta and that no statistics were computed.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from models.llama import LLAMA_70B, Llama  # noqa: E402

from inittui.core.codegen import render_script  # noqa: E402
from inittui.core.fans import traced_tree  # noqa: E402
from inittui.core.loading import load_model  # noqa: E402
from inittui.core.plan import parse_plan, resolve_plan  # noqa: E402
from inittui.core.summary import inspect_report  # noqa: E402

# The plan the 70B tests use too (defaults, normal(0.02), scaled down_proj, trunc_normal
# embeddings).
PLAN = (ROOT / "tests" / "plans" / "llama.toml").read_text(encoding="utf-8")


FIRST_CALL: dict[str, float] = {}


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()  # warm-up (imports the model file once)
    FIRST_CALL[fn.__name__] = time.perf_counter() - t0
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_gib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**30 if sys.platform == "darwin" else 2**20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 layers instead of 80")
    args = parser.parse_args()
    config = dict(LLAMA_70B, n_layers=8) if args.quick else dict(LLAMA_70B)
    target = f"{ROOT / 'tests' / 'models' / 'llama.py'}:Llama"

    def construct():
        with torch.device("meta"):
            return Llama(**config)

    def inspect():
        loaded = load_model(target, config, device="meta")
        tree = traced_tree(loaded)  # what inspect runs: the tree, fans from a meta forward
        return loaded, tree, inspect_report(loaded, tree)

    t_base, _ = best_of(construct)
    t_inspect, (loaded, tree, report) = best_of(inspect)
    plan = parse_plan(PLAN)
    t_plan, script = best_of(
        lambda: render_script(resolve_plan(plan, loaded.model, tree), target, "Llama")
    )

    assert all(p.is_meta for p in loaded.model.parameters()), "a parameter left meta"
    assert all(p["stats"] is None for p in report["parameters"]), "statistics on meta"
    size = len(json.dumps(report))
    print(
        f"model: Llama {report['total_params'] / 1e9:.2f}B parameters, "
        f"{len(report['parameters'])} tensors, {len(report['modules'])} modules; "
        f"torch {torch.__version__}"
    )
    print(f"construct on meta (baseline)     : {t_base * 1e3:8.1f} ms")
    print(
        f"load + tree + inspect report     : {t_inspect * 1e3:8.1f} ms  ({size / 1e6:.2f} MB JSON)"
    )
    print(
        f"resolve_plan + render_script     : {t_plan * 1e3:8.1f} ms  ({len(script) / 1e3:.0f} kB script)"
    )
    print(
        f"(cold, first call in this process: construct {FIRST_CALL['construct'] * 1e3:.0f} ms; "
        "torch imports its meta kernels on the first meta op)"
    )
    print(f"ratio inspect/construct = {t_inspect / t_base:.2f}")
    print(f"ratio plan+script/construct = {t_plan / t_base:.2f}")
    print(f"peak RSS = {peak_rss_gib():.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
