"""Fans from the computation (inittui.core.fans): traced on the meta device, known layouts
without a forward, the script drawing with them, the ConvTranspose lint's advice, and the
Embedding padding row in the expected std."""

from __future__ import annotations

import math

import pytest
import torch
from harness import MODELS, PLANS, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.codegen import render_script, step_source
from inittui.core.fans import trace, traced_tree
from inittui.core.loading import load_model
from inittui.core.plan import parse_plan, resolve_plan
from inittui.core.summary import inspect_report, param_flags
from inittui.core.tree import build_tree

GPT2 = f"{MODELS}/hf.py:gpt2"
calc = nn.init._calculate_fan_in_and_fan_out


def rule(select: str, scheme: str, **args: object) -> str:
    extra = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in args.items())
    return f'[[rule]]\nselect = "{select}"\nparams = "weight"\nscheme = "{scheme}"\n{extra}'


class XW(nn.Module):
    """A custom layer computing ``x @ W`` with W stored (in, out)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_in, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W


def test_textbook_layers_trace_to_torchs_fans():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.ReLU(),
        nn.Conv2d(8, 4, (3, 5)),
        nn.Flatten(),
        nn.Linear(4 * 28 * 26, 10),
    )
    tree = traced_tree(model, ["2,3,32,32"])
    for record in tree.parameters:
        if record.shape is not None and len(record.shape) >= 2:
            assert record.fan_source == "trace", record.name
            assert (record.fan_in, record.fan_out) == calc(record.tensor), record.name
            assert record.fan_note is None


@pytest.fixture(scope="module")
def gpt2():
    return load_model(GPT2, {"n_embd": 768, "n_layer": 1})


def test_gpt2_conv1d_fans_from_the_trace(gpt2):
    tree = traced_tree(gpt2)  # example_inputs of the model file
    want = {"attn.c_attn": (768, 2304), "mlp.c_fc": (768, 3072), "mlp.c_proj": (3072, 768)}
    for layer, (fan_in, fan_out) in want.items():
        record = tree.param(f"model.h.0.{layer}.weight")
        assert (record.fan_in, record.fan_out, record.fan_source) == (fan_in, fan_out, "trace")
        assert (record.torch_fan_in, record.torch_fan_out) == (fan_out, fan_in)
        assert "(in, out)" in record.fan_note and f"fan_in {fan_out}" in record.fan_note
        assert "fan*" in param_flags(record, None)
    wte = tree.param("model.wte.weight")
    assert (wte.fan_in, wte.fan_out, wte.fan_source, wte.fan_note) == (768, 1000, "trace", None)
    report = inspect_report(gpt2, tree, stats={})
    by_name = {p["name"]: p for p in report["parameters"]}
    c_attn = by_name["model.h.0.attn.c_attn.weight"]
    assert (c_attn["fan_in"], c_attn["torch_fan_in"], c_attn["fan_source"]) == (768, 2304, "trace")
    assert "torch_fan_in" not in by_name["model.wte.weight"]


def test_gpt2_exported_kaiming_script_draws_sqrt_2_over_n_embd(gpt2, tmp_path):
    tree = traced_tree(gpt2)
    plan = parse_plan(rule("type:Conv1D", "kaiming_normal", nonlinearity="relu"))
    resolved = resolve_plan(plan, gpt2.model, tree)
    step = resolved.step_for("model.h.0.attn.c_attn.weight")
    assert step.fan_in == 768 and step.expected.std == pytest.approx(math.sqrt(2 / 768))
    # draw scheme 1 draws the whole tensor through the transposed view; draw scheme 2 (a
    # (768, 2304) weight has several tiles) draws each tile with the std torch computes there
    assert "kaiming_normal_(p.t()," in step_source(step, draw_scheme=1)
    assert f"normal_(p, mean=0.0, std={math.sqrt(2) / math.sqrt(768)!r}," in step_source(step)
    script = tmp_path / "init.py"
    script.write_text(render_script(resolved, GPT2, "HFWrapper"))
    namespace: dict = {}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    by_script = load_model(GPT2, {"n_embd": 768, "n_layer": 1}).model
    namespace["init_weights"](by_script)
    applied = load_model(GPT2, {"n_embd": 768, "n_layer": 1}).model
    apply_plan(applied, resolved)
    params = dict(by_script.named_parameters())
    for name, value in applied.named_parameters():
        assert torch.equal(value, params[name]), name
    for layer, fan_in in (("attn.c_attn", 768), ("mlp.c_fc", 768), ("mlp.c_proj", 3072)):
        std = params[f"model.h.0.{layer}.weight"].double().std().item()
        assert std == pytest.approx(math.sqrt(2 / fan_in), rel=0.02), layer


def test_without_inputs_known_layouts_and_unverified_custom_layers(gpt2):
    tree = build_tree(gpt2.model)  # no forward
    c_attn = tree.param("model.h.0.attn.c_attn.weight")
    assert (c_attn.fan_in, c_attn.fan_out, c_attn.fan_source) == (768, 2304, "known layout")
    custom = build_tree(nn.Sequential(XW(5, 7))).param("0.W")
    assert (custom.fan_in, custom.fan_source) == (7, "torch")  # torch rule: dim 1, unverified
    assert custom.fan_note.startswith("unverified fans")
    assert "fan?" in param_flags(custom, None)


def test_custom_x_at_w_layer_traced():
    tree = traced_tree(nn.Sequential(XW(5, 7), nn.ReLU(), XW(7, 3)), ["4,5"])
    first = tree.param("0.W")
    assert (first.fan_in, first.fan_out, first.fan_source) == (5, 7, "trace")
    assert (first.torch_fan_in, first.torch_fan_out) == (7, 5) and first.fan_note


def test_grouped_and_transposed_convs():
    model = nn.Sequential(
        nn.Conv2d(8, 16, 3, groups=4),
        nn.ConvTranspose2d(16, 6, 4, stride=2, groups=2),
    )
    known = build_tree(model)
    traced = traced_tree(model, ["2,8,12,12"])
    # grouped: in/groups*k = 2*9, out/groups*k = 4*9; transposed: 8*16/4, 3*16
    for tree in (known, traced):
        assert (tree.param("0.weight").fan_in, tree.param("0.weight").fan_out) == (18, 36)
        assert (tree.param("1.weight").fan_in, tree.param("1.weight").fan_out) == (32, 48)
    assert traced.param("1.weight").fan_source == "trace"
    assert known.param("1.weight").fan_source == "known layout"
    # k = 3, stride 2: 1.5 taps land on an output on average
    odd = build_tree(nn.ConvTranspose1d(1, 2, 3, stride=2)).param("weight")
    assert (odd.fan_in, odd.fan_out) == (1.5, 6)


def test_transposed_conv_draws_normal_with_the_computed_std():
    model = nn.ConvTranspose2d(16, 8, 4, stride=2)
    resolved = resolve_plan(
        parse_plan(rule("", "kaiming_uniform", nonlinearity="relu")), model, build_tree(model)
    )
    step = resolved.steps[0]
    bound = math.sqrt(3) * math.sqrt(2 / (16 * 16 / 4))
    assert step.fan_fill == ("uniform", pytest.approx(bound))
    assert "torch.nn.init.uniform_(p, a=" in step_source(step)
    assert "no view of the tensor" in step.expected.formula


def _output_std(model: nn.Module) -> float:
    x = torch.randn(16, 64, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (model(x) - model.bias[:, None, None]).std().item()


def test_conv_transpose_lint_advice_gives_the_promised_std_and_no_lint(tmp_path):
    model = nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1)
    tree = build_tree(model)
    default = resolve_plan(parse_plan(rule("", "default")), model, tree)
    lints = [lint for lint in default.lints if lint.kind == "fan_layout"]
    assert len(lints) == 1 and 'scheme = "kaiming_normal"' in lints[0].message
    promised = float(lints[0].message.split("output std is ")[1].split(" x")[0])
    apply_plan(model, default)
    assert _output_std(model) == pytest.approx(promised, rel=0.05)
    advised = resolve_plan(
        parse_plan(rule("type:ConvTranspose2d", "kaiming_normal", nonlinearity="relu")), model, tree
    )
    assert not [lint for lint in advised.lints if lint.kind == "fan_layout"]
    apply_plan(model, advised)
    assert _output_std(model) == pytest.approx(math.sqrt(2), rel=0.05)  # He's target
    plan_file = tmp_path / "advised.toml"
    plan_file.write_text(rule("type:ConvTranspose2d", "kaiming_normal", nonlinearity="relu"))
    result = run_cli("plan", f"{MODELS}/zoo.py:Convs", "--plan", plan_file, "--json")
    assert result.code == 0 and not [
        lint for lint in result.json()["lints"] if lint["kind"] == "fan_layout"
    ]


def test_embedding_expected_std_includes_the_zeroed_padding_row():
    vocab, dim = 5, 100000
    model = nn.Embedding(vocab, dim, padding_idx=2).double()
    resolved = resolve_plan(
        parse_plan('[[rule]]\nselect = ""\nscheme = "normal"\nstd = 1.0\n'),
        model,
        build_tree(model),
    )
    step = resolved.steps[0]
    assert "padding row 2 set back to 0" in step.expected.formula
    assert step.expected.std == pytest.approx(math.sqrt(1 - 1 / vocab))
    apply_plan(model, resolved)
    measured = model.weight.detach().std(unbiased=False).item()
    assert measured == pytest.approx(step.expected.std, rel=5e-3)  # the per-row value is 1
    assert f"expected std {step.expected.std:.6g}" in render_script(resolved)


def test_plan_json_and_text_name_both_fans():
    result = run_cli("plan", f"{MODELS}/zoo.py:Convs", "--plan", PLANS / "fans.toml", "--json")
    up = {p["name"]: p for p in result.json()["parameters"]}["up.weight"]
    assert (up["fan_in"], up["fan_out"], up["fan_source"]) == (32, 48, "known layout")
    assert (up["torch_fan_in"], up["torch_fan_out"]) == (48, 256)
    text = run_cli("plan", f"{MODELS}/zoo.py:Convs", "--plan", PLANS / "fans.toml").out
    assert "fan* up.weight: fan_in 32, fan_out 48" in text and "fan_in 48, fan_out 256" in text


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["linear", "conv"]), st.integers(1, 6), st.integers(1, 3)),
        min_size=1,
        max_size=4,
    )
)
def test_traced_fans_equal_torchs_on_linear_and_conv_stacks(layers):
    kind = layers[0][0]
    channels, modules = 3, []
    for layer_kind, width, kernel in layers:
        if layer_kind != kind:
            continue
        if kind == "conv":
            modules.append(nn.Conv2d(channels, width, kernel, padding=kernel // 2))
        else:
            modules.append(nn.Linear(channels, width))
        modules.append(nn.ReLU())
        channels = width
    model = nn.Sequential(*modules)
    shape = "2,3,8,8" if kind == "conv" else "2,3"
    uses = trace(model, (torch.zeros([int(s) for s in shape.split(",")]),))
    assert uses is not None
    tree = traced_tree(model, [shape])
    for record in tree.parameters:
        if len(record.shape) >= 2:
            assert record.fan_source == "trace"
            assert (record.fan_in, record.fan_out) == calc(record.tensor)
