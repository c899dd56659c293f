"""Benchmark: the exported ``init_weights`` on an FSDP2-sharded model, 1, 2 and 4 ranks.

Usage::

    python benchmarks/bench_sharded.py            # 16 blocks of 4 x Linear(4096, 4096), ~1.07B
    python benchmarks/bench_sharded.py --quick    # 12 blocks of 4 x Linear(1024, 1024), ~50M
    python benchmarks/bench_sharded.py --worlds 1 2

The model is built on the meta device; the plan (kaiming_normal on every weight, zeros on
every bias) is resolved there and exported with inittui's own codegen (``render_script``).
For each world size W, W gloo processes on the CPU (``torch.multiprocessing``, spawn; every
rank calls ``torch.set_num_threads(1)`` and runs with ``OMP_NUM_THREADS=1``) build the model
on meta, shard it with FSDP2 (``fully_shard`` per block, then the root), ``to_empty`` it on
the CPU, touch their local shards once (``zero_``, so that the pages exist before the
measurement) and call the exported ``init_weights``. Each rank measures:

* numbers drawn: ``torch.Tensor.normal_``/``uniform_``/``random_`` (and the other in-place
  samplers), the drawing ``torch.nn.init`` functions and ``torch.randn``/``rand``/
  ``randint``/``randperm``/``normal`` are wrapped at class/module level inside the rank;
  each call adds the numel of the tensor it fills (the local shard for a DTensor). A call
  made inside another wrapped call (``kaiming_normal_`` calls ``normal_``) is not counted
  again, so every number is counted once;
* wall time (``time.perf_counter``) and CPU time (``time.process_time``) of ``init_weights``;
* peak host memory: ``ru_maxrss`` after the init, and the rise of the peak over the rank's
  resident memory just before it (the peak is reset first where Linux allows it,
  ``/proc/self/clear_refs``). Target: below the full size of the largest sharded tensor,
  i.e. no rank holds a full copy of one.

Prints a table per world size, then ratios against world 1 (the slowest rank of each world)
with the targets of issue 15 (world 4: draws <= 0.3x, wall <= 0.4x) marked pass/miss, and
the floor of the machine: W ranks on C cores share them, so with W > C a rank's wall time
cannot fall below (its CPU-time ratio) x W/C; CPU time per rank shows the work itself.

Not timed: every world's gathered parameters (``full_tensor()`` of a few of them, all of
them on a tiny model) are hashed and compared with an unsharded single-process run of the
same script; prints ``bit-identical: yes/no``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import hashlib
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

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
"""

# name: (width, blocks); every block holds 4 x Linear(width, width)
SIZES = {"full": (4096, 16), "quick": (1024, 12), "tiny": (64, 2)}

TENSOR_SAMPLERS = (
    "normal_",
    "uniform_",
    "random_",
    "exponential_",
    "log_normal_",
    "cauchy_",
    "geometric_",
    "bernoulli_",
)
INIT_SAMPLERS = (
    "normal_",
    "uniform_",
    "trunc_normal_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "orthogonal_",
    "sparse_",
)
FACTORY_SAMPLERS = ("randn", "rand", "randint", "randperm", "normal")


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, width)
        self.fc4 = nn.Linear(width, width)


class Net(nn.Module):
    def __init__(self, width: int, blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(width) for _ in range(blocks))


def build_model(size: str) -> nn.Module:
    width, blocks = SIZES[size]
    return Net(width, blocks)


def export_script(size: str, path: Path) -> dict:
    """Resolve the plan on a meta model, write the exported script to ``path``; returns
    facts about the model for the report."""
    from inittui.core.codegen import render_script
    from inittui.core.plan import parse_plan, resolve_plan
    from inittui.core.tree import build_tree

    with torch.device("meta"):
        model = build_model(size)
    resolved = resolve_plan(parse_plan(PLAN), model, build_tree(model))
    path.write_text(render_script(resolved, model_class="Net"))
    params = dict(model.named_parameters())
    drawn = [n for n in params if n.endswith("weight")]
    return {
        "numel": sum(p.numel() for p in params.values()),
        "drawn_numel": sum(params[n].numel() for n in drawn),
        "largest_bytes": max(p.numel() * p.element_size() for p in params.values()),
        "check": list(params) if size == "tiny" else [drawn[0], drawn[-1], "layers.0.fc1.bias"],
    }


# ----------------------------------------------------------------- counting draws


def _local_numel(tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel()


class DrawCounter:
    """While active, counts the numbers drawn by the wrapped samplers (see the module
    docstring); ``numbers`` and ``calls`` hold the totals."""

    def __init__(self) -> None:
        self.numbers = 0
        self.calls = 0
        self._depth = 0
        self._undo: list = []

    def _wrap(self, fn, filled):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            self._depth += 1
            try:
                result = fn(*args, **kwargs)
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.numbers += _local_numel(filled(args, kwargs, result))
                self.calls += 1
            return result

        return wrapper

    def _patch(self, owner, name, filled) -> None:
        had = name in owner.__dict__
        original = getattr(owner, name)
        setattr(owner, name, self._wrap(original, filled))
        self._undo.append((owner, name, original if had else None))

    def __enter__(self) -> DrawCounter:
        first_arg = lambda args, kwargs, result: args[0] if args else kwargs["tensor"]  # noqa: E731
        for name in TENSOR_SAMPLERS:
            self._patch(torch.Tensor, name, first_arg)
        for name in INIT_SAMPLERS:
            self._patch(torch.nn.init, name, first_arg)
        for name in FACTORY_SAMPLERS:
            self._patch(torch, name, lambda args, kwargs, result: result)
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._undo):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._undo.clear()


# ----------------------------------------------------------------- memory


def _rss_bytes() -> int:
    """Resident memory now (Linux /proc; elsewhere the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _maxrss_bytes()


def _maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _reset_peak() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0); False if not."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
        return True
    return False


def _peak_bytes() -> int:
    """The peak RSS since the last reset: VmHWM where /proc has it, else ru_maxrss."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return _maxrss_bytes()


# ----------------------------------------------------------------- the ranks


def _import_script(path: str):
    spec = importlib.util.spec_from_file_location(f"bench_init_{os.getpid()}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(tensor: torch.Tensor) -> str:
    data = tensor.detach().contiguous().view(torch.uint8).numpy().tobytes()
    return f"{tuple(tensor.shape)} {tensor.dtype} {hashlib.sha256(data).hexdigest()}"


def _measure(script, model) -> dict:
    """Run ``init_weights`` once, measured (see the module docstring)."""
    rss_before = _rss_bytes()
    reset = _reset_peak()
    with DrawCounter() as counter:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        script.init_weights(model)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = _peak_bytes() if reset else _maxrss_bytes()
    return {
        "drawn": counter.numbers,
        "draw_calls": counter.calls,
        "wall_s": wall,
        "cpu_s": cpu,
        "maxrss_bytes": _maxrss_bytes(),
        "peak_delta_bytes": max(peak - rss_before, 0),
        "peak_reset": reset,
    }


def _reference(script, meta_model: nn.Module, job: dict) -> dict:
    """Digests of the checked parameters after an unsharded run of the script."""
    meta_model.to_empty(device="cpu")
    script.init_weights(meta_model)
    params = dict(meta_model.named_parameters())
    return {name: _digest(params[name]) for name in job["check"]}


def _shard_model(model: nn.Module, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))
    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def rank_main(rank: int, world: int, workdir: str) -> None:
    """One rank (``torch.multiprocessing`` calls it with the rank first). ``world`` 0 is the
    unsharded reference: one process, a plain model, no process group."""
    torch.set_num_threads(1)
    work = Path(workdir)
    job = json.loads((work / "job.json").read_text())
    script = _import_script(job["script"])
    with torch.device("meta"):
        model = build_model(job["size"])
    if world == 0:
        (work / "reference.json").write_text(json.dumps(_reference(script, model, job)))
        return
    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"file://{work / f'rendezvous-{world}'}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=600),
    )
    try:
        _shard_model(model, world)
        model.to_empty(device="cpu")
        with torch.no_grad():
            for param in model.parameters():
                param.to_local().zero_()  # the pages exist before the measurement
        result = {
            "rank": rank,
            "local_numel": sum(p.to_local().numel() for p in model.parameters()),
        }
        dist.barrier()
        result.update(_measure(script, model))
        dist.barrier()
        params = dict(model.named_parameters())
        digests = {}
        for name in job["check"]:  # full_tensor is a collective: every rank, same order
            digests[name] = _digest(params[name].full_tensor())
        result["digests"] = digests
        (work / f"result-{world}-{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _spawn(world: int, workdir: Path) -> None:
    import torch.multiprocessing as mp

    os.environ["OMP_NUM_THREADS"] = "1"  # the ranks inherit it
    mp.start_processes(
        rank_main, args=(world, str(workdir)), nprocs=max(world, 1), start_method="spawn"
    )


def run(size: str, worlds, workdir: Path) -> dict:
    """Export the script, run the reference and every world size; returns
    ``{"facts": ..., "reference": {...}, "worlds": {W: [rank results]}}``."""
    workdir = Path(workdir)
    script = workdir / "init_net.py"
    facts = export_script(size, script)
    job = {"script": str(script), "size": size, "check": facts["check"]}
    (workdir / "job.json").write_text(json.dumps(job))
    if facts["numel"] < 10_000_000:  # small: the unsharded reference runs right here
        with torch.device("meta"):
            meta_model = build_model(size)
        reference = _reference(_import_script(str(script)), meta_model, job)
    else:  # its own process: the full model (4 GiB at 1B) is gone when it exits
        _spawn(0, workdir)
        reference = json.loads((workdir / "reference.json").read_text())
    results = {}
    for world in worlds:
        _spawn(world, workdir)
        ranks = [
            json.loads((workdir / f"result-{world}-{r}.json").read_text()) for r in range(world)
        ]
        results[world] = ranks
    return {"facts": facts, "reference": reference, "worlds": results}


# ----------------------------------------------------------------- the report


def _mib(n: int) -> str:
    return f"{n / 2**20:8.1f}"


def _table(world: int, ranks: list, facts: dict) -> list[str]:
    lines = [
        f"world {world}:",
        "  rank    local M    drawn M  calls   wall s    CPU s  maxrss MiB  peak rise MiB",
    ]
    for r in ranks:
        lines.append(
            f"  {r['rank']:>4} {r['local_numel'] / 1e6:10.2f} {r['drawn'] / 1e6:10.2f} "
            f"{r['draw_calls']:>6} {r['wall_s']:8.2f} {r['cpu_s']:8.2f}   {_mib(r['maxrss_bytes'])}"
            f"       {_mib(r['peak_delta_bytes'])}"
        )
    return lines


def _worst(ranks: list, key: str) -> float:
    return max(r[key] for r in ranks)


def report(outcome: dict, cores: int) -> list[str]:
    facts, worlds = outcome["facts"], outcome["worlds"]
    lines = []
    for world, ranks in worlds.items():
        lines += _table(world, ranks, facts)
    base = worlds.get(1)
    if base is not None:
        lines.append("per rank against world 1 (the slowest rank of each world):")
        lines.append("  world  drawn   wall    CPU   floor(wall)  peak rise < largest tensor")
        for world, ranks in worlds.items():
            ratio = {
                k: _worst(ranks, k) / max(_worst(base, k), 1e-12)
                for k in ("drawn", "wall_s", "cpu_s")
            }
            floor = ratio["cpu_s"] * max(1.0, world / cores)
            rise = _worst(ranks, "peak_delta_bytes")
            memory = "-" if world == 1 else "pass" if rise < facts["largest_bytes"] else "miss"
            lines.append(
                f"  {world:>5} {ratio['drawn']:6.2f}x {ratio['wall_s']:5.2f}x {ratio['cpu_s']:5.2f}x"
                f"   {floor:8.2f}x    {memory}"
            )
            if world == 4:
                lines.append(
                    f"  targets at world 4: draws <= 0.3x {'pass' if ratio['drawn'] <= 0.3 else 'miss'}"
                    f", wall <= 0.4x {'pass' if ratio['wall_s'] <= 0.4 else 'miss'}"
                    f" (CPU time {'pass' if ratio['cpu_s'] <= 0.4 else 'miss'})"
                )
    lines.append(
        f"floor: {cores} core(s); W ranks share them, so with W > {cores} a rank's wall time is at "
        f"least its CPU-time ratio x W/{cores} (4 ranks doing 0.25x the work: ~0.5x); CPU time "
        "per rank shows the work"
    )
    lines.append(
        f"peak rise: largest sharded tensor is {facts['largest_bytes'] / 2**20:.1f} MiB in full"
    )
    lines.append(f"bit-identical: {'yes' if bit_identical(outcome) else 'no'}")
    return lines


def bit_identical(outcome: dict) -> bool:
    reference = outcome["reference"]
    return all(
        rank["digests"] == reference for ranks in outcome["worlds"].values() for rank in ranks
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~50M parameters, a smoke run")
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4], help="world sizes")
    args = parser.parse_args()
    size = "quick" if args.quick else "full"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="bench_sharded_") as tmp:
        outcome = run(size, args.worlds, Path(tmp))
    facts = outcome["facts"]
    print(
        f"model: {facts['numel'] / 1e6:.1f}M parameters ({facts['drawn_numel'] / 1e6:.1f}M drawn, "
        f"the rest zeros), FSDP2 over gloo on the CPU, torch {torch.__version__}, "
        f"1 thread per rank, {cores} core(s)"
    )
    print("\n".join(report(outcome, cores)))
    return 0 if bit_identical(outcome) else 1


if __name__ == "__main__":
    raise SystemExit(main())
