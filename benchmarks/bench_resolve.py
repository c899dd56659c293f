"""Benchmark: plan resolution is linear in rules and layers, and globs cannot backtrack.

Usage::

    python benchmarks/bench_resolve.py            # 500 and 5,000 rules on as many layers
    python benchmarks/bench_resolve.py --quick    # 100 and 1,000, smoke test

The plans are the ones ``lsuv`` writes: the ``type:`` rules, then one exact-path rule per
layer (``select = "layers.17"``, ``params = "weight"``, orthogonal with its own scale). A
resolver that tries every rule on every parameter grows with rules x layers (x100 for ten
times both); an indexed one with rules + layers (x10). Prints both times and ``ratio``
(best of 3 each), once as is and once with the cyclic garbage collector paused, whose full
passes grow with the whole heap (the model, the tree) rather than with the resolver.

Then the glob ``*a*a*a*a*a*a*a*a*b`` against a 60-character path that does not match:
a backtracking regex takes minutes; the automaton takes milliseconds.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch import nn  # noqa: E402

from inittui.core.plan import Plan, Rule, resolve_plan  # noqa: E402
from inittui.core.plan.select import compile_select  # noqa: E402
from inittui.core.tree import build_tree  # noqa: E402

REDOS = "*a*a*a*a*a*a*a*a*b"


def lsuv_like(layers: int) -> tuple[nn.Module, Plan]:
    """``layers`` tiny Linear layers and the plan lsuv would write for them."""
    model = nn.Sequential()
    model.add_module("layers", nn.Sequential(*(nn.Linear(2, 2) for _ in range(layers))))
    rules = [
        Rule(select="type:Linear", params="bias", scheme="zeros"),
        Rule(select="type:Linear", params="weight", scheme="orthogonal"),
    ]
    rules += [
        Rule(select=f"layers.{i}", params="weight", scheme="orthogonal", scale=1.0 + i / layers)
        for i in range(layers)
    ]
    return model, Plan(rules=tuple(rules))


def time_resolve(layers: int, collector: bool = True) -> float:
    """Best of 3 resolutions; ``collector=False`` pauses Python's cyclic garbage collector
    while timing (its full passes grow with the whole heap, not with the resolver)."""
    model, plan = lsuv_like(layers)
    tree = build_tree(model)
    best = float("inf")
    for _ in range(3):
        gc.collect()
        if not collector:
            gc.disable()
        start = time.perf_counter()
        resolved = resolve_plan(plan, model, tree)
        best = min(best, time.perf_counter() - start)
        gc.enable()
    assert len(resolved.steps) == 2 * layers
    assert resolved.decided_by[f"layers.{layers - 1}.weight"] == layers + 1
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 layers")
    args = parser.parse_args()
    small, large = (100, 1000) if args.quick else (500, 5000)
    time_resolve(small)  # warm up imports and caches
    for collector in (True, False):
        t_small = time_resolve(small, collector)
        t_large = time_resolve(large, collector)
        note = "" if collector else " (garbage collector paused)"
        print(f"resolve {small:>5} rules / {small:>5} layers: {t_small:8.3f} s{note}")
        print(f"resolve {large:>5} rules / {large:>5} layers: {t_large:8.3f} s{note}")
        ratio = t_large / t_small
        print(f"ratio {large}/{small}: {ratio:.1f} (linear: ~10, quadratic: ~100){note}")

    path = "a" * 60
    glob = compile_select(REDOS)
    assert glob is not None
    start = time.perf_counter()
    matched = glob.match(path)
    elapsed = time.perf_counter() - start
    assert not matched
    print(f"glob {REDOS!r} vs a 60-character path: {elapsed * 1000:.2f} ms (match: {matched})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
