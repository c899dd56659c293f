"""Smoke test of benchmarks/bench_sharded.py: its ranks on a tiny model, world 2.

Two spawned gloo processes shard the model with FSDP2 and run the exported script under the
benchmark's draw counter. The counts must be consistent: every rank draws, no rank draws
more than the whole model's drawn parameters, and the ranks together draw at least all of
them (each number is drawn somewhere); the gathered result equals the unsharded run.
Never asserts a time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sharded  # noqa: E402


def _distributed_ok() -> bool:
    try:
        import torch.distributed as dist

        return dist.is_available() and dist.is_gloo_available()
    except Exception:  # noqa: BLE001 - any failure means: no torch.distributed here
        return False


def test_draw_counter_counts_each_number_once():
    """kaiming_normal_ calls Tensor.normal_ inside: one draw of numel numbers, not two;
    zeros_ draws nothing; the counter is gone afterwards."""
    weight, bias = torch.empty(5, 7), torch.empty(5)
    with bench_sharded.DrawCounter() as counter:
        torch.nn.init.kaiming_normal_(weight)
        torch.nn.init.zeros_(bias)
        bias.uniform_()
        torch.randn(3, 4)
    assert (counter.numbers, counter.calls) == (35 + 5 + 12, 3)
    torch.nn.init.normal_(weight)
    assert counter.numbers == 52
    assert "normal_" not in torch.Tensor.__dict__


@pytest.mark.heavy
@pytest.mark.timeout(120)  # spawned processes and a rendezvous: fail, never hang
def test_bench_sharded_ranks_on_a_tiny_model(tmp_path):
    if not _distributed_ok():
        pytest.skip("torch.distributed with the gloo backend is not available")
    outcome = bench_sharded.run("tiny", [2], tmp_path)
    facts, ranks = outcome["facts"], outcome["worlds"][2]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert sum(r["local_numel"] for r in ranks) == facts["numel"]
    for r in ranks:
        assert 0 < r["drawn"] <= facts["drawn_numel"], r
        assert r["draw_calls"] > 0 and r["cpu_s"] >= 0 and r["maxrss_bytes"] > 0
    assert sum(r["drawn"] for r in ranks) >= facts["drawn_numel"]
    assert set(outcome["reference"]) == set(facts["check"])
    assert bench_sharded.bit_identical(outcome)
    lines = bench_sharded.report(outcome, cores=2)
    assert lines[-1] == "bit-identical: yes"
