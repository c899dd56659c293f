"""Benchmark: building a model with the provenance recorder vs without it.

Usage::

    python benchmarks/bench_provenance.py            # GPT-2 small, a 10k-module net, GPT-2 on meta
    python benchmarks/bench_provenance.py --quick    # smaller models, smoke test

Each case builds the model (seeded) with and without ``record_construction`` in the same
run, alternating, warm-up first, and takes the best of 3 timings of each; prints the times
and ``ratio recorded/plain`` per case (target <= 1.3). The recorded build's parameters must
equal the plain build's bit for bit. The recorder pauses the cyclic garbage collector while
construction runs (see ``record_construction``); ``--gc-off`` compares both with the
collector off, i.e. the recorder's own work alone.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from inittui.core.provenance import record_construction  # noqa: E402

TARGET = 1.3


def gpt2(quick: bool):
    """GPT-2 small (124M) from a transformers config, built offline as HF initialises it."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    config = GPT2Config(n_layer=2, n_embd=256, n_head=4) if quick else GPT2Config()
    return lambda: GPT2LMHeadModel(config)


def deep(quick: bool):
    """A plain net of 10,200 small modules (3,400 Linear + LayerNorm pairs)."""
    n = 340 if quick else 3400
    return lambda: nn.Sequential(
        *[nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)) for _ in range(n)]
    )


def on_meta(factory):
    def build():
        with torch.device("meta"):
            return factory()

    return build


def timed(fn) -> tuple[float, object]:
    torch.manual_seed(0)
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def compare(name: str, factory, repeat: int = 3) -> float:
    def recorded():
        with record_construction() as recorder:
            model = factory()
        recorder.provenance(model)  # mapping to names is part of the cost
        return model

    timed(factory), timed(recorded)  # warm-up (imports, allocator)
    best_plain = best_rec = math.inf
    for _ in range(repeat):
        t, plain_model = timed(factory)
        best_plain = min(best_plain, t)
        t, rec_model = timed(recorded)
        best_rec = min(best_rec, t)
    for (key, a), (_, b) in zip(
        plain_model.state_dict().items(), rec_model.state_dict().items(), strict=True
    ):
        assert a.is_meta or torch.equal(a, b), f"{name}: {key} differs with the recorder"
    ratio = best_rec / best_plain
    print(
        f"{name:<22} plain {best_plain * 1e3:8.1f} ms  recorded {best_rec * 1e3:8.1f} ms  "
        f"ratio recorded/plain = {ratio:.2f} (target <= {TARGET})"
    )
    return ratio


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller models (smoke test)")
    parser.add_argument(
        "--gc-off", action="store_true", help="both builds with the garbage collector off"
    )
    args = parser.parse_args(argv)
    if args.gc_off:
        import gc

        gc.disable()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    ratios = {
        "gpt2": compare("GPT-2" + (" (quick)" if args.quick else " small"), gpt2(args.quick)),
        "deep": compare("10k-module net" if not args.quick else "1k-module net", deep(args.quick)),
        "meta": compare("GPT-2 on meta", on_meta(gpt2(args.quick))),
    }
    return ratios


if __name__ == "__main__":
    main()
