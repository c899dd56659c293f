"""Sharded init: the exported script on FSDP2 and DTensor parameters gives, bit for bit,
the numbers of an unsharded run.

Two worker processes (this file run as a script, gloo on the CPU, a file rendezvous in
tmp_path) build each model on the meta device, shard it (FSDP2 ``fully_shard``, or
``distribute_tensor`` per parameter with Shard(0), Shard(1), Replicate, and a 2-D mesh),
``to_empty`` it and call the exported ``init_weights``. Rank 0 writes the gathered full
tensors (``full_tensor()``) to files; the test compares them with a single-process run of
the same script on an unsharded model. Each rank also checks that the prelude's
``_local_chunk`` (the shard cut used on torch without ``src_data_rank``) gives exactly the
local shard that ``distribute_tensor`` gave.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
WORLD_SIZE = 2


def _distributed_ok() -> bool:
    try:
        import torch.distributed as dist

        return dist.is_available() and dist.is_gloo_available()
    except Exception:  # noqa: BLE001 - any failure means: no torch.distributed here
        return False


# ----------------------------------------------------------------- models and plans


class MixedNet(nn.Module):
    """Embedding with a padding row, Linear, LayerNorm, a 2-layer LSTM and a head; odd
    sizes, so that Shard(0)/Shard(1) split unevenly."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 6, padding_idx=1)
        self.fc = nn.Linear(6, 9)
        self.ln = nn.LayerNorm(9)
        self.lstm = nn.LSTM(9, 5, num_layers=2)
        self.head = nn.Linear(5, 7)

    def forward(self, tokens):
        hidden = torch.tanh(self.ln(self.fc(self.emb(tokens))))
        out, _ = self.lstm(hidden)
        return self.head(out)


def small_llama() -> nn.Module:
    sys.path.insert(0, str(HERE))
    from models.llama import Llama

    return Llama(vocab_size=37, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=45)


MODELS = {"mixed": MixedNet, "llama": small_llama}

PLANS = {
    "mixed": """version = 1
seed = 11
[[rule]]
select = "**"
scheme = "default"
[[rule]]
select = "type:Linear"
params = "weight"
scheme = "kaiming_normal"
mode = "fan_out"
nonlinearity = "relu"
[[rule]]
select = "type:Linear"
params = "bias"
scheme = "zeros"
[[rule]]
select = "type:LSTM"
params = "weight_hh*"
scheme = "orthogonal"
per_gate = true
[[rule]]
select = "type:LSTM"
params = "weight_ih*"
scheme = "xavier_uniform"
per_gate = true
[[rule]]
select = "type:LSTM"
params = "bias*"
scheme = "zeros"
forget_bias = 1.0
[[rule]]
select = "type:Embedding"
scheme = "trunc_normal"
std = 0.02
a = -0.04
b = 0.04
[[rule]]
select = "ln"
params = "weight"
scheme = "normal"
mean = 1.0
std = 0.1
scale = 0.5
""",
    "llama": """version = 1
seed = 3
[[rule]]
select = "**"
scheme = "default"
[[rule]]
select = "type:Linear"
scheme = "kaiming_normal"
[[rule]]
select = "layers.*.self_attn.o_proj"
scheme = "normal"
std = 0.02
scale = 0.5
[[rule]]
select = "layers.*.mlp.down_proj"
scheme = "normal"
std = 0.02
scale = 0.5
[[rule]]
select = "layers.1.post_attention_layernorm"
scheme = "zeros"
[[rule]]
select = "type:Embedding"
scheme = "trunc_normal"
std = 0.02
a = -0.04
b = 0.04
""",
}

# (engine, placement): engine "fsdp2" shards with fully_shard; "dtensor" replaces every
# parameter by distribute_tensor(param, mesh, placements).
CONFIGS = [
    ("fsdp2", "shard0"),
    ("dtensor", "shard0"),
    ("dtensor", "shard1"),
    ("dtensor", "replicate"),
    ("dtensor", "mesh2d"),
]


def _import_script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tokens() -> torch.Tensor:
    return torch.arange(24).remainder(11).reshape(4, 6)


# ----------------------------------------------------------------- the worker processes


def _placements(kind: str, param: torch.Tensor):
    from torch.distributed.tensor import Replicate, Shard

    last = max(param.dim() - 1, 0)
    if kind == "shard0":
        return [Shard(0)]
    if kind == "shard1":  # dim 1 where there is one, else dim 0
        return [Shard(min(1, last))]
    if kind == "replicate":
        return [Replicate()]
    if kind == "mesh2d":  # a (1, 2) mesh: replicated over the first dim, sharded on the last
        return [Replicate(), Shard(last)]
    raise AssertionError(kind)


def _shard(model: nn.Module, engine: str, placement: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    if engine == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (WORLD_SIZE,))
        groups = list(model.layers) if hasattr(model, "layers") else list(model.children())
        for module in groups:
            fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return
    from torch.distributed.tensor import distribute_module, distribute_tensor

    shape = (1, WORLD_SIZE) if placement == "mesh2d" else (WORLD_SIZE,)
    mesh = init_device_mesh("cpu", shape)

    def partition(_name, module, device_mesh):
        for name, param in list(module.named_parameters(recurse=False)):
            placements = _placements(placement, param)
            dparam = distribute_tensor(param, device_mesh, placements)
            module.register_parameter(name, nn.Parameter(dparam, param.requires_grad))

    distribute_module(model, mesh, partition)


def _worker(rank: int, workdir: Path) -> None:
    import datetime

    import torch.distributed as dist

    job = json.loads((workdir / "job.json").read_text())
    dist.init_process_group(
        "gloo",
        init_method=f"file://{workdir / 'rendezvous'}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=datetime.timedelta(seconds=60),
    )
    chunk_problems: list[str] = []
    try:
        for model_name in MODELS:
            script = _import_script(Path(job["scripts"][model_name]), f"init_{model_name}")
            for engine, placement in CONFIGS:
                tag = f"{engine}-{placement}-{model_name}"
                with torch.device("meta"):
                    model = MODELS[model_name]()
                _shard(model, engine, placement)
                model.to_empty(device="cpu")
                script.init_weights(model)
                full = {}
                for name, param in model.named_parameters():
                    if not hasattr(param, "full_tensor"):
                        chunk_problems.append(f"{tag}: {name} is not a DTensor")
                        continue
                    full[name] = param.full_tensor()  # a collective: every rank, same order
                    local = param.to_local()
                    cut = script._local_chunk(full[name], param)
                    if cut.shape != local.shape or not torch.equal(cut, local):
                        chunk_problems.append(
                            f"{tag}: {name} _local_chunk {tuple(cut.shape)} != local shard "
                            f"{tuple(local.shape)}"
                        )
                result = {"params": full}
                if engine == "fsdp2" and model_name == "mixed":
                    with torch.no_grad():
                        result["forward"] = model(_tokens())
                if rank == 0:
                    torch.save(result, workdir / f"{tag}.pt")
                dist.barrier()
    finally:
        (workdir / f"chunks-{rank}.json").write_text(json.dumps(chunk_problems))
        dist.destroy_process_group()


# ----------------------------------------------------------------- the test


@pytest.mark.heavy
@pytest.mark.timeout(240)  # two processes and a rendezvous: fail, never hang
def test_sharded_init_equals_unsharded_bit_for_bit(tmp_path):
    import pytest

    if not _distributed_ok():
        pytest.skip("torch.distributed with the gloo backend is not available")
    from inittui.core.apply import apply_plan
    from inittui.core.codegen import render_script
    from inittui.core.plan import parse_plan, resolve_plan
    from inittui.core.tree import build_tree

    scripts = {}
    references = {}
    for model_name, build in MODELS.items():
        torch.manual_seed(0)
        model = build()
        resolved = resolve_plan(parse_plan(PLANS[model_name]), model, build_tree(model))
        assert {s.param for s in resolved.steps} == {n for n, _ in model.named_parameters()}
        path = tmp_path / f"init_{model_name}.py"
        path.write_text(render_script(resolved, model_class=type(model).__name__))
        scripts[model_name] = str(path)
        script = _import_script(path, f"ref_init_{model_name}")
        with torch.device("meta"):
            fresh = build()
        fresh.to_empty(device="cpu")
        script.init_weights(fresh)
        apply_plan(model, resolved)  # the in-app apply agrees with the script
        for name, value in model.named_parameters():
            assert torch.equal(value, dict(fresh.named_parameters())[name]), name
        references[model_name] = fresh

    (tmp_path / "job.json").write_text(json.dumps({"scripts": scripts}))
    env = dict(os.environ, WORLD_SIZE=str(WORLD_SIZE), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), *filter(None, [env.get("PYTHONPATH")])])
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(rank), str(tmp_path)],
            env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD_SIZE)
    ]
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            out, _ = proc.communicate()
        outputs.append((proc.returncode, out))
    for rank, (code, out) in enumerate(outputs):
        assert code == 0, f"rank {rank} failed (exit {code}):\n{out[-4000:]}"

    for rank in range(WORLD_SIZE):
        problems = json.loads((tmp_path / f"chunks-{rank}.json").read_text())
        assert problems == [], problems

    for model_name, reference in references.items():
        expected = dict(reference.named_parameters())
        for engine, placement in CONFIGS:
            tag = f"{engine}-{placement}-{model_name}"
            result = torch.load(tmp_path / f"{tag}.pt", weights_only=True)
            got = result["params"]
            assert got.keys() == expected.keys(), tag
            for name, value in expected.items():
                assert got[name].dtype == value.dtype, (tag, name)
                assert torch.equal(got[name], value), f"{tag}: {name} differs from unsharded"
            if "forward" in result:  # FSDP2 all-gathers exactly the values the script wrote
                with torch.no_grad():
                    assert torch.equal(result["forward"], reference(_tokens())), tag


# ------------------------------------- work path (sharded, GPU) == direct path (CPU)


class EveryScheme(nn.Module):
    """One parameter per scheme, odd sizes (below and above the 16-element vector width)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(17, 33)
        self.b = nn.Linear(33, 40)
        self.c = nn.Linear(8, 8)
        self.d = nn.Linear(16, 12)
        self.e = nn.Linear(5, 5)
        self.f = nn.Linear(7, 3)
        self.conv = nn.Conv2d(4, 8, 3)
        self.conv1 = nn.Conv1d(3, 6, 5)
        self.emb = nn.Embedding(19, 8, padding_idx=2)
        self.lstm = nn.LSTM(5, 6)


EVERY_SCHEME_PLAN = """version = 1
seed = 21
[[rule]]
select = "a"
params = "weight"
scheme = "kaiming_normal"
[[rule]]
select = "a"
params = "bias"
scheme = "uniform"
a = -0.3
b = 0.1
[[rule]]
select = "b"
params = "weight"
scheme = "trunc_normal"
std = 0.5
a = -1.0
b = 1.0
[[rule]]
select = "b"
params = "bias"
scheme = "normal"
scale = 0.5
[[rule]]
select = "c"
params = "weight"
scheme = "orthogonal"
gain = 2.0
[[rule]]
select = "c"
params = "bias"
scheme = "constant"
val = 0.3
[[rule]]
select = "d"
params = "weight"
scheme = "sparse"
sparsity = 0.3
[[rule]]
select = "d"
params = "bias"
scheme = "ones"
[[rule]]
select = "e"
params = "weight"
scheme = "eye"
[[rule]]
select = "e"
params = "bias"
scheme = "zeros"
[[rule]]
select = "f"
params = "weight"
scheme = "lecun_normal"
[[rule]]
select = "f"
params = "bias"
scheme = "default"
[[rule]]
select = "conv"
params = "weight"
scheme = "dirac"
[[rule]]
select = "conv"
params = "bias"
scheme = "default"
[[rule]]
select = "conv1"
params = "weight"
scheme = "xavier_normal"
[[rule]]
select = "conv1"
params = "bias"
scheme = "normal"
[[rule]]
select = "emb"
scheme = "normal"
[[rule]]
select = "lstm"
params = "weight_hh*"
scheme = "orthogonal"
per_gate = true
[[rule]]
select = "lstm"
params = "weight_ih*"
scheme = "kaiming_uniform"
per_gate = true
[[rule]]
select = "lstm"
params = "bias*"
scheme = "uniform"
per_gate = true
forget_bias = 1.0
scale = 0.25
"""


def _relayout(model: nn.Module, kind: str) -> None:
    """Replace every parameter by an empty one of the same shape and dtype, stored
    non-contiguously (``strided``: the script draws into a work tensor and copies, as for
    a DTensor or a GPU tensor) or contiguously at an odd storage offset (``offset``: drawn
    in place, from a misaligned pointer)."""
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            shape, dtype = tuple(param.shape), param.dtype
            if kind == "strided":
                data = torch.empty(*shape, 2, dtype=dtype)[..., 1]
                assert not data.is_contiguous()
            else:
                data = torch.empty(param.numel() + 1, dtype=dtype)[1:].view(shape)
                assert data.is_contiguous() and data.storage_offset() == 1
            setattr(module, name, nn.Parameter(data))


def test_work_path_and_in_place_path_draw_the_same_numbers(tmp_path):
    """A contiguous CPU parameter is drawn in place; any other (non-contiguous, DTensor,
    another device) through a CPU work tensor and a copy. Every scheme, in every dtype,
    gives the same bits both ways."""
    import pytest

    from inittui.core.apply import apply_plan
    from inittui.core.codegen import render_script
    from inittui.core.plan import parse_plan, resolve_plan
    from inittui.core.tree import build_tree

    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
        model = EveryScheme().to(dtype)
        resolved = resolve_plan(parse_plan(EVERY_SCHEME_PLAN), model, build_tree(model))
        assert {s.param for s in resolved.steps} == {n for n, _ in model.named_parameters()}
        path = tmp_path / f"init_{str(dtype)[6:]}.py"
        path.write_text(render_script(resolved))
        script = _import_script(path, f"every_{str(dtype)[6:]}")
        apply_plan(model, resolved)
        expected = {k: v.clone() for k, v in model.state_dict().items()}
        for kind in ("strided", "offset"):
            other = EveryScheme().to(dtype)
            _relayout(other, kind)
            script.init_weights(other)
            for name, value in other.state_dict().items():
                assert value.dtype == dtype
                if not torch.equal(value, expected[name]):
                    pytest.fail(f"{dtype} {kind}: {name} differs from the in-place draw")


# ------------------------------ blockwise draws: each rank draws only its tiles (1, 2, 4)


class Wide(nn.Module):
    """Parameters of several tiles: an uneven dim 0 (1027 rows over 4 ranks), a dim 1 of
    1030, a split along dim 0 whose blocks draw differently, a padding row in the middle,
    and an orthogonal weight (drawn whole on every rank)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1030, 1027)
        self.qkv = nn.Linear(40, 1536)
        self.emb = nn.Embedding(1100, 40, padding_idx=600)
        self.orth = nn.Linear(30, 20)


WIDE_PLAN = """version = 1
seed = 13
[[rule]]
select = "**"
scheme = "default"
[[rule]]
select = "fc"
params = "weight"
scheme = "kaiming_normal"
nonlinearity = "relu"
[[rule]]
select = "qkv"
params = "weight"
scheme = "xavier_uniform"
split = [1024, 256, 256]
scale = 0.5
[[rule]]
select = "emb"
scheme = "trunc_normal"
std = 0.02
a = -0.04
b = 0.04
[[rule]]
select = "orth"
params = "weight"
scheme = "orthogonal"
"""

# placement kinds; "fallback" is Shard(0) with the box mapping switched off, so every tile
# is drawn and cut by _copy_into (what _StridedShard/Partial placements get)
BLOCK_CONFIGS = ["fsdp2", "shard0", "shard1", "mesh2d", "replicate", "fallback"]
SHARDED = {"fsdp2", "shard0", "shard1", "mesh2d"}  # each rank holds a part of every weight


def _shard_wide(model: nn.Module, kind: str, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_module, distribute_tensor

    if kind == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        fully_shard(model, mesh=init_device_mesh("cpu", (world,)))
        return
    square = kind == "mesh2d" and world == 4
    mesh = init_device_mesh(
        "cpu", (2, 2) if square else (1, world) if kind == "mesh2d" else (world,)
    )

    def placements(param):
        last = param.dim() - 1
        if kind in ("shard0", "fallback"):
            return [Shard(0)]
        if kind == "shard1":
            return [Shard(min(1, last))]
        if kind == "replicate":
            return [Replicate()]
        return [Shard(0), Shard(last)] if square else [Replicate(), Shard(last)]

    def partition(_name, module, device_mesh):
        for name, param in list(module.named_parameters(recurse=False)):
            dparam = distribute_tensor(param, device_mesh, placements(param))
            module.register_parameter(name, nn.Parameter(dparam, param.requires_grad))

    distribute_module(model, mesh, partition)


def _block_worker(rank: int, world: int, workdir: Path) -> None:
    import datetime

    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"file://{workdir / f'rendezvous-{world}'}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    script = _import_script(workdir / "init_wide.py", "init_wide")
    reference = torch.load(workdir / "reference.pt", weights_only=True)
    report: dict = {"problems": [], "drawn": {}}
    seeded, boxed = script._block_seed, script._box
    try:
        for kind in BLOCK_CONFIGS:
            drawn: dict[str, int] = {}

            def counting(seed, name, index, drawn=drawn):
                drawn[name] = drawn.get(name, 0) + 1
                return seeded(seed, name, index)

            script._block_seed = counting
            script._box = (lambda target: None) if kind == "fallback" else boxed
            with torch.device("meta"):
                model = Wide()
            _shard_wide(model, kind, world)
            model.to_empty(device="cpu")
            script.init_weights(model)
            for name, param in model.named_parameters():
                want = script._local_chunk(reference[name], param)
                if not torch.equal(param.to_local(), want):
                    report["problems"].append(f"world {world} {kind}: {name} shard differs")
            report["drawn"][kind] = drawn
            dist.barrier()
    finally:
        (workdir / f"drawn-{world}-{rank}.json").write_text(json.dumps(report))
        dist.destroy_process_group()


def _run_ranks(world: int, workdir: Path, env: dict) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "blockwise", str(rank), str(world), str(workdir)],
            env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world)
    ]
    for rank, proc in enumerate(procs):
        try:
            out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            out, _ = proc.communicate()
        assert proc.returncode == 0, f"world {world} rank {rank} failed:\n{out[-4000:]}"


@pytest.mark.heavy
@pytest.mark.timeout(600)
def test_blockwise_shards_equal_unsharded_and_draw_only_their_tiles(tmp_path):
    """World sizes 1, 2 and 4: every rank's shard is the same slice of the unsharded run,
    bit for bit, and a rank holding a shard draws fewer tiles than the whole tensor has."""
    if not _distributed_ok():
        pytest.skip("torch.distributed with the gloo backend is not available")
    from inittui.core.codegen import render_script
    from inittui.core.plan import parse_plan, resolve_plan
    from inittui.core.prelude import tile_count
    from inittui.core.tree import build_tree

    model = Wide()
    resolved = resolve_plan(parse_plan(WIDE_PLAN), model, build_tree(model))
    (tmp_path / "init_wide.py").write_text(render_script(resolved, model_class="Wide"))
    script = _import_script(tmp_path / "init_wide.py", "ref_init_wide")
    for name in ("fc.weight", "qkv.weight", "emb.weight"):
        assert tile_count(dict(model.named_parameters())[name].shape) > 1, name
    with torch.device("meta"):
        fresh = Wide()
    fresh.to_empty(device="cpu")
    script.init_weights(fresh)
    torch.save(dict(fresh.named_parameters()), tmp_path / "reference.pt")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), *filter(None, [env.get("PYTHONPATH")])])
    tiles = {n: tile_count(p.shape) for n, p in fresh.named_parameters() if tile_count(p.shape) > 1}
    for world in (1, 2, 4):
        _run_ranks(world, tmp_path, env)
        for rank in range(world):
            report = json.loads((tmp_path / f"drawn-{world}-{rank}.json").read_text())
            assert report["problems"] == [], report["problems"]
            for kind in BLOCK_CONFIGS:
                drawn = report["drawn"][kind]
                rows = kind in ("fsdp2", "shard0") or (kind == "mesh2d" and world == 4)
                for name, total in tiles.items():
                    count = drawn.get(name, 0)
                    where = (world, rank, kind, name, count, total)
                    # a shard of rows holds part of every tile row; a shard of columns
                    # part of the tile columns of fc (1030 wide; the others are 40 wide)
                    if world > 1 and (rows or (kind in SHARDED and name == "fc.weight")):
                        assert count < total, where
                    elif world == 1 or kind not in SHARDED:  # replicated, or the fallback
                        assert count == total, where
                    else:
                        assert 0 < count <= total, where
                if world == 4 and kind == "shard0":  # about its share: 5 tile rows of 3
                    assert drawn["fc.weight"] <= 2 * 3


if __name__ == "__main__":
    if sys.argv[1] == "blockwise":
        _block_worker(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    else:
        _worker(int(sys.argv[1]), Path(sys.argv[2]))
