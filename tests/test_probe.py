"""The variance probe: textbook init results, inputs, hooks, backward, JSON, compare, LSUV."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from harness import PREVIEW_LAYER_KEYS, SAMPLES
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.errors import CancelledError, InittuiError
from inittui.core.loading import load_model
from inittui.core.plan import Plan, Rule, resolve_plan
from inittui.core.probe import (
    Flag,
    LayerRecord,
    ProbeResult,
    Thresholds,
    compare,
    describe_inputs,
    infer_inputs,
    lsuv,
    make_inputs,
    parse_input_shape,
    probe,
    theory_std,
)
from inittui.core.tree import build_tree

MLP_TARGET = f"{SAMPLES}/mlp.py:MLP"
SAMPLE_TARGETS = [
    f"{SAMPLES}/mlp.py:MLP",
    f"{SAMPLES}/convnet.py:ConvNet",
    f"{SAMPLES}/lstm_lm.py:LSTMLanguageModel",
    f"{SAMPLES}/tiny_gpt.py:TinyGPT",
    f"{SAMPLES}/gru_tagger.py:GRUTagger",
    f"{SAMPLES}/resnet_tiny.py:TinyResNet",
]


def mlp(depth: int = 20, width: int = 256, activation: str = "relu", seed: int = 0) -> nn.Module:
    kwargs = {
        "in_features": width,
        "width": width,
        "depth": depth,
        "out_features": 10,
        "activation": activation,
    }
    return load_model(MLP_TARGET, kwargs, seed=seed).model


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def apply_rules(model: nn.Module, *rules: Rule, seed: int = 0) -> nn.Module:
    plan = Plan(rules=rules, seed=seed)
    apply_plan(model, resolve_plan(plan, model, build_tree(model)))
    return model


def linear_stds(result, width: int | None = None) -> list[float]:
    return [
        r.out_std
        for r in result.layers
        if r.type == "Linear" and (width is None or r.out_shape[-1] == width)
    ]


KAIMING = (
    Rule("type:Linear", "kaiming_normal", "weight", {"nonlinearity": "relu"}),
    Rule("type:Linear", "zeros", "bias"),
)
XAVIER = (
    Rule("type:Linear", "xavier_normal", "weight"),
    Rule("type:Linear", "zeros", "bias"),
)


# --------------------------------------------------------------------------- textbook results


def test_kaiming_keeps_deep_relu_mlp_flat():
    model = apply_rules(mlp(), *KAIMING)
    result = probe(model, (randn(256, 256),))
    stds = linear_stds(result)
    assert len(stds) == 21
    assert all(0.5 < s / stds[0] < 2.0 for s in stds), stds
    assert not [f for f in result.flags if f.kind in ("vanishing", "exploding")]


def test_xavier_halves_variance_per_relu_layer_and_flags_vanishing():
    model = apply_rules(mlp(), *XAVIER)
    result = probe(model, (randn(256, 256),))
    stds = linear_stds(result, width=256)
    ratios = [(b / a) ** 2 for a, b in zip(stds, stds[1:], strict=False)]
    assert len(ratios) == 19
    # Each layer halves the variance; deep down the batch's samples grow correlated and
    # single ratios scatter more, so the tight bound is on the first ten and the average.
    assert all(0.35 <= r <= 0.65 for r in ratios[:10]), ratios
    assert all(0.3 <= r <= 0.7 for r in ratios), ratios
    geometric = (stds[-1] / stds[0]) ** (2 / len(ratios))
    assert geometric == pytest.approx(0.5, abs=0.05)
    flags = [f for f in result.flags if f.kind == "vanishing"]
    assert len(flags) == 1  # only where it starts
    first_below = next(r for r in result.layers if r.leaf and r.out_std < 0.1 * result.input_std)
    assert flags[0].path == first_below.path
    assert "it starts here" in flags[0].detail and first_below.path in flags[0].detail


def test_default_init_with_tanh_vanishes():
    model = apply_rules(mlp(activation="tanh"), Rule("type:Linear", "default"))
    result = probe(model, (randn(256, 256),))
    assert [f.kind for f in result.flags] == ["vanishing"]
    assert linear_stds(result, 256)[-1] < 0.1


def test_exploding_flag_at_onset():
    model = apply_rules(
        mlp(depth=8),
        *KAIMING,
        Rule("type:Linear", "kaiming_normal", "weight", {"nonlinearity": "relu"}, scale=2.0),
    )
    result = probe(model, (randn(64, 256),))
    flags = [f for f in result.flags if f.kind == "exploding"]
    assert len(flags) == 1
    onset = next(r for r in result.layers if r.leaf and r.out_std > 10 * result.input_std)
    assert flags[0].path == onset.path


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("target", SAMPLE_TARGETS)
def test_inputs_inferred_for_every_sample_model(target, monkeypatch):
    loaded = load_model(target)
    monkeypatch.delattr(loaded.source_module, "example_inputs")
    inputs = make_inputs(loaded, seed=3)
    assert inputs.source.startswith("inferred from first layer ")
    assert inputs[0].shape[0] == 8
    result = probe(loaded.model, inputs)
    assert result.layers[-1].path == "" and result.layers[-1].out_std is not None
    embedding = next((m for m in loaded.model.modules() if isinstance(m, nn.Embedding)), None)
    if embedding is not None:
        assert inputs[0].dtype == torch.int64
        assert 0 <= int(inputs[0].min()) and int(inputs[0].max()) < embedding.num_embeddings
        assert "integer" in result.input_std_source
    torch.testing.assert_close(make_inputs(loaded, seed=3)[0], inputs[0])


def test_example_inputs_used_first_and_seeded():
    loaded = load_model(f"{SAMPLES}/convnet.py:ConvNet")
    a, b = make_inputs(loaded, seed=1), make_inputs(loaded, seed=1)
    assert a.source == "example_inputs" and tuple(a[0].shape) == (4, 3, 32, 32)
    torch.testing.assert_close(a[0], b[0])
    assert "from example_inputs" in describe_inputs(a)


def test_inferred_inputs_read_as_one_phrase():
    from inittui.core.probe.inputs import ProbeInputs

    inputs = ProbeInputs([torch.zeros(8, 16)], "inferred from first layer emb (Embedding)")
    text = describe_inputs(inputs)
    assert " inferred from first layer " in text and "from inferred" not in text


def test_input_shape_wins_and_integer_dtype_ranges():
    loaded = load_model(MLP_TARGET)
    inputs = make_inputs(loaded, ["8,64"], seed=0)
    assert inputs.source == "--input-shape" and inputs[0].dtype == torch.float32
    ids = make_inputs(loaded, ["5,64"], input_dtype="long")
    assert ids[0].dtype == torch.int64 and set(ids[0].unique().tolist()) <= {0, 1}
    gpt = load_model(f"{SAMPLES}/tiny_gpt.py:TinyGPT")
    tokens = make_inputs(gpt, ["4,64"])  # Embedding first: long ids by default
    assert tokens[0].dtype == torch.int64 and int(tokens[0].max()) < 512
    assert make_inputs(gpt, ["4,64"], input_dtype="int32")[0].dtype == torch.int32


@pytest.mark.parametrize("text", ["8,x", "8,,3", "0,3", "", "8;3", "-1,2"])
def test_malformed_input_shape(text):
    with pytest.raises(InittuiError) as info:
        parse_input_shape(text)
    assert str(info.value) == (
        f"--input-shape {text!r} must be comma-separated positive integers, e.g. 8,3,32,32"
    )
    assert parse_input_shape(" 8, 3,32,32 ") == (8, 3, 32, 32)


def test_unknown_input_dtype():
    with pytest.raises(InittuiError, match="--input-dtype"):
        make_inputs(nn.Linear(3, 2), ["2,3"], input_dtype="complex7")


@pytest.mark.parametrize(
    ("module", "shape", "dtype"),
    [
        (nn.Sequential(nn.Linear(5, 3), nn.ReLU()), (8, 5), torch.float32),
        (nn.Conv1d(2, 4, 3), (8, 2, 32), torch.float32),
        (nn.Sequential(nn.Conv2d(3, 4, 3)), (8, 3, 32, 32), torch.float32),
        (nn.Conv3d(1, 2, 3), (8, 1, 16, 16, 16), torch.float32),
        (nn.LSTM(6, 5, batch_first=True), (8, 16, 6), torch.float32),
        (nn.LSTM(6, 5), (16, 8, 6), torch.float32),
        (nn.GRU(6, 5, batch_first=True), (8, 16, 6), torch.float32),
        (nn.Embedding(50, 4), (8, 16), torch.int64),
        (nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), (8, 16, 16), torch.float32),
        (nn.TransformerEncoderLayer(16, 2, 32), (16, 8, 16), torch.float32),
        (
            nn.TransformerEncoder(
                nn.TransformerEncoderLayer(16, 2, 32, batch_first=True),
                2,
                enable_nested_tensor=False,
            ),
            (8, 16, 16),
            torch.float32,
        ),
    ],
)
def test_inference_from_first_layer(module, shape, dtype):
    inputs = infer_inputs(module, seed=0)
    assert tuple(inputs[0].shape) == shape and inputs[0].dtype == dtype
    if dtype == torch.int64:
        assert int(inputs[0].max()) < 50
    probe(module, inputs)  # runs


def test_multihead_attention_gets_query_key_value():
    attention = nn.MultiheadAttention(8, 2, kdim=6, vdim=4, batch_first=True)
    inputs = infer_inputs(attention, batch=3)
    assert [tuple(t.shape) for t in inputs] == [(3, 16, 8), (3, 16, 6), (3, 16, 4)]
    result = probe(attention, inputs)
    assert result.layers[-1].main_output == "[0]"
    assert result.layers[-1].out_shape == [3, 16, 8]


class Foo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class MyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.foo = Foo()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.foo(x))


def test_unknown_first_layer_says_what_to_pass():
    with pytest.raises(InittuiError) as info:
        infer_inputs(MyNet())
    assert str(info.value) == (
        "cannot infer an input for MyNet (first layer: Foo); pass --input-shape BATCH,... "
        "(one per positional input) or define example_inputs(model) in the model file"
    )


def test_example_inputs_errors_are_reported(tmp_path):
    file = tmp_path / "net.py"
    file.write_text(
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Linear):\n"
        "    def __init__(self):\n        super().__init__(4, 2)\n"
        "def example_inputs(model):\n    raise ValueError('no data here')\n"
    )
    with pytest.raises(InittuiError) as info:
        make_inputs(load_model(f"{file}:Net"))
    assert str(info.value) == (
        "example_inputs in net.py failed: ValueError: no data here; fix it or pass --input-shape"
    )
    file.write_text(
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Linear):\n"
        "    def __init__(self):\n        super().__init__(4, 2)\n"
        "def example_inputs():\n    return (torch.randn(5, 4),)\n"
    )
    inputs = make_inputs(load_model(f"{file}:Net"))
    assert inputs.source == "example_inputs" and tuple(inputs[0].shape) == (5, 4)


def test_forward_failure_message():
    model = load_model(MLP_TARGET).model
    with pytest.raises(InittuiError) as info:
        probe(model, (torch.randn(8, 10),))
    assert str(info.value) == (
        "forward pass failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied "
        "(8x10 and 64x64); check --input-shape"
    )
    assert no_hooks(model)


# --------------------------------------------------------------------------- hooks and outputs


@dataclass
class Output:
    logits: torch.Tensor
    hidden: torch.Tensor


class Outputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.lstm = nn.LSTM(4, 3, batch_first=True)
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        h = self.shared(self.shared(x))  # called twice
        out, (hn, cn) = self.lstm(h)
        a, _ = self.attn(h, h, h)
        return {"ids": torch.zeros(2, dtype=torch.long), "logits": out, "extra": Output(a, h)}


def test_structured_outputs_calls_and_cleanup():
    model = Outputs().train()
    model.attn.eval()
    result = probe(model, (randn(2, 5, 4),))
    calls = [(r.path, r.call) for r in result.layers]
    assert ("shared", 0) in calls and ("shared", 1) in calls
    assert calls.index(("shared", 0)) < calls.index(("shared", 1))
    lstm = result.layer("lstm")
    assert lstm.main_output == "[0]" and lstm.out_shape == [2, 5, 3]
    assert result.layer("attn").main_output == "[0]"
    root = result.layer("")
    assert root.main_output == "['logits']" and root.out_shape == [2, 5, 3]
    assert calls[-1] == ("", 0)  # completion order: the root finishes last
    assert no_hooks(model)
    assert model.training and model.lstm.training and not model.attn.training
    assert all(p.grad is None for p in model.parameters())


def test_dataclass_output_is_measured():
    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return Output(logits=self.fc(x), hidden=x)

    result = probe(Wrap(), (randn(4, 3),))
    assert result.layer("").main_output == ".logits"
    assert result.layer("").out_std == result.layer("fc").out_std


def test_eval_mode_by_default_train_mode_option():
    """``train_mode``: batch statistics in BatchNorm, dropout still off (issue 11); the
    running statistics and every module's flag are restored."""
    model = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.5), nn.BatchNorm1d(64))
    model.train()
    model[1].eval()  # a mixed state, restored exactly
    with torch.no_grad():
        model[2].running_var.fill_(100.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = (randn(128, 64),)
    evaluated = probe(model, x)
    assert evaluated.layer("1").zero_fraction == 0.0
    assert evaluated.layer("2").out_std < 0.1  # running var 100
    trained = probe(model, x, train_mode=True)
    assert trained.layer("1").zero_fraction == 0.0  # dropout off in train mode too
    assert trained.layer("2").out_std == pytest.approx(1.0, abs=0.01)  # batch statistics
    assert trained.to_dict()["mode_detail"] == "train (batch statistics, dropout off)"
    assert [m.training for m in model] == [True, False, True]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # running stats untouched


def test_cancel_and_progress():
    model = mlp(depth=3, width=16)
    seen: list[tuple[int, int]] = []
    probe(model, (randn(4, 16),), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] == len(list(model.modules()))
    with pytest.raises(CancelledError):
        probe(model, (randn(4, 16),), cancel=lambda: True)
    assert no_hooks(model)


# --------------------------------------------------------------------------- backward


def test_backward_gradients_repeatable_and_no_side_effects():
    model = mlp(depth=4, width=32)
    model.layers[0].bias.requires_grad_(False)
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    x = (randn(16, 32),)
    first = probe(model, x, backward=True, seed=5)
    again = probe(model, x, backward=True, seed=5)
    other = probe(model, x, backward=True, seed=6)
    assert all(r.grad_std is not None and r.grad_std > 0 for r in first.layers)
    assert set(first.param_grad_std) == {n for n, _ in model.named_parameters()}
    assert first.param_grad_std == again.param_grad_std
    assert [r.grad_std for r in first.layers] == [r.grad_std for r in again.layers]
    assert first.param_grad_std != other.param_grad_std
    assert "(output * R).sum()" in first.loss and "manual_seed(5)" in first.loss
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
    assert all(p.grad is None for p in model.parameters())
    assert probe(model, x).layers[0].grad_std is None


def test_backward_on_sequence_model_with_tuple_outputs():
    loaded = load_model(f"{SAMPLES}/lstm_lm.py:LSTMLanguageModel")
    result = probe(loaded.model, make_inputs(loaded), backward=True)
    assert result.layer("lstm").grad_std is not None
    assert "lstm.weight_hh_l0" in result.param_grad_std
    assert all(p.grad is None for p in loaded.model.parameters())


# --------------------------------------------------------------------------- JSON contract


def test_to_dict_contract_keys_and_strict_json():
    model = mlp(depth=3, width=16)
    with torch.no_grad():
        model.layers[2].weight[0, 0] = float("nan")
    document = probe(model, (randn(4, 16),)).to_dict()
    assert {"device", "inputs", "layers", "flags"} <= set(document)
    assert document["device"] == "cpu"
    kept = [{key: item[key] for key in ("shape", "dtype")} for item in document["inputs"]]
    assert kept == [{"shape": [4, 16], "dtype": "float32"}]
    assert document["inputs"][0]["distribution"]["kind"] == "float"
    contract = PREVIEW_LAYER_KEYS
    for layer in document["layers"]:
        assert contract <= set(layer)
        assert layer["grad_std"] is None
    flag_keys = {"path", "kind", "detail", "rule", "ratio", "expected_ratio", "reference"}
    assert all(set(flag) == flag_keys for flag in document["flags"])
    assert document["layers"][2]["out_std"] is None  # layers.2 is non-finite
    nan_flags = [f for f in document["flags"] if f["kind"] == "nan"]
    assert len(nan_flags) == 1 and nan_flags[0]["path"] == "layers.2"
    json.dumps(document, allow_nan=False)


def test_thresholds_validated():
    with pytest.raises(InittuiError):
        Thresholds(vanishing=2.0, exploding=1.0)


# --------------------------------------------------------------------------- theory


@pytest.mark.parametrize(("activation", "rules"), [("relu", KAIMING), ("tanh", XAVIER)])
def test_theory_matches_measured(activation, rules):
    model = apply_rules(mlp(depth=6, activation=activation), *rules)
    result = probe(model, (randn(256, 256),))
    predicted = theory_std(model, result)
    leaves = [r for r in result.layers if r.leaf]
    assert len(predicted) == len(leaves) == 13
    for record in leaves:
        assert record.theory_std == pytest.approx(record.out_std, rel=0.2), record.path
    assert result.layer("").theory_std is None


# --------------------------------------------------------------------------- compare


def test_compare_ratios_and_in_place_fallback():
    loaded = load_model(MLP_TARGET, {"depth": 6})
    model = loaded.model
    original = {k: v.clone() for k, v in model.state_dict().items()}
    plan = Plan(rules=KAIMING, seed=1)
    resolved = resolve_plan(plan, model, build_tree(model))
    x = (randn(32, 64),)
    comparison = compare(model, resolved, x)
    assert not comparison.in_place and comparison.note is None
    for key, value in model.state_dict().items():
        assert torch.equal(value, original[key])  # the copy got the plan
    ratio = comparison.ratio("layers.0")
    current, planned = comparison.current.layer("layers.0"), comparison.planned.layer("layers.0")
    assert ratio == pytest.approx(planned.out_std / current.out_std)
    assert len(comparison.ratios) == len(comparison.planned.layers)
    json.dumps(comparison.to_dict(), allow_nan=False)

    forced = compare(model, resolved, x, max_copy_bytes=0)
    assert forced.in_place and "applied to the model itself" in forced.note
    assert forced.ratio("layers.0") == pytest.approx(ratio)
    assert not torch.equal(model.layers[0].weight, original["layers.0.weight"])


# --------------------------------------------------------------------------- LSUV


def test_lsuv_unit_variance_and_plan_reproduces_it():
    kwargs = {"in_features": 64, "width": 64, "depth": 10, "activation": "tanh"}
    model = load_model(MLP_TARGET, kwargs, seed=0).model
    x = (randn(256, 64, seed=2),)
    result = lsuv(model, x, target_std=1.0, tol=0.1, plan=Plan(seed=7))
    assert len(result.layers) == 11
    assert all(layer.converged and abs(layer.std - 1.0) < 0.1 for layer in result.layers)
    measured = probe(result.model, x, theory=False)
    assert all(abs(s - 1.0) < 0.1 for s in linear_stds(measured))
    assert all(r.rule.scheme == "orthogonal" for r in _rules_with_scale(result.plan))
    assert all(p.grad is None for p in model.parameters())

    fresh = load_model(MLP_TARGET, kwargs, seed=0).model
    apply_plan(fresh, resolve_plan(result.plan, fresh, build_tree(fresh)))
    again = probe(fresh, x, theory=False)
    assert all(abs(s - 1.0) < 0.1 for s in linear_stds(again))
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, result.model.state_dict()[name]), name
    # The user's model is untouched.
    untouched = load_model(MLP_TARGET, kwargs, seed=0).model
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, untouched.state_dict()[name])


@dataclass
class _ScaledRule:
    rule: Rule


def _rules_with_scale(plan: Plan) -> list[_ScaledRule]:
    scaled = [_ScaledRule(rule) for rule in plan.rules if rule.scale is not None]
    assert scaled and all(math.isfinite(item.rule.scale) for item in scaled)
    return scaled


def test_deferred_device_statistics_match_the_cpu_path(monkeypatch):
    """Off the CPU the statistics stay on the device until one copy at the end; run that
    path on the CPU and compare it with the immediate one."""
    from inittui.core import probe as probe_module

    loaded = load_model(f"{SAMPLES}/resnet_tiny.py:TinyResNet")
    inputs = make_inputs(loaded)
    immediate = probe(loaded.model, inputs, backward=True)
    monkeypatch.setattr(probe_module._Stats, "immediate_devices", ())
    deferred = probe(loaded.model, inputs, backward=True)
    fields = ("out_mean", "out_std", "zero_fraction", "abs_max", "grad_std")
    for a, b in zip(immediate.layers, deferred.layers, strict=True):
        for name in fields:
            assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-4, abs=1e-7)
    for name, value in immediate.param_grad_std.items():
        assert deferred.param_grad_std[name] == pytest.approx(value, rel=1e-4)


def test_zero_fraction_counts_negative_zero_and_nonfinite_values():
    from inittui.core.probe import _cpu_moments

    n, mean, var, abs_max, nonzero = _cpu_moments(torch.tensor([-0.0, 0.0, 1.0, -2.0]))
    assert (n, nonzero, abs_max, mean) == (4, 2, 2.0, -0.25)
    assert var == pytest.approx(torch.tensor([-0.0, 0.0, 1.0, -2.0]).var().item())
    assert math.isinf(_cpu_moments(torch.tensor([1.0, float("inf")]))[3])
    assert math.isnan(_cpu_moments(torch.tensor([1.0, float("nan")]))[2])
    offset = torch.full((1000,), 1e4) + randn(1000) * 1e-2  # the mean dominates the std
    assert math.sqrt(_cpu_moments(offset)[2]) == pytest.approx(offset.double().std().item())


def test_theory_follows_in_place_activations_and_flatten():
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 32),
        nn.Tanh(),
    )
    result = probe(model, (randn(64, 3, 8, 8),), backward=True)
    leaves = [r for r in result.layers if r.leaf]
    assert [r.input_link for r in leaves] == ["input"] + ["previous"] * 5
    for record in leaves:
        assert record.theory_std == pytest.approx(record.out_std, rel=0.2), record.path
    assert no_hooks(model)


# --------------------------------------------------------------------------- preview and check


PREVIEW_PLAN = """seed = 3

[[rule]]
select = "type:Linear"
params = "weight"
scheme = "kaiming_normal"
nonlinearity = "relu"

[[rule]]
select = "type:Conv2d"
params = "weight"
scheme = "xavier_uniform"
"""


@pytest.mark.parametrize("target", [MLP_TARGET, f"{SAMPLES}/convnet.py:ConvNet"])
async def test_tui_preview_and_cli_preview_json_give_the_same_numbers(target, cli, tmp_path):
    """The TUI's preview table and ``inittui preview --plan --json`` run one core path:
    per layer call, the same current and planned std (and gradient std) for one seed."""
    from inittui.tui.app import InitApp

    plan = tmp_path / "plan.toml"
    plan.write_text(PREVIEW_PLAN)
    document = cli("preview", target, "--plan", plan, "--seed", "3", "--backward", "--json")
    assert document.code == 0, document.err
    document = document.json()
    planned = {(r["path"], r["call"]): r for r in document["layers"]}
    current = {(r["path"], r["call"]): r for r in document["current"]["layers"] if r["leaf"]}

    app = InitApp(target, plan_path=str(plan), seed=3)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(3000):  # until the model is loaded, then until the preview is in
            await pilot.pause(0.02)
            if app.session is not None and not app.running:
                break
        app.backward = True
        await pilot.press("p")
        for _ in range(3000):
            await pilot.pause(0.02)
            if app.session.preview is not None and not app.running:
                break
        preview = app.session.preview
    assert preview is not None and preview.planned and preview.backward
    assert [(row.path, row.call) for row in preview.rows] == list(current)
    for row in preview.rows:
        key = (row.path, row.call)
        assert row.now_std == pytest.approx(current[key]["out_std"], rel=1e-9)
        assert row.plan_std == pytest.approx(planned[key]["out_std"], rel=1e-9)
        assert row.now_grad == pytest.approx(current[key]["grad_std"], rel=1e-9)
        assert row.plan_grad == pytest.approx(planned[key]["grad_std"], rel=1e-9)
    assert any(row.plan_std != row.now_std for row in preview.rows)  # the plan did something
    shown = sorted((f.which, f.path, f.kind) for f in preview.flags)
    expected = [("now", f["path"], f["kind"]) for f in document["current"]["flags"]]
    expected += [("planned", f["path"], f["kind"]) for f in document["flags"]]
    assert shown == sorted(expected)


def test_tui_preview_refuses_to_apply_in_place(monkeypatch):
    """A model too large to copy: the CLI applies the plan to it, the TUI refuses and the
    user's model keeps its weights."""
    import inittui.core.probe.comparison as comparison_module
    from inittui.core.probe import run_preview
    from inittui.tui.session import run_preview as tui_run_preview

    loaded = load_model(MLP_TARGET, {"depth": 3})
    original = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    resolved = resolve_plan(Plan(rules=KAIMING, seed=1), loaded.model, build_tree(loaded.model))
    monkeypatch.setattr(comparison_module, "default_copy_limit", lambda device=None: 0)
    with pytest.raises(InittuiError, match="not enough memory to copy the model for the planned"):
        tui_run_preview(loaded, resolved, None, None, 0, False)
    with pytest.raises(InittuiError, match="inittui preview --plan"):
        run_preview(loaded, resolved)  # the core's default: never in place
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, original[key])
    run = run_preview(loaded, resolved, allow_in_place=True)
    assert run.comparison is not None and run.comparison.in_place
    assert not torch.equal(loaded.model.layers[0].weight, original["layers.0.weight"])


def test_preview_rows_pair_current_and_planned_per_call():
    from inittui.core.probe import preview_rows, run_preview

    loaded = load_model(MLP_TARGET, {"depth": 4})
    zeros = (Rule("layers.2", "zeros", "weight"),)  # the output vanishes from layers.2 on
    resolved = resolve_plan(Plan(rules=zeros, seed=1), loaded.model, build_tree(loaded.model))
    run = run_preview(loaded, resolved, seed=2)
    assert run.comparison is not None and run.current is run.comparison.current
    assert run.inputs_source == "example_inputs" and run.inputs_description.endswith(
        "from example_inputs"
    )
    rows = preview_rows(run)
    leaves = [layer for layer in run.current.layers if layer.leaf]
    assert rows.planned and len(rows.rows) == len(leaves)
    for row, layer in zip(rows.rows, leaves, strict=True):
        assert (row.path, row.call, row.now_std) == (layer.path, layer.call, layer.out_std)
        assert row.plan_std == run.result.layer(layer.path, layer.call).out_std
    assert {f.which for f in rows.flags} <= {"now", "planned"}
    planned_flags = [(f.path, f.kind) for f in rows.flags if f.which == "planned"]
    assert planned_flags == [("layers.2", "vanishing")]
    assert rows.rows[[r.path for r in rows.rows].index("layers.2")].flags[-1].which == "planned"

    alone = preview_rows(run_preview(loaded, None, seed=2))
    assert not alone.planned and not [f for f in alone.flags if f.which == "planned"]
    assert all(row.plan_std == row.now_std for row in alone.rows)
    assert [row.now_std for row in alone.rows] == [row.now_std for row in rows.rows]


def _result(input_std: float, stds: list[float], flags=()) -> ProbeResult:
    layers = [LayerRecord(f"l{i}", "Linear", 0, True, out_std=s) for i, s in enumerate(stds)]
    layers.append(LayerRecord("", "Sequential", 0, False, out_std=1000.0))  # not a leaf
    return ProbeResult("cpu", [], layers, list(flags), input_std=input_std, input_std_source="x")


def test_check_preview_passes_within_the_ratio_both_ways():
    from inittui.core.probe import check_preview

    verdict = check_preview(_result(2.0, [2.0, 0.5, 8.0]), max_ratio=4)
    assert verdict.passed and verdict.problems == [] and verdict.leaves == 3
    assert verdict.lines() == ["check passed: 3 layers within 4x of the input std (x), no flags"]


def test_check_preview_fails_beyond_the_ratio_and_on_flags():
    from inittui.core.probe import check_preview

    flag = Flag("l0", "nan", "output holds NaN/Inf")
    verdict = check_preview(_result(2.0, [2.0, 0.49, 8.1], [flag]), max_ratio=4)
    assert not verdict.passed and verdict.leaves == 3
    assert verdict.problems[0] == "nan at l0: output holds NaN/Inf"
    assert [p.split(" ")[0] for p in verdict.problems[1:]] == ["l1", "l2"]
    assert "is 0.245x the input's (allowed 1/4..4)" in verdict.problems[1]
    assert verdict.lines()[-1] == "check failed: 3 problem(s) in 3 layers"
    assert verdict.lines()[0] == "fail: nan at l0: output holds NaN/Inf"


def test_check_preview_without_an_input_std_checks_flags_only():
    from inittui.core.probe import check_preview

    assert check_preview(_result(0.0, [1e6]), max_ratio=2).passed


@pytest.mark.parametrize("bad", [1.0, 0.5, float("inf"), float("nan")])
def test_check_preview_refuses_a_max_ratio_not_above_one(bad):
    from inittui.core.probe import check_preview

    with pytest.raises(InittuiError, match="--max-ratio must be a number above 1"):
        check_preview(_result(1.0, [1.0]), max_ratio=bad)
