"""Verdicts that know the architecture (issue 11, points 2 and 5): each layer judged against
its own input, its own theory and the reference in force (embeddings and normalizations
set fresh ones), residual adds recognised and judged per stack, and backward verdicts."""

from __future__ import annotations

import math

import pytest
import torch
from harness import ROOT, SAMPLES
from torch import nn

from inittui.core.loading import load_model
from inittui.core.probe import check_preview, probe

pytest.importorskip("transformers")

HF = ROOT / "tests" / "models" / "hf.py"
N01_PLAN = """
[[rule]]
select = "type:Linear"
params = "weight"
scheme = "normal"
std = 1.0

[[rule]]
select = "type:Conv1D"
params = "weight"
scheme = "normal"
std = 1.0
"""


def hf_probe(name: str, backward: bool = False):
    loaded = load_model(f"{HF}:{name}")
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (4, 32), generator=generator)
    return loaded.model, probe(loaded.model, (ids,), backward=backward)


def chain(widths: list[int], activation: type[nn.Module], init=None, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths, widths[1:], strict=False):
        linear = nn.Linear(fan_in, fan_out)
        if init is not None:
            init(linear.weight)
            nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- transformers


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_hf_models_with_their_own_init_pass_check(cli, name):
    """Before: gpt2 failed with 18 problems, bert with 27 (every LayerNorm 'exploded'
    against the 0.02 embedding std)."""
    result = cli("check", f"{HF}:{name}")
    assert result.code == 0, result.out
    assert result.out.splitlines()[-1].startswith("check passed: ")
    assert "no flags" in result.out
    backward = cli("check", f"{HF}:{name}", "--backward")
    assert backward.code == 0, backward.out


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("gpt2", ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]),
        ("bert", ["self.query", "self.key", "self.value", "output.dense"]),
    ],
)
def test_hf_models_with_normal_one_weights_fail_check_naming_the_layers(
    cli, tmp_path, name, broken
):
    plan = tmp_path / "n01.toml"
    plan.write_text(N01_PLAN)
    result = cli("check", f"{HF}:{name}", "--plan", plan)
    assert result.code == 1
    inputs, *lines = result.out.splitlines()
    assert inputs.startswith("inputs: 1 from example_inputs: (4, 32) int64 ids")
    assert lines[-1].startswith("check failed: ") and lines[-1].endswith(" layers")
    assert all(line.startswith("fail: ") for line in lines[:-1])
    for layer in broken:
        assert any(layer in line and "its weights scale" in line for line in lines), layer
    residual = [line for line in lines if "residual stream std" in line]
    assert len(residual) == 8  # every add of the 4 blocks (2 per block)
    assert lines[0].startswith("fail: exploding at ")


def test_gpt2_residual_adds_are_a_pre_ln_stack():
    model, result = hf_probe("gpt2")
    adds = result.residuals
    assert [a.path for a in adds] == [f"model.h.{i // 2}" for i in range(8)]
    assert [a.depth for a in adds] == list(range(1, 9))
    assert {a.kind for a in adds} == {"pre-LN"}
    for add in adds:  # the stream after the add is the stream plus the branch
        expected = math.sqrt(add.stream_std**2 + add.branch_std**2)
        assert add.out_std == pytest.approx(expected, rel=0.1)
        assert add.out_std < add.expected_std
    # the branch's calls are judged by the add; its last projection may be small
    c_proj = result.layer("model.h.0.attn.c_proj")
    assert c_proj.residual_branch == "model.h.0" and c_proj.branch_last
    assert c_proj.weight_ratio == pytest.approx(0.02 / math.sqrt(8) * math.sqrt(128), rel=0.05)
    assert c_proj.reference is None
    # an activation's own x + 0.044715 x^3 is no residual add
    assert not [a for a in adds if "act" in a.path]
    ln_f = result.layer("model.ln_f")
    assert ln_f.reference.startswith("LayerNorm model.ln_f output")
    assert not result.flags


def test_bert_residual_adds_are_post_ln():
    _, result = hf_probe("bert")
    adds = result.residuals
    assert len(adds) == 8 and {a.kind for a in adds} == {"post-LN"}
    assert {a.depth for a in adds} == {1}
    query = result.layer("model.encoder.layer.0.attention.self.query")
    assert query.residual_branch == "model.encoder.layer.0.attention.output"


def test_linear_theory_is_the_weights_ratio():
    """Conv1D (weights stored (in, out)): expected ratio sqrt(sum W^2 / outputs) = sqrt(fan_in)
    x weight std, and the measurement agrees with it."""
    _, result = hf_probe("gpt2")
    c_attn = result.layer("model.h.0.attn.c_attn")
    assert c_attn.weight_ratio == pytest.approx(0.02 * math.sqrt(128), rel=0.05)
    assert c_attn.out_std / c_attn.in_std == pytest.approx(c_attn.expected_ratio, rel=0.05)
    assert c_attn.expected_grad_ratio == pytest.approx(0.02 * math.sqrt(3 * 128), rel=0.05)


# --------------------------------------------------------------------------- textbook nets


def test_deep_relu_xavier_vanishes_and_he_stays_clean():
    xavier = chain([256] * 22, nn.ReLU, nn.init.xavier_normal_)
    result = probe(xavier, (torch.randn(256, 256),))
    flags = [(f.kind, f.rule) for f in result.flags]
    assert flags == [("vanishing", "reference")]
    assert not check_preview(result, 10).passed

    he = chain([256] * 22, nn.ReLU, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))
    result = probe(he, (torch.randn(256, 256),), backward=True)
    assert result.flags == []
    assert check_preview(result, 10).passed
    for record in result.layers:  # every layer does what its theory says
        if record.leaf:
            assert record.out_std / record.in_std == pytest.approx(
                record.expected_ratio, rel=0.25
            ), record.path


def test_deep_tanh_default_init_vanishes_forward_and_backward():
    model = chain([256] * 16, nn.Tanh)
    result = probe(model, (torch.randn(256, 256),), backward=True)
    kinds = {f.kind: f for f in result.flags}
    assert set(kinds) == {"vanishing", "vanishing_grad"}
    assert kinds["vanishing"].rule == "reference"
    assert "the input's" in kinds["vanishing"].detail


def test_he_fan_in_on_a_narrowing_relu_net_passes_forward_but_not_backward(cli):
    """He et al. 2015: fan_in mode keeps the forward variance, and the backward one only when
    fan_in = fan_out. Narrowing layers shrink the gradient by sqrt(fan_out/fan_in x 2) x
    sqrt(1/2) = 0.71 each: 'check' passes, 'check --backward' fails on vanishing_grad."""
    widths = [2048, 1024, 512, 256, 128, 64, 32, 16, 8]
    model = chain(widths, nn.ReLU, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))
    forward = probe(model, (torch.randn(64, 2048),))
    assert check_preview(forward, 10).passed
    backward = probe(model, (torch.randn(64, 2048),), backward=True)
    verdict = check_preview(backward, 10)
    assert not verdict.passed
    assert [f.kind for f in backward.flags] == ["vanishing_grad"]
    assert backward.flags[0].rule == "gradient reference"
    first = backward.layers[0]
    # He's backward: Var(dx) = fan_out Var(w) Var(dy) for the Linear
    assert first.in_grad_std is not None  # the model input, consumed by layer 0 alone
    second = backward.layer("2")
    assert second.in_grad_std / second.grad_std == pytest.approx(
        second.expected_grad_ratio, rel=0.2
    )
    assert second.expected_grad_ratio == pytest.approx(1.0, rel=0.05)  # sqrt(512 x 2/1024)


def test_check_backward_on_the_cli(cli, tmp_path):
    model_file = tmp_path / "narrow.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Narrow(nn.Sequential):\n"
        "    def __init__(self):\n"
        "        widths = [2048, 1024, 512, 256, 128, 64, 32, 16, 8]\n"
        "        layers = []\n"
        "        for a, b in zip(widths, widths[1:]):\n"
        "            lin = nn.Linear(a, b)\n"
        "            nn.init.kaiming_normal_(lin.weight, nonlinearity='relu')\n"
        "            layers += [lin, nn.ReLU()]\n"
        "        super().__init__(*layers)\n\n"
        "def example_inputs(model):\n"
        "    return (torch.randn(64, 2048),)\n"
    )
    assert cli("check", f"{model_file}:Narrow").code == 0
    result = cli("check", f"{model_file}:Narrow", "--backward")
    assert result.code == 1
    assert "fail: vanishing_grad at " in result.out
    assert "gradient std" in result.out


def test_exploding_weights_are_named_by_the_weights_rule():
    model = chain([128, 128, 128], nn.Tanh, lambda w: nn.init.normal_(w, 0.0, 1.0))
    result = probe(model, (torch.randn(64, 128),))
    flag = next(f for f in result.flags if f.kind == "exploding")
    assert (flag.path, flag.rule) == ("0", "weights")
    assert flag.ratio == pytest.approx(math.sqrt(128), rel=0.05)
    assert "its weights scale a unit input's std by" in flag.detail


def test_a_layer_that_breaks_its_own_theory_is_flagged():
    """Weights of rms 1/16 (ratio ~1 for independent features) that all agree, fed an input
    whose features all agree: the output is 16x the input, where the theory says 1x."""
    linear = nn.Linear(256, 256, bias=False)
    with torch.no_grad():
        linear.weight.fill_(1 / 16)
    x = torch.randn(64, 1, generator=torch.Generator().manual_seed(0)).expand(64, 256)
    result = probe(nn.Sequential(linear), (x - x.mean(),))
    record = result.layer("0")
    assert record.weight_ratio == pytest.approx(1.0)
    assert record.expected_ratio == pytest.approx(1.0, rel=0.05)
    flag = next(f for f in result.flags if f.kind == "exploding")
    assert flag.rule == "theory" and flag.expected_ratio == pytest.approx(1.0, rel=0.05)
    assert flag.ratio == pytest.approx(16.0, rel=0.01)
    assert "16x its input's where Linear with these weights should give ~1x" in flag.detail


def test_resnet_stream_adds_and_eval_mode_vanishing(cli):
    """The sample ResNet (default init, eval mode: BatchNorm is the identity) shrinks the
    signal 20x: still flagged, past the residual adds."""
    result = cli("check", f"{SAMPLES}/resnet_tiny.py:TinyResNet")
    assert result.code == 1 and "vanishing" in result.out
    assert "layer1.conv2" not in result.out  # inside layer1's residual branch; its add is fine


def test_the_probe_leaves_no_hook_behind():
    """Input-gradient hooks go on activations only, never on a parameter a layer consumes."""

    class UsesItsWeight(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 8))
            self.act = nn.Tanh()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.act(self.weight)

    model = UsesItsWeight()
    result = probe(model, (torch.randn(4, 8),), backward=True)
    assert result.layer("act").in_std == pytest.approx(model.weight.std().item(), rel=1e-4)
    assert not model.weight._backward_hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
