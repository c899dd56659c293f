"""Presets: the shipped plans (``preset:NAME``), the ``presets`` command, and each preset
against what it mirrors: transformers' own init of GPT-2 and BERT and the nanoGPT and Fixup
authors' own init (per-parameter std within sampling error, constants exact), the published
formulas of TorchTitan's Llama, timm's ViT and Fixup (the expected std of ``plan --json``)."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pytest
import torch
from harness import MODELS, ROOT

from inittui.core.apply import apply_plan
from inittui.core.fans import traced_tree
from inittui.core.loading import load_model
from inittui.core.plan import resolve_plan
from inittui.core.plan.expr_context import constructor_arguments
from inittui.core.schemes.jax import TRUNC_STD_2
from inittui.core.workspace import read_plan
from inittui.presets import PRESETS

HF = f"{MODELS}/hf.py"
ZOO = f"{MODELS}/presets_zoo.py"
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"

# Each preset, the models it targets and the lint kinds it is expected to earn there.
# A preset is written for a family of models: a rule for what one member lacks (Linear
# biases, ViT's reg_token) decides nothing there and earns a rule_unused note.
TARGETS = {
    "torch-default": [(MLP, set()), (f"{ZOO}:vit", {"no_default"})],
    "gpt2": [(f"{HF}:gpt2", {"rule_unused"}), (f"{HF}:gpt2_lm", {"rule_unused"})],
    "bert": [(f"{HF}:bert", {"padding_row", "rule_unused"})],
    "llama": [(f"{ZOO}:llama", {"trunc_normal_bounds", "rule_unused"})],
    "nanogpt": [(f"{ZOO}:nanogpt", set())],
    # timm draws the fused qkv whole: the fused_no_split lint says so (see the preset)
    "vit": [(f"{ZOO}:vit", {"trunc_normal_bounds", "fused_no_split", "rule_unused"})],
    "vit-timm": [(f"{ZOO}:vit", {"trunc_normal_bounds", "rule_unused"})],
    "fixup": [(f"{ZOO}:fixup", {"uncovered"})],
}


def resolve(target: str, preset: str, kwargs: dict | None = None):
    loaded = load_model(target, kwargs or {})
    tree = traced_tree(loaded)
    plan = read_plan(f"preset:{preset}")
    args = constructor_arguments(loaded)
    return loaded, resolve_plan(plan, loaded.model, tree, constructor_args=args)


def test_every_preset_is_listed_and_shipped():
    files = {
        Path(entry.name).stem
        for entry in resources.files("inittui.presets").iterdir()
        if entry.name.endswith(".toml")
    }
    assert files == set(PRESETS) == set(TARGETS)
    assert {"torch-default", "gpt2", "bert", "llama", "nanogpt", "vit", "fixup"} <= files
    for name in PRESETS:
        text = resources.files("inittui.presets").joinpath(f"{name}.toml").read_text()
        assert text.startswith(f"# {name}: "), name
        assert "\n# Mirrors: " in text, name  # what it mirrors and its source
        assert "\n" not in PRESETS[name]


def test_the_wheel_ships_the_presets():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"presets/*.toml"' in text


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_preset_resolves_on_its_models_with_only_expected_lints(name):
    for target, lints in TARGETS[name]:
        loaded, resolved = resolve(target, name)
        assert resolved.steps, (name, target)
        assert {lint.kind for lint in resolved.lints} == lints, (name, target)
        unused = [lint for lint in resolved.lints if lint.kind == "rule_unused"]
        assert all(lint.severity == "info" for lint in unused), (name, target)


# -- against what each preset mirrors -------------------------------------------------------


def sample_std_tolerance(count: int) -> float:
    """Relative 5-sigma error of a sample std over ``count`` values (the difference of two
    independent samples: sqrt(2) times one)."""
    return 5 * math.sqrt(2) / math.sqrt(2 * count)


def compare_to_own_init(reference: torch.nn.Module, planned: torch.nn.Module) -> int:
    """Each parameter of ``planned`` has the distribution of ``reference``'s: constants
    (std 0) equal exactly, random ones have the same std within sampling error and mean
    within it. Returns the number of random parameters compared."""
    theirs = dict(reference.named_parameters())
    random = 0
    for name, ours in planned.named_parameters():
        ref = theirs[name].detach().double()
        mine = ours.detach().double()
        if ref.numel() == 1 or ref.std().item() == 0:
            assert torch.equal(mine, ref), name
            continue
        random += 1
        tolerance = sample_std_tolerance(ref.numel())
        assert mine.std().item() == pytest.approx(ref.std().item(), rel=tolerance), name
        assert abs(mine.mean().item() - ref.mean().item()) < 5 * ref.std().item() * math.sqrt(
            2 / ref.numel()
        ), name
    return random


def applied(target: str, preset: str, kwargs: dict | None = None) -> tuple:
    loaded, resolved = resolve(target, preset, kwargs)
    apply_plan(loaded.model, resolved)
    return loaded.model, resolved


def test_gpt2_equals_transformers_own_init():
    kwargs = {"n_layer": 4, "n_embd": 512}
    reference = load_model(f"{HF}:gpt2", kwargs).model  # transformers' _init_weights
    model, resolved = applied(f"{HF}:gpt2", "gpt2", kwargs)
    assert compare_to_own_init(reference, model) == 2 + 4 * 4  # wte, wpe, 4 Conv1D a block
    c_proj = resolved.step_for("model.h.2.mlp.c_proj.weight")
    assert c_proj.kwargs["std"] == 0.02 / math.sqrt(2 * 4)
    assert resolved.step_for("model.h.2.mlp.c_fc.weight").kwargs["std"] == 0.02


def test_gpt2_lm_head_is_tied_to_wte_and_drawn_once():
    model, resolved = applied(f"{HF}:gpt2_lm", "gpt2")
    step = resolved.step_for("lm_head.weight")
    assert step.param == "transformer.wte.weight" and step.kwargs["std"] == 0.02
    assert model.lm_head.weight is model.transformer.wte.weight


def test_bert_equals_transformers_own_init_padding_row_zero():
    kwargs = {"num_hidden_layers": 2, "hidden_size": 256}
    reference = load_model(f"{HF}:bert", kwargs).model
    model, resolved = applied(f"{HF}:bert", "bert", kwargs)
    assert compare_to_own_init(reference, model) >= 3 + 6 * 2
    words = "model.embeddings.word_embeddings.weight"
    pad = reference.config.pad_token_id
    assert resolved.step_for(words).padding_idx == pad
    planned = dict(model.named_parameters())[words]
    assert torch.count_nonzero(planned[pad]) == 0
    assert torch.count_nonzero(dict(reference.named_parameters())[words][pad]) == 0


def test_nanogpt_equals_nanogpts_own_init():
    reference = load_model(f"{ZOO}:nanogpt", {}).model
    model, resolved = applied(f"{ZOO}:nanogpt", "nanogpt", {"official_init": False})
    assert compare_to_own_init(reference, model) == 2 + 4 * 4
    for name in ("transformer.h.0.attn.c_proj.weight", "transformer.h.3.mlp.c_proj.weight"):
        assert resolved.step_for(name).expected.std == 0.02 / math.sqrt(2 * 4)
    assert resolved.step_for("lm_head.weight").kwargs["std"] == 0.02


def test_fixup_equals_the_authors_init_and_formula():
    blocks = 6
    reference = load_model(f"{ZOO}:fixup", {"blocks": blocks}).model
    loaded, resolved = resolve(f"{ZOO}:fixup", "fixup", {"blocks": blocks})
    model = load_model(f"{ZOO}:FixupNet", {"blocks": blocks, "official_init": False}).model
    apply_plan(model, resolved)
    theirs = dict(reference.named_parameters())
    for name, ours in model.named_parameters():
        if name == "stem.weight":
            continue  # PyTorch's init in both (not decided by the plan)
        ref = theirs[name].double()
        if ref.numel() == 1 or ref.std().item() == 0:
            assert torch.equal(ours.double(), ref), name
        else:
            tolerance = sample_std_tolerance(ref.numel())
            assert ours.double().std().item() == pytest.approx(ref.std().item(), rel=tolerance)
    for index in range(blocks):
        step = resolved.step_for(f"blocks.{index}.conv1.weight")
        fan_out = 64 * 3 * 3
        assert step.expected.std == pytest.approx(
            math.sqrt(2 / fan_out) * blocks ** (-1 / (2 * 2 - 2)), rel=1e-12
        )
        assert resolved.step_for(f"blocks.{index}.conv2.weight").scheme == "zeros"
    assert resolved.step_for("fc.weight").scheme == "zeros"


def test_llama_is_torchtitans_depth_init():
    layers, dim = 4, 256
    loaded, resolved = resolve(f"{ZOO}:llama", "llama", {"num_hidden_layers": layers})
    for n in range(layers):
        depth_std = 0.02 / (2 * (n + 1)) ** 0.5  # torchtitan depth_scaled_std
        for name in ("self_attn.o_proj", "mlp.down_proj", "mlp.up_proj"):
            step = resolved.step_for(f"model.layers.{n}.{name}.weight")
            assert step.scheme == "trunc_normal" and step.kwargs["std"] == pytest.approx(
                depth_std, rel=1e-15
            )
            assert (step.kwargs["a"], step.kwargs["b"]) == (-2.0, 2.0)
        for name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj"):
            step = resolved.step_for(f"model.layers.{n}.{name}.weight")
            assert (step.scheme, step.kwargs["std"], step.kwargs["a"]) == ("trunc_normal", 0.02, -2)
        for name in ("input_layernorm", "post_attention_layernorm"):
            assert resolved.step_for(f"model.layers.{n}.{name}.weight").scheme == "ones"
    head = resolved.step_for("lm_head.weight")
    s = dim**-0.5
    assert head.kwargs == {"mean": 0.0, "std": s, "a": -3 * s, "b": 3 * s}
    assert resolved.step_for("model.embed_tokens.weight").kwargs == {"mean": 0.0, "std": 1.0}
    assert resolved.step_for("model.norm.weight").scheme == "ones"


def test_vit_is_timms_jax_mode():
    loaded, resolved = resolve(f"{ZOO}:vit", "vit")
    dim = 192
    patch = resolved.step_for("patch_embed.proj.weight")
    fan_in = 3 * 4 * 4
    assert patch.scheme == "variance_scaling"
    assert patch.kwargs == {
        "variance_scale": 1.0,
        "mode": "fan_in",
        "distribution": "truncated_normal",
    }
    assert patch.expected.std == pytest.approx(1 / math.sqrt(fan_in), rel=1e-12)
    assert patch.expected.high == pytest.approx(2 / math.sqrt(fan_in) / TRUNC_STD_2)
    qkv = resolved.step_for("blocks.1.attn.qkv.weight")
    assert qkv.scheme == "xavier_uniform"
    assert qkv.expected.std == pytest.approx(math.sqrt(2 / (dim + 3 * dim)))
    assert resolved.step_for("blocks.1.mlp.fc1.bias").kwargs == {"mean": 0.0, "std": 1e-6}
    assert resolved.step_for("blocks.1.attn.qkv.bias").scheme == "zeros"
    assert resolved.step_for("head.weight").scheme == "zeros"
    assert resolved.step_for("head.bias").scheme == "zeros"
    pos = resolved.step_for("pos_embed")
    assert (pos.scheme, pos.kwargs["std"], pos.kwargs["a"]) == ("trunc_normal", 0.02, -2.0)
    assert resolved.step_for("cls_token").kwargs == {"mean": 0.0, "std": 1e-6}
    assert resolved.step_for("blocks.0.norm1.weight").scheme == "ones"
    timm = resolve(f"{ZOO}:vit", "vit-timm")[1]
    assert timm.step_for("blocks.1.attn.qkv.weight").kwargs["std"] == 0.02
    assert timm.step_for("head.weight").scheme == "trunc_normal"
    assert timm.step_for("patch_embed.proj.weight").scheme == "kaiming_uniform"  # default


# -- the command line ---------------------------------------------------------------------


def test_presets_command_lists_and_prints(cli):
    listing = cli("presets")
    assert listing.code == 0 and listing.err == ""
    lines = listing.out.splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    assert all(PRESETS[line.split()[0]] in line for line in lines)
    shown = cli("presets", "gpt2")
    text = resources.files("inittui.presets").joinpath("gpt2.toml").read_text()
    assert shown.code == 0 and shown.out == text
    document = cli("presets", "--json").json()
    assert document == {"presets": [{"name": n, "mirrors": m} for n, m in PRESETS.items()]}


def test_plan_and_export_take_a_preset(cli, tmp_path):
    result = cli("plan", f"{ZOO}:nanogpt", "--plan", "preset:nanogpt", "--json")
    assert result.code == 0, result.err
    by_name = {p["name"]: p for p in result.json()["parameters"]}
    assert by_name["transformer.h.1.mlp.c_proj.weight"]["expected_std"] == 0.02 / math.sqrt(8)
    script = tmp_path / "init.py"
    ckpt = tmp_path / "w.pt"
    result = cli(
        "export", f"{ZOO}:vit", "--plan", "preset:vit", "--script", script, "--checkpoint", ckpt
    )
    assert result.code == 0, result.err
    assert "_variance_scaling_(p, variance_scale=1.0, mode='fan_in'" in script.read_text()
    namespace: dict = {}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    model = load_model(f"{ZOO}:vit", {}).model
    namespace["init_weights"](model)
    saved = torch.load(ckpt, weights_only=True)
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name


def test_a_seed_replaces_the_presets_seed():
    assert read_plan("preset:gpt2").seed == 0
    assert read_plan("preset:gpt2", seed=7).seed == 7


async def test_tui_opens_a_preset():
    from pilot import idle, wait_for
    from textual.widgets import Input

    from inittui.tui.app import InitApp
    from inittui.tui.screens.dialogs import PathScreen

    app = InitApp(MLP)
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        app.screen.query_one("#path", Input).value = "preset:nope"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "unknown preset" in str(app.screen.query_one("#path-error").render())
        )
        app.screen.query_one("#path", Input).value = "preset:torch-default"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PathScreen))
        await idle(pilot)
        assert app.session.plan == read_plan("preset:torch-default")
    started = InitApp(MLP, plan_path="preset:torch-default")
    async with started.run_test(size=(100, 30)) as pilot:
        await idle(pilot)
        assert started.session.plan.rules == read_plan("preset:torch-default").rules
        # s (save) after opening a preset offers a file of that name, never "preset:..."
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(started.screen, PathScreen))
        assert started.screen.query_one("#path", Input).value == "torch-default.toml"
