"""Benchmark: ``torchinfo.summary`` vs inittui's inspect path, on the same models, one run.

    python benchmarks/bench_torchinfo.py [--quick] [--repeats 3] [--threads 1]

torchinfo is not an inittui dependency: without it this prints a message and exits 0.

Models: ``sample_models`` TinyGPT, ConvNet and LSTMLanguageModel (with their
``example_inputs``), and a ~100M-parameter GPT-2-like model (TinyGPT with GPT-2's vocab,
context and width, 9 layers, tied head; input 1 x 64 tokens). ``--quick`` skips the big one.

For each model, best of ``--repeats`` timings (after one warm-up) of

* ``torchinfo``: ``torchinfo.summary(model, input_data=inputs, verbose=0)`` - hooks every
  module and runs a forward pass to get the shapes;
* ``inittui``: ``build_tree(model)`` + ``summary.model_stats(tree)`` +
  ``summary.inspect_report(...)`` - the ``inittui inspect --json`` document: the module
  tree, every parameter's shape, fans and statistics (mean, std, min, max, abs mean, zero
  fraction, NaN/Inf, histogram), tied aliases; no inputs, no forward pass.

Prints both times and ``ratio inittui/torchinfo`` per model, then what each reported.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from inittui.core import summary  # noqa: E402
from inittui.core.loading import LoadedModel  # noqa: E402
from inittui.core.tree import build_tree  # noqa: E402
from sample_models import convnet, lstm_lm, tiny_gpt  # noqa: E402


def models(quick: bool) -> list[tuple[str, Callable[[], nn.Module], Callable]]:
    """(name, build, inputs(model))."""
    out = [
        ("TinyGPT", tiny_gpt.TinyGPT, tiny_gpt.example_inputs),
        ("ConvNet", convnet.ConvNet, convnet.example_inputs),
        ("LSTMLanguageModel", lstm_lm.LSTMLanguageModel, lstm_lm.example_inputs),
    ]
    if not quick:
        out.append(
            (
                "GPT-2-like (9 x 768, vocab 50257)",
                lambda: tiny_gpt.TinyGPT(
                    vocab_size=50257, block_size=1024, n_layer=9, n_head=12, n_embd=768
                ),
                lambda model: torch.randint(0, 50257, (1, 64)),
            )
        )
    return out


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def inittui_inspect(model: nn.Module, name: str) -> dict:
    loaded = LoadedModel(
        model=model,
        target=f"bench:{name}",
        name=name,
        source_module=types.ModuleType("bench"),
        device=torch.device("cpu"),
        dtype=None,
    )
    tree = build_tree(model)
    stats = summary.model_stats(tree)
    return summary.inspect_report(loaded, tree, stats)


def describe(info, report: dict) -> tuple[str, str]:
    ti_layers = len(info.summary_list)
    ti = (
        f"torchinfo: {info.total_params:,} params ({info.trainable_params:,} trainable), "
        f"{ti_layers} layer rows with input/output shapes from the forward pass, "
        f"{info.total_mult_adds:,} mult-adds, input {info.total_input:,} B, "
        f"params {info.total_param_bytes:,} B, forward/backward {info.total_output_bytes:,} B"
    )
    params = report["parameters"]
    tied = [p for p in params if p["aliases"]]
    with_fans = sum(1 for p in params if p["fan_in"] is not None)
    noted = sum(1 for p in params if p["fan_note"])
    stats = sum(1 for p in params if p["stats"] is not None)
    tied_text = ", ".join(f"{p['name']} = {', '.join(p['aliases'])}" for p in tied) or "-"
    ours = (
        f"inittui:   {report['total_params']:,} params, {len(report['modules'])} modules, "
        f"{len(params)} unique parameters ({with_fans} with fan_in/fan_out, {noted} with a "
        f"fan note), statistics + histogram for {stats}, "
        f"{len(tied)} tied ({tied_text}), "
        f"{len(report['buffers'])} buffers; no inputs needed"
    )
    extra = info.total_params - report["total_params"]
    if extra:
        shared = sum(p["numel"] * len(p["aliases"]) for p in params)
        ti += f"\n    -> torchinfo's total is {extra:+,} off the unique count" + (
            f": the tied names' {shared:,} params counted again" if shared == extra else ""
        )
    return ti, ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the ~100M-param model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    try:
        import torchinfo
    except ImportError:
        print(
            "torchinfo is not installed (it is not an inittui dependency): skipping the "
            "comparison. `pip install torchinfo` to run it."
        )
        return 0
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, torchinfo {getattr(torchinfo, '__version__', '?')}, "
        f"{args.threads} thread(s), best of {args.repeats} after a warm-up\n"
    )
    print(
        f"{'model':36s} {'params':>12s} {'torchinfo':>10s} {'inittui':>10s}  ratio inittui/torchinfo"
    )
    notes = []
    for name, build, make_inputs in models(args.quick):
        torch.manual_seed(0)
        model = build().eval()
        inputs = make_inputs(model)
        with torch.no_grad():
            t_info, info = best_of(
                lambda model=model, inputs=inputs: torchinfo.summary(
                    model, input_data=inputs, verbose=0
                ),
                args.repeats,
            )
        t_ours, report = best_of(
            lambda model=model, name=name: inittui_inspect(model, name), args.repeats
        )
        print(
            f"{name:36s} {report['total_params']:12,d} {t_info * 1000:8.1f}ms "
            f"{t_ours * 1000:8.1f}ms  {t_ours / t_info:6.2f}"
        )
        notes.append((name, *describe(info, report)))
    print("\nWhat each reports:")
    for name, ti, ours in notes:
        print(f"- {name}\n    {ti}\n    {ours}")
    print(
        "\ntorchinfo needs example inputs and runs the model; it reports per-layer output "
        "shapes, mult-adds and memory. inittui needs no inputs (it also works on the meta "
        "device), and reports exact fans (torch's), per-parameter statistics and "
        "histograms, and tied aliases; activation shapes are its `preview` command's job."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
