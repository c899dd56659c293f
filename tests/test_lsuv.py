"""LSUV as Mishkin & Matas (2016) publish it: the stop criterion is on the variance, biases
start at zero and the plan says so, the inputs it was calibrated on are disclosed, and
``--inputs FILE`` is accepted."""

from __future__ import annotations

import pytest
import torch
from harness import MODELS, SAMPLES
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.loading import load_model
from inittui.core.plan import Plan, Rule, load_plan, resolve_plan
from inittui.core.probe import lsuv, make_inputs, probe
from inittui.core.tree import build_tree

MLP = f"{SAMPLES}/mlp.py:MLP"
TANH3 = {"depth": 3, "activation": "tanh"}


def _variances(model: nn.Module, inputs) -> list[float]:
    result = probe(model, inputs, theory=False)
    return [layer.out_std**2 for layer in result.layers if layer.type in ("Linear", "Conv2d")]


def test_the_criterion_is_on_the_variance_not_the_std():
    """An orthogonal square layer keeps the input's scale: on inputs of std 0.94 its output
    std is 0.94, within 0.1 of 1 (the old criterion stopped there, at variance 0.88), but
    its variance is 0.12 away from 1, so LSUV must rescale it."""
    model = nn.Sequential(nn.Linear(64, 64, bias=False))
    x = torch.randn(512, 64, generator=torch.Generator().manual_seed(0))
    x = x / x.std() * 0.94
    result = lsuv(model, (x,), tol=0.1)
    (layer,) = result.layers
    assert layer.first_variance == pytest.approx(0.94**2, abs=0.01)
    assert layer.iterations >= 1 and layer.converged
    assert abs(layer.variance - 1) < 0.1 and layer.variance == pytest.approx(layer.std**2)


@pytest.mark.parametrize("target_std", [1.0, 2.0])
def test_every_layer_meets_the_variance_criterion(target_std):
    loaded = load_model(MLP, {"depth": 6, "activation": "tanh"})
    inputs = make_inputs(loaded, ["256,64"], seed=1)
    tol = 0.05
    result = lsuv(loaded.model, inputs, target_std=target_std, tol=tol)
    assert result.target_variance == target_std**2
    assert all(layer.converged for layer in result.layers)
    assert all(abs(layer.variance - target_std**2) < tol for layer in result.layers)
    # Measured again on the initialized copy, and on a fresh model with the plan applied.
    assert all(abs(v - target_std**2) < tol for v in _variances(result.model, inputs))
    fresh = load_model(MLP, {"depth": 6, "activation": "tanh"}).model
    apply_plan(fresh, resolve_plan(result.plan, fresh, build_tree(fresh)))
    assert all(abs(v - target_std**2) < tol for v in _variances(fresh, inputs))


def test_first_layer_of_the_tanh_mlp_is_within_tol_on_the_variance():
    loaded = load_model(MLP, TANH3)
    result = lsuv(loaded.model, make_inputs(loaded), tol=0.1)
    first = result.layers[0]
    assert first.path == "layers.0" and abs(first.variance - 1) < 0.1
    assert result.to_dict()["layers"][0]["variance"] == pytest.approx(first.std**2)


def test_biases_are_zeros_in_the_plan_and_in_the_model():
    target = f"{MODELS}/image_text.py:ImageText"  # Conv2d and Linear with biases, an LSTM
    loaded = load_model(target, seed=3)
    inputs = make_inputs(loaded, ["4,3,16,16", "4,12"], "float32,long")
    assert loaded.model.conv.bias.any() and loaded.model.head.bias.any()
    result = lsuv(loaded.model, inputs)
    assert result.bias_types == ("Conv2d", "Linear")
    bias_rules = [rule for rule in result.plan.rules if rule.params == "bias"]
    assert [(r.select, r.scheme) for r in bias_rules] == [
        ("type:Conv2d", "zeros"),
        ("type:Linear", "zeros"),
    ]
    assert not result.model.conv.bias.any() and not result.model.head.bias.any()
    fresh = load_model(target, seed=5).model
    apply_plan(fresh, resolve_plan(result.plan, fresh, build_tree(fresh)))
    for name in ("conv.weight", "conv.bias", "head.weight", "head.bias"):
        assert torch.equal(fresh.state_dict()[name], result.model.state_dict()[name]), name
    assert result.to_dict()["biases"] == ["Conv2d", "Linear"]


def test_a_bias_rule_of_the_start_plan_wins():
    loaded = load_model(MLP, TANH3)
    start = Plan(rules=(Rule("type:Linear", "constant", "bias", {"val": 0.1}),))
    result = lsuv(loaded.model, make_inputs(loaded), plan=start)
    biases = [p for n, p in result.model.named_parameters() if n.endswith("bias")]
    assert biases and all(torch.all(b == 0.1) for b in biases)


def test_the_inputs_are_disclosed_in_the_result_and_the_plan(cli, tmp_path):
    out = tmp_path / "lsuv.toml"
    text = cli("lsuv", MLP, "--arg", "depth=3", "--arg", "activation=tanh", "--plan-out", out)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0].startswith("inputs: 1 from example_inputs: (8, 64) float32 mean")
    assert lines[1] == "biases: zeros on Linear (rules of --plan on biases win)"
    assert "|variance - 1| < 0.1" in lines[2]
    written = out.read_text()
    assert written.startswith("# LSUV (Mishkin & Matas 2016)")
    assert "# calibrated on inputs: 1 from example_inputs: (8, 64) float32" in written
    plan = load_plan(str(out))  # the comment does not disturb reading it back
    notes = [rule.note for rule in plan.rules if rule.select == "type:Linear"]
    assert any("calibrated on inputs: 1 from example_inputs" in (n or "") for n in notes)
    doc = cli("lsuv", MLP, "--arg", "depth=3", "--plan-out", tmp_path / "b.toml", "--json").json()
    assert doc["inputs_source"] == "example_inputs" and doc["criterion"] == "variance"
    assert doc["inputs"][0]["shape"] == [8, 64] and doc["inputs"][0]["distribution"]["std"]
    assert doc["target_variance"] == 1.0


def test_lsuv_takes_inputs_from_a_file_with_keywords(cli, tmp_path):
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.randn(4, 3, 8, 8, generator=g), "ids": torch.randint(0, 50, (4, 6))}
    path = tmp_path / "batch.pt"
    torch.save(batch, path)
    args = ("--plan-out", tmp_path / "l.toml", "--inputs", path, "--json")
    result = cli("lsuv", f"{MODELS}/image_text.py:KeywordOnly", *args)
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["inputs_source"] == f"--inputs {path}"
    assert sorted(e["keyword"] for e in doc["inputs"]) == ["ids", "image"]
    assert [layer["path"] for layer in doc["layers"]] == ["conv", "head"]
    assert all(layer["converged"] for layer in doc["layers"])
