"""Benchmark: ``inittui check`` on a 70B Llama config with ``--blocks K``: peak host memory.

Usage::

    python benchmarks/bench_blocks_70b.py              # --blocks 2 (target: under 8 GB peak)
    python benchmarks/bench_blocks_70b.py --blocks 1
    python benchmarks/bench_blocks_70b.py --quick      # the 8-layer hidden-256 Llama instead

Runs ``inittui check tests/models/blocks_models.py:llama_70b --blocks K`` (a transformers
``LlamaForCausalLM`` from a ``LlamaConfig``, built on meta: hidden 8192, intermediate 28672,
80 layers, 64 heads, 8 kv heads, vocab 128256) in a child process and prints its output,
its wall time and its peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``).
Two fp32 blocks are ~6.9 GB; the embedding and the LM head (~4.2 GB each) run as
1024-row stand-ins.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_GB = 8.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2, metavar="K")
    parser.add_argument("--quick", action="store_true", help="the small Llama (8 layers)")
    args = parser.parse_args()
    name = "llama" if args.quick else "llama_70b"
    target = f"{ROOT / 'tests' / 'models' / 'blocks_models.py'}:{name}"
    command = [sys.executable, "-m", "inittui", "check", target, "--blocks", str(args.blocks)]
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    print(done.stdout, end="")
    print(done.stderr[-2000:], end="", file=sys.stderr)
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_gb = kib * (1 if sys.platform == "darwin" else 1024) / 1e9
    print(f"command: inittui check {name} --blocks {args.blocks} (exit {done.returncode})")
    print(f"wall time = {wall:.1f} s")
    print(f"peak RSS = {peak_gb:.2f} GB (target under {LIMIT_GB:g} GB)")
    return 0 if done.returncode in (0, 1) and (args.quick or peak_gb < LIMIT_GB) else 1


if __name__ == "__main__":
    raise SystemExit(main())
