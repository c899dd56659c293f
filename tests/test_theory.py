"""The theory columns against the papers and against plain hooks (issue 11).

He et al. 2015 (30 ReLU layers: fan_in keeps the forward std, fan_out the backward one) and
Glorot & Bengio 2010 (5 tanh layers, Xavier, backward gradients) are measured here with our
own forward/backward hooks, independent of inittui's recorder; inittui must measure the same
values and its theory must predict them. The theory must be exact at conv borders and never
copied from a measurement; the preview runs normalization on batch statistics by default."""

from __future__ import annotations

import pytest
import torch
from harness import SAMPLES
from torch import nn

from inittui.core.loading import load_model
from inittui.core.probe import probe, run_preview, theory_std


def chain(
    depth: int, width: int, activation: type[nn.Module], init, seed: int = 0
) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        init(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    return nn.Sequential(*layers)


def plain_hooks(model: nn.Module, x: torch.Tensor, seed: int) -> dict[str, tuple[float, float]]:
    """Per leaf: (output std, output-gradient std) from plain hooks and the preview's loss
    ``(output * R).sum()``, R ~ N(0, 1) from ``torch.Generator().manual_seed(seed)``."""
    forward: dict[str, float] = {}
    backward: dict[str, float] = {}
    handles = []
    for name, module in model.named_children():

        def hook(mod, args, out, name=name):
            forward[name] = out.detach().double().std().item()

            def grad_hook(grad, name=name):
                backward.setdefault(name, grad.double().std().item())

            out.register_hook(grad_hook)

        handles.append(module.register_forward_hook(hook))
    try:
        out = model(x.detach().requires_grad_(True))
        noise = torch.randn(tuple(out.shape), generator=torch.Generator().manual_seed(seed))
        (out * noise).sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    model.zero_grad(set_to_none=True)
    return {name: (forward[name], backward[name]) for name in forward}


def check_against_hooks(
    model: nn.Module, x: torch.Tensor, rel: float, grad_rel: float | None = None
) -> list:
    expected = plain_hooks(model, x, seed=3)
    result = probe(model, (x,), backward=True, seed=3)
    leaves = [r for r in result.layers if r.leaf]
    assert [r.path for r in leaves] == list(expected)
    for record in leaves:
        out_std, grad_std = expected[record.path]
        assert record.out_std == pytest.approx(out_std, rel=1e-5), record.path
        assert record.grad_std == pytest.approx(grad_std, rel=1e-5), record.path
        assert record.theory_std == pytest.approx(out_std, rel=rel), record.path
        assert record.grad_theory_std == pytest.approx(grad_std, rel=grad_rel or rel), record.path
    return leaves


def test_he_2015_forward_fan_in_keeps_the_std():
    model = chain(30, 512, nn.ReLU, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))
    # The gradient's prediction drifts more here (fan_in is not the backward's choice).
    leaves = check_against_hooks(model, torch.randn(512, 512), rel=0.03, grad_rel=0.08)
    linear = [r.out_std for r in leaves if r.type == "Linear"]
    assert len(linear) == 30
    # He: Var[y_L] = Var[y_1] prod(fan_in Var[w] / 2) = Var[y_1]: no vanishing, no explosion.
    assert all(0.5 < std / linear[0] < 2 for std in linear)


def test_he_2015_backward_fan_out_keeps_the_gradient_std():
    init = lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")  # noqa: E731
    model = chain(30, 512, nn.ReLU, init, seed=1)
    leaves = check_against_hooks(model, torch.randn(512, 512), rel=0.04)
    grads = [r.grad_std for r in leaves if r.type == "Linear"]
    predicted = [r.grad_theory_std for r in leaves if r.type == "Linear"]
    # He: Var[dx_1] = Var[dx_L] prod(fan_out Var[w] / 2): the gradient neither fades nor grows.
    assert all(0.7 < g / grads[-1] < 1.4 for g in grads)
    assert leaves[-1].grad_theory_std == 1.0  # the loss's gradient R has variance 1
    assert len(predicted) == 30


def test_glorot_2010_five_tanh_layers_backward():
    model = chain(5, 1000, nn.Tanh, nn.init.xavier_uniform_)
    leaves = check_against_hooks(model, torch.randn(512, 1000), rel=0.02)
    tanh = [r for r in leaves if r.type == "Tanh"]
    # Glorot: with the normalized init the forward std shrinks slowly through tanh layers
    # and the back-propagated gradient grows toward the output.
    assert all(a.out_std > b.out_std for a, b in zip(tanh, tanh[1:], strict=False))
    assert all(a.grad_std < b.grad_std for a, b in zip(tanh, tanh[1:], strict=False))


def conv_stack(depth: int = 30, channels: int = 64) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(depth):
        conv = nn.Conv2d(3 if i == 0 else channels, channels, 3, padding=1)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.ReLU()]
    return nn.Sequential(*layers)


def test_theory_is_exact_at_conv_borders():
    """30 padded 3x3 convs on 16x16 maps: a quarter of the outputs sit at a border and sum
    fewer inputs; ignoring that put the theory 26-50% off after 30 layers."""
    model = conv_stack()
    result = probe(model, (torch.randn(16, 3, 16, 16),), backward=True)
    leaves = [r for r in result.layers if r.leaf]
    assert len(leaves) == 60
    for record in leaves:
        assert record.theory_std == pytest.approx(record.out_std, rel=0.02), record.path
        assert record.grad_theory_std == pytest.approx(record.grad_std, rel=0.03), record.path


def test_theory_accounts_for_stride_dilation_and_groups():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=2, dilation=2, groups=4),
        nn.Tanh(),
        nn.Identity(),
    )
    result = probe(model, (torch.randn(64, 3, 12, 12),), backward=True)
    for record in (r for r in result.layers if r.leaf):
        assert record.theory_std == pytest.approx(record.out_std, rel=0.03), record.path
        assert record.grad_theory_std == pytest.approx(record.grad_std, rel=0.05), record.path


class Square(nn.Module):
    """A layer the theory does not know."""

    def forward(self, x):
        return x * x


def test_theory_is_never_taken_from_a_measurement():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 64),
        nn.Dropout(0.3),
        nn.Tanh(),
        Square(),
        nn.Linear(64, 64),
        nn.LayerNorm(64),
        nn.Linear(64, 64),
        nn.Dropout(0.3),
    )
    with torch.no_grad():
        model[5].weight.fill_(2.0)
        model[5].bias.fill_(0.5)
    result = probe(model, (torch.randn(256, 64),))
    theory = {r.path: r.theory_std for r in result.layers if r.leaf}
    # No theory after the unknown layer until LayerNorm sets a fresh reference: std |weight|.
    assert theory["3"] is None and theory["4"] is None
    assert theory["5"] == pytest.approx(2.0, rel=1e-3)
    assert theory["1"] == theory["0"] and theory["7"] == theory["6"]  # dropout is off
    for record in result.layers:  # perturb every measurement: the theory must not move
        if record.out_std is not None:
            record.out_std *= 3.0
            record.out_mean = (record.out_mean or 0.0) + 1.0
    theory_std(model, result)
    assert {r.path: r.theory_std for r in result.layers if r.leaf} == theory
    assert all(r.grad_theory_std is None for r in result.layers)  # no backward pass


def test_embedding_sets_the_reference():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(1000, 64, padding_idx=0), nn.Linear(64, 64), nn.GELU())
    nn.init.normal_(model[0].weight, std=0.02)
    with torch.no_grad():
        model[0].weight[0].zero_()
    result = probe(model, (torch.randint(0, 1000, (64, 32)),))
    for record in (r for r in result.layers if r.leaf):
        assert record.theory_std == pytest.approx(record.out_std, rel=0.05), record.path


def test_preview_uses_batch_statistics_by_default_and_leaves_the_model_alone():
    loaded = load_model(f"{SAMPLES}/convnet.py:ConvNet")
    model = loaded.model
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = run_preview(loaded, None)
    result = run.result
    assert result.train_mode and result.to_dict()["mode"] == "train"
    norms = [r for r in result.layers if r.type == "BatchNorm2d"]
    assert norms and all(r.out_std == pytest.approx(1.0, abs=0.01) for r in norms)
    assert all(r.theory_std == pytest.approx(1.0, abs=0.01) for r in norms)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(m.training for m in model.modules())  # modes restored

    evaluated = run_preview(loaded, None, train_mode=False).result
    assert evaluated.to_dict()["mode_detail"] == "eval (running statistics)"
    assert any(abs(r.out_std - 1.0) > 0.05 for r in evaluated.layers if r.type == "BatchNorm2d")


def test_cli_mode_options(cli):
    target = f"{SAMPLES}/convnet.py:ConvNet"
    default = cli("preview", target, "--json").json()
    assert (default["mode"], default["mode_detail"]) == (
        "train",
        "train (batch statistics, dropout off)",
    )
    assert cli("preview", target, "--json", "--train").json()["mode"] == "train"
    assert cli("preview", target, "--json", "--eval").json()["mode"] == "eval"
    assert cli("preview", target, "--eval", "--train").code == 2
    text = cli("preview", target).out
    assert "train mode (batch statistics, dropout off)" in " ".join(text.split())


def test_grad_theory_only_along_the_chain_to_the_output():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(32, 32), nn.ReLU(), Square(), nn.Linear(32, 32), nn.Linear(32, 32)
    )
    result = probe(model, (torch.randn(128, 32),), backward=True)
    grad = {r.path: r.grad_theory_std for r in result.layers if r.leaf}
    assert grad["4"] == 1.0
    for path in ("3", "2"):  # back through Linear layers: known without the forward theory
        assert grad[path] == pytest.approx(result.layer(path).grad_std, rel=0.1), path
    assert grad["1"] is None and grad["0"] is None  # through Square: unknown
