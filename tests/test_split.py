"""Splits: ``split = N`` / ``split = [sizes]`` cut a fused tensor along its effective output
dim, each block its own tensor for fans, expected std and drawing; ``per_gate`` is the gate
split; the ``fused_no_split`` lint; script = app = checkpoint."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from harness import MODELS, PLANS
from hypothesis import given, settings
from hypothesis import strategies as st
from test_export import import_script

from inittui.core.apply import apply_plan
from inittui.core.codegen import render_script, step_source
from inittui.core.loading import load_model
from inittui.core.plan import parse_plan, resolve_plan
from inittui.core.plan.resolve import param_seed
from inittui.core.plan.split import pooled
from inittui.core.summary import split_keys
from inittui.core.tree import build_tree

sys.path.insert(0, str(Path(MODELS)))
from split_models import Fused, GPT2Attention  # noqa: E402

MAIN = Path("/work/main")


def resolve(model, text: str):
    return resolve_plan(parse_plan(text), model, build_tree(model))


def rule(select: str, params: str, scheme: str, extra: str = "", seed: int = 0) -> str:
    return (
        f'version = 1\nseed = {seed}\n[[rule]]\nselect = "{select}"\nparams = "{params}"\n'
        f'scheme = "{scheme}"\n{extra}\n'
    )


@pytest.fixture(scope="module")
def hf_gpt2():
    """transformers' GPT2Model (n_embd 128), built offline from a config."""
    return load_model(f"{MODELS}/hf.py:gpt2").model


@pytest.mark.parametrize(
    ("scheme", "extra", "torch_fn"),
    [
        ("xavier_uniform", "", lambda t, g: torch.nn.init.xavier_uniform_(t, generator=g)),
        (
            "kaiming_normal",
            'nonlinearity = "relu"',
            lambda t, g: torch.nn.init.kaiming_normal_(t, nonlinearity="relu", generator=g),
        ),
    ],
)
def test_gpt2_c_attn_split_3_blocks_are_q_k_v(hf_gpt2, scheme, extra, torch_fn):
    model = hf_gpt2
    embd = model.config.n_embd
    resolved = resolve(model, rule("**.c_attn", "weight", scheme, "split = 3\n" + extra, seed=5))
    name = "model.h.0.attn.c_attn.weight"
    step = resolved.step_for(name)
    assert step.block_dim == 1 and [b - a for a, b in step.blocks] == [embd] * 3
    assert [(d.fan_in, d.fan_out) for d in step.block_draws] == [(embd, embd)] * 3
    assert (step.fan_in, step.fan_out) == (embd, embd)
    apply_plan(model, resolved)
    weight = model.get_parameter(name).detach()
    by_hand = torch.empty_like(weight)
    g = torch.Generator().manual_seed(param_seed(5, name))
    for i in range(3):
        torch_fn(by_hand[:, i * embd : (i + 1) * embd].t(), g)
    assert torch.equal(weight, by_hand)
    for i in range(3):
        block = weight[:, i * embd : (i + 1) * embd]
        assert float(block.std()) == pytest.approx(step.block_draws[i].expected.std, rel=0.05)
    assert step.expected.std == pytest.approx(step.block_draws[0].expected.std)
    assert "3 blocks along dim 1" in render_script(resolved)
    assert "for block in p.chunk(3, 1):" in step_source(step)


def test_mha_in_proj_split_3_equals_torch_xavier_per_third():
    model = Fused()
    resolved = resolve(model, rule("attn", "in_proj_weight", "xavier_uniform", "split = 3"))
    step = resolved.step_for("attn.in_proj_weight")
    assert step.block_dim == 0
    assert [(d.fan_in, d.fan_out) for d in step.block_draws] == [(32, 32)] * 3
    apply_plan(model, resolved)
    by_hand = torch.empty(96, 32)
    g = torch.Generator().manual_seed(param_seed(0, "attn.in_proj_weight"))
    for third in by_hand.chunk(3, 0):
        torch.nn.init.xavier_uniform_(third, generator=g)
    assert torch.equal(model.attn.in_proj_weight.detach(), by_hand)
    assert not [lint for lint in resolved.lints if lint.kind == "fused_no_split"]


def pooled_std(sizes, stds, means=None) -> float:
    """The float64 std of the whole tensor from its blocks' (population formula)."""
    means = means or [0.0] * len(sizes)
    total = sum(sizes)
    mean = sum(n * m for n, m in zip(sizes, means, strict=True)) / total
    second = sum(n * (s * s + m * m) for n, s, m in zip(sizes, stds, means, strict=True)) / total
    return math.sqrt(second - mean * mean)


def test_unequal_gqa_sizes_per_block_fans_and_pooled_std():
    model = Fused()
    resolved = resolve(model, rule("qkv", "weight", "xavier_normal", "split = [64, 16, 16]"))
    step = resolved.step_for("qkv.weight")
    assert [(d.fan_in, d.fan_out) for d in step.block_draws] == [(32, 64), (32, 16), (32, 16)]
    stds = [math.sqrt(2.0 / (32 + n)) for n in (64, 16, 16)]
    for draw, std in zip(step.block_draws, stds, strict=True):
        assert draw.expected.std == pytest.approx(std, rel=1e-12)
    assert step.expected.std == pytest.approx(pooled_std([64, 16, 16], stds), rel=1e-12)
    assert "p.split([64, 16, 16], 0)" in step_source(step)
    assert split_keys(step) == {
        "dim": 0,
        "sizes": [64, 16, 16],
        "fan_in": [32, 32, 32],
        "fan_out": [64, 16, 16],
        "expected_std": [d.expected.std for d in step.block_draws],
    }
    apply_plan(model, resolved)
    by_hand = torch.empty(96, 32)
    g = torch.Generator().manual_seed(param_seed(0, "qkv.weight"))
    for block in by_hand.split([64, 16, 16], 0):
        torch.nn.init.xavier_normal_(block, generator=g)
    assert torch.equal(model.qkv.weight.detach(), by_hand)


def test_unequal_conv1d_blocks_draw_each_on_its_own_view():
    """c_attn (128, 384) split [128, 64, 192]: the square block draws on itself, the others
    on their transpose (torch's layout rule reads the fans reversed there)."""
    model = GPT2Attention()
    resolved = resolve(model, rule("c_attn", "weight", "kaiming_uniform", "split = [128, 64, 192]"))
    step = resolved.step_for("c_attn.weight")
    assert [(d.fan_in, d.fan_out) for d in step.block_draws] == [(128, 128), (128, 64), (128, 192)]
    source = step_source(step)
    assert "blocks[1].t()" in source and "blocks[2].t()" in source
    apply_plan(model, resolved)
    by_hand = torch.empty(128, 384)
    g = torch.Generator().manual_seed(param_seed(0, "c_attn.weight"))
    for block in by_hand.split([128, 64, 192], 1):
        torch.nn.init.kaiming_uniform_(block.t(), generator=g)
    assert torch.equal(model.c_attn.weight.detach(), by_hand)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=5),
    st.sampled_from(["xavier_uniform", "kaiming_normal", "orthogonal"]),
)
def test_property_pooled_std_and_a_single_block_is_no_split(sizes, scheme):
    total = sum(sizes)
    model = torch.nn.Sequential(torch.nn.Linear(8, total))
    tree = build_tree(model)
    split = resolve_plan(
        parse_plan(rule("0", "weight", scheme, f"split = {sizes}")), model, tree
    ).step_for("0.weight")
    stds = [d.expected.std for d in split.block_draws]
    assert split.expected.std == pytest.approx(pooled_std(sizes, stds), rel=1e-9, abs=1e-15)
    assert pooled(split.block_draws, _split_of(split)).std == pytest.approx(split.expected.std)
    one = parse_plan(rule("0", "weight", scheme, f"split = [{total}]"))
    plain = parse_plan(rule("0", "weight", scheme))
    values = []
    for plan in (one, plain):
        copy = torch.nn.Sequential(torch.nn.Linear(8, total))
        apply_plan(copy, resolve_plan(plan, copy, build_tree(copy)))
        values.append(copy[0].weight.detach())
    assert torch.equal(values[0], values[1])


def _split_of(step):
    from inittui.core.plan.split import Split

    return Split(step.block_dim, tuple(b - a for a, b in step.blocks), step.gates)


def test_fused_lint_fires_without_a_split_and_not_with_it(hf_gpt2):
    for model, select, params in (
        (Fused(), "attn", "in_proj_weight"),
        (hf_gpt2, "**.c_attn", "weight"),
        (Fused(), "qkv", "weight"),
    ):
        lints = resolve(model, rule(select, params, "xavier_uniform")).lints
        fused = [lint for lint in lints if lint.kind == "fused_no_split"]
        assert fused and "add split = 3" in fused[0].message, select
        lints = resolve(model, rule(select, params, "xavier_uniform", "split = 3")).lints
        assert not [lint for lint in lints if lint.kind == "fused_no_split"], select
    lints = resolve(Fused(), rule("qkv", "weight", "normal")).lints  # not fan-based
    assert not [lint for lint in lints if lint.kind == "fused_no_split"]


def test_split_script_equals_apply_equals_checkpoint(cli, tmp_path):
    plan = tmp_path / "p.toml"
    plan.write_text(
        rule("qkv", "weight", "xavier_normal", "split = [64, 16, 16]")
        + '[[rule]]\nselect = "attn"\nparams = "in_proj_weight"\nscheme = "orthogonal"\n'
        "split = 3\n"
    )
    target = f"{MODELS}/split_models.py:Fused"
    result = cli(
        "export", target, "--plan", plan, "--script", tmp_path / "init.py",
        "--checkpoint", tmp_path / "w.pt",
    )  # fmt: skip
    assert result.code == 0, result.err
    script = import_script(tmp_path / "init.py")
    fresh = Fused()
    script.init_weights(fresh)
    applied = Fused()
    apply_plan(applied, resolve(applied, plan.read_text()))
    saved = torch.load(tmp_path / "w.pt", weights_only=True)
    for name in ("qkv.weight", "attn.in_proj_weight"):  # the planned ones
        value = fresh.state_dict()[name]
        assert torch.equal(value, saved[name]), name
        assert torch.equal(value, applied.state_dict()[name]), name


PER_GATE = """version = 1
seed = 3
[[rule]]
select = "type:LSTM"
params = "weight*"
scheme = "orthogonal"
per_gate = true
[[rule]]
select = "type:LSTM"
params = "bias*"
scheme = "uniform"
per_gate = true
forget_bias = 1.0
"""


@pytest.mark.skipif(not (MAIN / ".venv/bin/python").exists(), reason="needs the main checkout")
def test_per_gate_is_bit_identical_to_main(tmp_path):
    """per_gate is now the gate split: main's export and this tree's agree bit for bit, and
    the script's lines for it are unchanged."""
    plan = tmp_path / "p.toml"
    plan.write_text(PER_GATE)
    target = f"{MODELS}/zoo.py:Recurrent"
    here = Path(__file__).resolve().parents[1]
    outputs = {}
    for name, root in (("main", MAIN), ("here", here)):
        env = {**os.environ, "PYTHONPATH": str(root)}
        run = subprocess.run(
            [str(MAIN / ".venv/bin/python"), "-m", "inittui", "export", target, "--plan",
             str(plan), "--checkpoint", str(tmp_path / f"{name}.pt"), "--script",
             str(tmp_path / f"{name}.py")],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        outputs[name] = torch.load(tmp_path / f"{name}.pt", weights_only=True)
    assert outputs["main"].keys() == outputs["here"].keys()
    for key, value in outputs["main"].items():
        assert torch.equal(value, outputs["here"][key]), key
    strip = [
        line
        for line in (tmp_path / "main.py").read_text().splitlines()
        if "generated by inittui" not in line
    ]
    ours = [
        line
        for line in (tmp_path / "here.py").read_text().splitlines()
        if "generated by inittui" not in line
    ]
    assert strip == ours


def test_judge_agrees_with_resolve_on_splits():
    from inittui.core.plan import Rule
    from inittui.core.plan.judge import judge_rule

    model = Fused()
    tree = build_tree(model)
    good = Rule("qkv", "xavier_normal", params="weight", split=(64, 16, 16))
    verdict = judge_rule(good, model, tree)
    assert verdict.ok
    resolved = resolve_plan(
        parse_plan(rule("qkv", "weight", "xavier_normal", "split = [64, 16, 16]")), model, tree
    )
    assert verdict.step_for("qkv.weight") == resolved.step_for("qkv.weight")
    bad = judge_rule(Rule("qkv", "xavier_normal", params="weight", split=(64, 64)), model, tree)
    assert not bad.ok and "adds up to 128 but qkv.weight's output dim 0 has 96" in bad.reason
    both = judge_rule(Rule("qkv", "xavier_normal", per_gate=True, split=3), model, tree)
    assert not both.ok and "per_gate and split" in both.reason
    zero = judge_rule(Rule("qkv", "xavier_normal", split=0), model, tree)
    assert not zero.ok and "split must be at least 1" in zero.reason


def test_explain_lists_each_split_once_with_equal_blocks_counted(cli):
    result = cli(
        "plan", f"{MODELS}/split_models.py:Fused", "--plan", PLANS / "split.toml", "--explain"
    )
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if line.startswith("split ")]
    qkv = next(line for line in lines if line.startswith("split qkv.weight"))
    assert "64: fan_in 32, fan_out 64" in qkv and "2 x 16: fan_in 32, fan_out 16" in qkv
    attn = next(line for line in lines if line.startswith("split attn.in_proj_weight"))
    assert "3 x 32: fan_in 32, fan_out 32" in attn
