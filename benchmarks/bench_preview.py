"""Benchmark: the variance probe's forward pass against a plain forward, in one run.

    python benchmarks/bench_preview.py [--quick] [--device cpu|cuda] [--threads N]

Model: ``sample_models/convnet.py:ConvNet`` with widths (32, 64, 128) on a batch of 64
RGB 64x64 images (about 0.2 s per forward on one CPU thread; ``--quick``: batch 16), in
eval mode. One thread by default: on a shared, loaded machine multi-threaded kernels stall
on descheduled workers and the timings mostly measure the load. Each variant is warmed up
once and timed best-of-N, the variants alternating within each round:

* ``plain``: ``model(x)`` under ``torch.no_grad()``;
* ``naive hooks``: a forward hook on every module computing ``var_mean``, ``(x == 0)``
  mean and ``abs().max()`` with a ``.item()`` per statistic (a straightforward version);
* ``probe``: :func:`inittui.core.probe.probe` forward-only (hooks on every module, stats
  kept, flags and theory computed).

Prints the times and ``ratio probe/plain = X.XX (target <= 1.5)``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from inittui.core.probe import probe  # noqa: E402
from sample_models.convnet import ConvNet  # noqa: E402


def best_of(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each variant; the variants alternate within every round so that
    a change in machine load hits them alike."""
    for fn in variants.values():
        fn()  # warm-up
    best = {name: float("inf") for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def naive_probe(model: nn.Module, x: torch.Tensor) -> list[tuple[str, float, float, float]]:
    """Hooks with one ``.item()`` per statistic: the baseline the probe is optimized from."""
    rows: list[tuple[str, float, float, float]] = []
    handles = []

    def make(path: str):
        def hook(module, args, out):
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                var, _mean = torch.var_mean(out.detach().float())
                rows.append(
                    (
                        path,
                        var.sqrt().item(),
                        (out == 0).float().mean().item(),
                        out.abs().max().item(),
                    )
                )

        return hook

    for path, module in model.named_modules():
        handles.append(module.register_forward_hook(make(path)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller input, fewer repeats")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: stable on a loaded machine; 0 = torch's default)",
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    batch, size, repeats = (16, 64, 5) if args.quick else (64, 64, 5)
    model = ConvNet(widths=(32, 64, 128)).to(device).eval()
    x = torch.randn(batch, 3, size, size, device=device)

    def plain() -> object:
        with torch.no_grad():
            return model(x)

    times = best_of(
        {
            "plain": plain,
            "naive": lambda: naive_probe(model, x),
            "probe": lambda: probe(model, (x,)),
        },
        repeats,
    )
    t_plain, t_naive, t_probe = times["plain"], times["naive"], times["probe"]
    layers = len(probe(model, (x,)).layers)
    print(
        f"model: ConvNet(widths=(32, 64, 128)), input {tuple(x.shape)}, {device}, "
        f"{torch.get_num_threads()} threads, {layers} module calls recorded"
    )
    print(f"plain forward (no_grad): {t_plain * 1000:8.1f} ms")
    print(f"naive hooks:             {t_naive * 1000:8.1f} ms  (ratio {t_naive / t_plain:.2f})")
    print(f"probe forward-only:      {t_probe * 1000:8.1f} ms")
    print(f"ratio probe/plain = {t_probe / t_plain:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
