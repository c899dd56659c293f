"""``preview/check/lsuv --blocks K``: the kept blocks equal a full preview's, the
extrapolation is exact where it should be, check judges the extrapolated depth, big modules
outside the blocks get labelled stand-ins (the path the 70B config takes, on a small Llama).
The 70B memory run is benchmarks/bench_blocks_70b.py (too heavy for a test)."""

from __future__ import annotations

import math

import pytest
from harness import MODELS, run_cli

from inittui.core.probe import blocks as blocks_module
from inittui.core.probe.block_ratios import BlockMeasure, extrapolate

NET = f"{MODELS}/blocks_models.py"
GPT2 = f"{MODELS}/hf.py:gpt2"

SCALED_PLAN = """\
version = 1
seed = 0

[[rule]]
select = "**"
params = "weight"
scheme = "eye"
scale = 0.5
"""


def json_of(*args: object) -> dict:
    result = run_cli(*args, "--json")
    assert result.code == 0, result.err
    return result.json()


def by_key(document: dict) -> dict[tuple[str, int], float]:
    return {(layer["path"], layer["call"]): layer["out_std"] for layer in document["layers"]}


def test_kept_blocks_equal_the_full_preview_residual_mlp():
    plan = ("--plan", "preset:torch-default", "--backward")
    part = json_of("preview", f"{NET}:ResidualMLP", "--blocks", "2", *plan)
    full = json_of("preview", f"{NET}:ResidualMLP", *plan)
    kept = [key for key in by_key(part) if key[0].startswith(("inp", "blocks."))]
    assert {key[0] for key in kept} >= {"inp", "blocks.0.fc1", "blocks.1.fc2", "blocks.1"}
    for key in kept:
        assert by_key(part)[key] == by_key(full)[key], key
    assert not any(key[0].startswith("blocks.2") for key in by_key(part))
    assert part["extrapolated"] is True
    blocks = part["blocks"]
    assert (blocks["kept"], blocks["total"], blocks["path"]) == (2, 12, "blocks")
    assert blocks["model"] == "residual"
    assert [b["path"] for b in blocks["per_block"]] == ["blocks.0", "blocks.1"]
    assert all(b["grad_ratio"] is not None for b in blocks["per_block"])
    # the residual model's guess lands near the full run's last block (not exact: a model)
    last = by_key(full)[("blocks.11", 0)]
    assert blocks["final_std"] == pytest.approx(last, rel=0.35)
    assert "extrapolated" not in full and "blocks" not in full


def test_kept_blocks_equal_the_full_preview_gpt2():
    options = ("--arg", "n_layer=6", "--plan", "preset:gpt2")
    part = json_of("preview", GPT2, "--blocks", "2", *options)
    full = json_of("preview", GPT2, *options)
    kept = [key for key in by_key(part) if key[0].startswith(("model.h.", "model.wte"))]
    assert any(key[0].startswith("model.h.1.") for key in kept)
    for key in kept:
        assert by_key(part)[key] == by_key(full)[key], key
    assert part["blocks"]["path"] == "model.h"
    assert part["blocks"]["total"] == 6
    assert part["blocks"]["final_std"] == pytest.approx(by_key(full)[("model.h.5", 0)], rel=0.1)


def test_geometric_extrapolation_is_exact_for_identical_linear_blocks(tmp_path):
    plan = tmp_path / "eye.toml"
    plan.write_text(SCALED_PLAN, encoding="utf-8")
    part = json_of("preview", f"{NET}:ScaledChain", "--blocks", "2", "--plan", plan)
    full = json_of("preview", f"{NET}:ScaledChain", "--plan", plan)
    blocks = part["blocks"]
    assert blocks["model"] == "geometric"
    assert blocks["per_block"][0]["ratio"] == pytest.approx(0.5, rel=1e-12)
    assert blocks["final_std"] == pytest.approx(
        by_key(full)[("blocks.11", 0)], rel=1e-6
    )  # float32 std
    assert blocks["final_ratio"] == pytest.approx(0.5**12, rel=1e-9)


def test_check_judges_the_extrapolated_depth(tmp_path):
    plan = tmp_path / "eye.toml"
    plan.write_text(SCALED_PLAN, encoding="utf-8")
    # two blocks alone shrink the std 4x (within 10x): only the 12 extrapolated blocks fail
    alone = run_cli("check", f"{NET}:ScaledChain", "--blocks", "2", "--plan", plan,
                    "--max-ratio", "100")  # fmt: skip
    assert alone.code == 1, alone.out
    assert "extrapolated from 2 of 12 blocks" in alone.out
    assert "fail: std after the last block (extrapolated from 2 of 12 blocks, geometric)" in (
        alone.out
    )
    assert "geometric: each block multiplies the std by r" in alone.out
    wide = run_cli("check", f"{NET}:ScaledChain", "--blocks", "2", "--plan", plan,
                   "--max-ratio", "5000")  # fmt: skip
    assert wide.code == 0, wide.out


def test_preview_text_labels_every_extrapolated_number():
    result = run_cli("preview", f"{NET}:ResidualMLP", "--blocks", "3")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("blocks: 3 of 12 ResidualBlock blocks of blocks built")
    assert "torch's defaults (no --plan)" in lines[0]
    guessed = [line for line in lines if "after 12 blocks" in line]
    assert guessed and all(line.startswith("extrapolated from 3 of 12 blocks") for line in guessed)
    assert sum(line.startswith("block blocks.") for line in lines) == 3


def test_extrapolation_models():
    residual = [BlockMeasure("b.0", 1.0, math.sqrt(1.5), 1.0),
                BlockMeasure("b.1", math.sqrt(1.5), math.sqrt(2.0), 1.0)]  # fmt: skip
    guess = extrapolate(residual, 10)
    assert guess.model == "residual"
    assert guess.final_std == pytest.approx(math.sqrt(1 + 10 * 0.5))
    scaled = [BlockMeasure("b.0", 1.0, 2.0, 0.2), BlockMeasure("b.1", 2.0, 8.0, 0.2)]
    guess = extrapolate(scaled, 6)
    assert guess.model == "geometric"
    assert guess.final_std == pytest.approx(math.sqrt(8) ** 6)  # geometric mean of 2 and 4
    assert guess.label == "extrapolated from 2 of 6 blocks"


@pytest.fixture
def small_stand_ins(monkeypatch):
    """The 70B path on a small Llama: the embedding and LM head above the limit."""
    monkeypatch.setattr(blocks_module, "STAND_IN_BYTES", 512 * 1024)
    monkeypatch.setattr(blocks_module, "STAND_IN_ROWS", 256)


def test_llama_check_and_preview_with_stand_ins(small_stand_ins):
    target = f"{NET}:llama"
    document = json_of("preview", target, "--blocks", "1", "--backward")
    blocks = document["blocks"]
    assert (blocks["kept"], blocks["total"], blocks["path"]) == (1, 8, "model.model.layers")
    assert len(blocks["stand_ins"]) == 2
    assert (
        "model.model.embed_tokens (Embedding 1000x256): its first 256 rows"
        in (blocks["stand_ins"][0])
    )
    assert "model.lm_head (Linear 256->1000): its first 256 outputs" in blocks["stand_ins"][1]
    assert "not the full tensor's numbers" in blocks["stand_ins"][1]
    assert blocks["final_std"] is not None and blocks["grad_final_std"] is not None
    logits = [layer for layer in document["layers"] if layer["path"] == "model.lm_head"]
    assert logits[0]["out_shape"][-1] == 256
    check = run_cli("check", target, "--blocks", "1")
    assert check.code in (0, 1), check.err
    assert "stand-in: model.model.embed_tokens" in check.out
    assert "extrapolated from 1 of 8 blocks" in check.out


def test_lsuv_on_kept_blocks(tmp_path):
    out = tmp_path / "lsuv.toml"
    document = json_of("lsuv", f"{NET}:ResidualMLP", "--blocks", "2", "--plan-out", out)
    assert document["blocks"]["kept"] == 2 and document["blocks"]["total"] == 12
    assert {layer["path"] for layer in document["layers"]} >= {"blocks.0.fc1", "blocks.1.fc2"}
    assert not any(layer["path"].startswith("blocks.2") for layer in document["layers"])
    assert out.exists()
