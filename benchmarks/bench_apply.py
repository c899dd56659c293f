"""Benchmark: ``apply_plan`` vs the equivalent hand-written ``torch.nn.init`` loop.

Usage::

    python benchmarks/bench_apply.py            # GPT-2-like model, ~103M parameters
    python benchmarks/bench_apply.py --quick    # small model, smoke test

The plan: kaiming_normal on every Linear weight, zeros on Linear biases, normal(0, 0.02)
on the embeddings. The baseline is the loop a user would write by hand, with one global
generator::

    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, generator=g); nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02, generator=g)

``apply_plan`` does more per parameter (its own seeded generator, a full-shape CPU work
tensor, the shape checks, running the exported script's lines) so that its numbers are
the same on every device, sharded or not. Both paths are warmed up once, then the best of 3
timings is taken; prints the times and ``ratio apply/handwritten``. Also checks that apply
is deterministic and that the in-app apply equals the exported script.
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

from inittui.core.apply import apply_plan  # noqa: E402
from inittui.core.codegen import render_script  # noqa: E402
from inittui.core.plan import parse_plan, resolve_plan  # noqa: E402
from inittui.core.tree import build_tree  # noqa: E402

PLAN = """version = 1
seed = 0
[[rule]]
select = "type:Linear"
params = "weight"
scheme = "kaiming_normal"
[[rule]]
select = "type:Linear"
params = "bias"
scheme = "zeros"
[[rule]]
select = "type:Embedding"
scheme = "normal"
std = 0.02
"""


class Block(nn.Module):
    """A GPT-2 transformer block's parameters (no forward needed for the benchmark)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)


class GPT(nn.Module):
    def __init__(self, vocab: int, n_pos: int, d: int, n_layer: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_pos, d)
        self.h = nn.ModuleList(Block(d) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)


def build_model(quick: bool) -> nn.Module:
    torch.manual_seed(0)
    if quick:
        return GPT(vocab=5000, n_pos=256, d=128, n_layer=2)
    # 50257*768 + 1024*768 + 9 blocks of ~7.08M + final norm = ~103.1M parameters
    return GPT(vocab=50257, n_pos=1024, d=768, n_layer=9)


def handwritten(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, generator=g)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02, generator=g)


def best_of(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model, smoke test")
    args = parser.parse_args()

    model = build_model(args.quick)
    n_params = sum(p.numel() for p in model.parameters())
    resolved = resolve_plan(parse_plan(PLAN), model, build_tree(model))
    planned = sum(math.prod(step.shape) for step in resolved.steps)
    print(
        f"model: {n_params / 1e6:.1f}M parameters, {len(resolved.steps)} planned "
        f"({planned / 1e6:.1f}M values), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )

    t_hand = best_of(lambda: handwritten(model))
    t_apply = best_of(lambda: apply_plan(model, resolved))

    # Correctness: apply is deterministic and equals the exported script.
    first = {k: v.clone() for k, v in model.state_dict().items()}
    namespace: dict = {}
    exec(compile(render_script(resolved), "init.py", "exec"), namespace)
    handwritten(model)
    namespace["init_weights"](model)
    assert all(torch.equal(v, first[k]) for k, v in model.state_dict().items()), "mismatch"

    print(f"handwritten loop : {t_hand * 1e3:9.1f} ms  ({planned / t_hand / 1e6:7.1f} M values/s)")
    print(
        f"apply_plan       : {t_apply * 1e3:9.1f} ms  ({planned / t_apply / 1e6:7.1f} M values/s)"
    )
    print(f"ratio apply/handwritten = {t_apply / t_hand:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
