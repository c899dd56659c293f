"""Huge models: a 70B-parameter Llama on the meta device, end to end, in little memory.

``inspect``, ``plan`` and ``export --script`` run as subprocesses; the peak RSS of each is
read from ``os.wait4`` (that child's own ``ru_maxrss``, not the largest child of the whole
test session) and must stay under 2 GB. No test asserts wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import torch
from harness import LLAMA_PLAN, MODELS, ROOT

from inittui.core.apply import apply_plan
from inittui.core.codegen import render_script
from inittui.core.loading import load_model
from inittui.core.plan import parse_plan, resolve_plan
from inittui.core.tree import build_tree

TARGET_70B = f"{MODELS}/llama.py:llama_70b"
TARGET_SMALL = f"{MODELS}/llama.py:Llama"
PEAK_RSS_LIMIT = 2 * 1024**3
LLAMA_70B_PARAMS = 68_976_648_192  # 80 layers of dim 8192, GQA 8 KV heads, vocab 32000

PLAN = LLAMA_PLAN  # tests/plans/llama.toml

needs_wait4 = pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 (POSIX)")


def run_measured(*args, timeout: float = 300) -> tuple[int, str, str, int]:
    """Run ``python -m inittui ARGS``; returns (exit code, stdout, stderr, peak RSS bytes)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "inittui", *map(str, args)],
        cwd=ROOT,
        env=dict(os.environ, COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        # Read both pipes to the end (the child exits), then reap it with wait4 for its
        # own resource usage.
        readers = {}

        def drain(name, stream):
            readers[name] = stream.read()

        threads = [
            threading.Thread(target=drain, args=("out", proc.stdout)),
            threading.Thread(target=drain, args=("err", proc.stderr)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return proc.returncode, readers["out"], readers["err"], usage.ru_maxrss * scale


@needs_wait4
@pytest.mark.heavy
@pytest.mark.timeout(240)  # four processes in turn: fail, never hang
def test_70b_on_meta_inspect_plan_export_in_little_memory(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)

    code, out, err, rss = run_measured("inspect", TARGET_70B, "--device", "meta", "--json")
    assert code == 0, err
    assert rss < PEAK_RSS_LIMIT, f"inspect peaked at {rss / 2**30:.2f} GiB"
    report = json.loads(out)
    assert report["total_params"] == LLAMA_70B_PARAMS
    assert len(report["parameters"]) == 1 + 80 * 9 + 2
    assert all(p["stats"] is None and p["device"] == "meta" for p in report["parameters"])
    by_name = {p["name"]: p for p in report["parameters"]}
    assert by_name["layers.0.self_attn.q_proj.weight"]["shape"] == [8192, 8192]
    assert by_name["layers.0.self_attn.k_proj.weight"]["fan_out"] == 1024

    code, out, err, rss = run_measured(
        "plan", TARGET_70B, "--device", "meta", "--plan", plan, "--json"
    )
    assert code == 0, err
    assert rss < PEAK_RSS_LIMIT, f"plan peaked at {rss / 2**30:.2f} GiB"
    planned = {p["name"]: p for p in json.loads(out)["parameters"]}
    assert len(planned) == 723
    assert planned["layers.79.mlp.down_proj.weight"]["scale"] == 0.079
    assert planned["layers.0.self_attn.k_proj.weight"]["scheme"] == "kaiming_normal"
    assert planned["layers.0.self_attn.k_proj.weight"]["fan_in"] == 8192
    assert planned["norm.weight"]["scheme"] == "ones"

    script = tmp_path / "init_70b.py"
    code, out, err, rss = run_measured(
        "export", TARGET_70B, "--device", "meta", "--plan", plan, "--script", script
    )
    assert code == 0, err
    assert rss < PEAK_RSS_LIMIT, f"export peaked at {rss / 2**30:.2f} GiB"
    source = script.read_text()
    assert "'layers.79.mlp.gate_proj.weight': (28672, 8192)" in source
    compile(source, str(script), "exec")

    checkpoint = tmp_path / "w.safetensors"
    code, out, err, rss = run_measured(
        "export", TARGET_70B, "--device", "meta", "--plan", plan, "--checkpoint", checkpoint
    )
    assert code == 2
    assert err.startswith("error: ") and "meta" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not checkpoint.exists()
    assert sorted(os.listdir(tmp_path)) == ["init_70b.py", "plan.toml"]


def test_70b_tree_plan_and_script_touch_no_tensor_data():
    """build_tree, resolve_plan and render_script on the 70B meta model run no tensor op at
    all (so nothing is ever materialized), and leave every parameter on meta."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class RecordOps(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    model = load_model(TARGET_70B, device="meta").model
    with RecordOps() as recorder:
        tree = build_tree(model)
        resolved = resolve_plan(parse_plan(PLAN), model, tree)
        source = render_script(resolved, TARGET_70B, "Llama")
    assert recorder.ops == []
    assert len(resolved.steps) == 723
    assert sum(step_numel(s.shape) for s in resolved.steps) == LLAMA_70B_PARAMS
    assert len(source) < 1_000_000
    assert all(p.is_meta for p in model.parameters())


def step_numel(shape) -> int:
    out = 1
    for size in shape:
        out *= size
    return out


def test_70b_script_refuses_a_small_llama_before_touching_it(tmp_path):
    big = load_model(TARGET_70B, device="meta").model
    resolved = resolve_plan(parse_plan(PLAN), big, build_tree(big))
    namespace: dict = {}
    exec(compile(render_script(resolved), "init_70b.py", "exec"), namespace)
    small = load_model(TARGET_SMALL).model
    before = {k: v.clone() for k, v in small.state_dict().items()}
    with pytest.raises(ValueError, match="shape mismatch: embed_tokens.weight is"):
        namespace["init_weights"](small)
    assert all(torch.equal(v, before[k]) for k, v in small.state_dict().items())


def test_script_exported_on_meta_equals_in_app_apply_after_to_empty(cli, tmp_path):
    """Export the script from the meta device; run it on a small Llama built on meta and
    ``to_empty``-ed; it equals the in-app apply on a real model and the checkpoint."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    kwargs = json.dumps({"vocab_size": 50, "dim": 32, "n_layers": 3, "hidden_dim": 45})
    result = cli(
        "export",
        TARGET_SMALL,
        "--kwargs",
        kwargs,
        "--device",
        "meta",
        "--plan",
        plan,
        "--script",
        tmp_path / "init.py",
    )
    assert result.code == 0, result.err
    result = cli(
        "export",
        TARGET_SMALL,
        "--kwargs",
        kwargs,
        "--plan",
        plan,
        "--checkpoint",
        tmp_path / "w.pt",
    )
    assert result.code == 0, result.err
    namespace: dict = {}
    exec(compile((tmp_path / "init.py").read_text(), "init.py", "exec"), namespace)

    meta = load_model(TARGET_SMALL, json.loads(kwargs), device="meta").model
    meta.to_empty(device="cpu")
    namespace["init_weights"](meta)

    real = load_model(TARGET_SMALL, json.loads(kwargs)).model
    apply_plan(real, resolve_plan(parse_plan(PLAN), real, build_tree(real)))
    saved = torch.load(tmp_path / "w.pt", weights_only=True)
    state = meta.state_dict()
    assert state.keys() == real.state_dict().keys() == saved.keys()
    for name, value in real.state_dict().items():
        assert torch.equal(state[name], value), name
        assert torch.equal(saved[name], value), name
