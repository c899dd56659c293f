"""Smoke tests for the example models in ``sample_models/`` (loaded by file path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def load(filename: str):
    path = SAMPLES / filename
    name = f"_sample_models_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # needed for dataclasses / pickling inside the module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def run(module, model: torch.nn.Module) -> torch.Tensor:
    inputs = module.example_inputs(model)
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    assert isinstance(inputs, tuple)
    model.eval()
    with torch.no_grad():
        return model(*inputs)


# (file, class name, expected output shape with default kwargs)
CASES = [
    ("mlp.py", "MLP", (8, 10)),
    ("convnet.py", "ConvNet", (4, 10)),
    ("lstm_lm.py", "LSTMLanguageModel", (4, 16, 1000)),
    ("tiny_gpt.py", "TinyGPT", (2, 32, 512)),
    ("resnet_tiny.py", "TinyResNet", (4, 10)),
    ("gru_tagger.py", "GRUTagger", (4, 12, 12)),
]


@pytest.mark.parametrize(("filename", "cls", "shape"), CASES, ids=[c[1] for c in CASES])
def test_default_model_runs(filename: str, cls: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    module = load(filename)
    assert module.__doc__ and f"sample_models/{filename}:{cls}" in module.__doc__
    model = getattr(module, cls)()
    out = run(module, model)
    assert tuple(out.shape) == shape
    assert torch.isfinite(out).all()


def test_readme_lists_every_target() -> None:
    readme = (SAMPLES / "README.md").read_text()
    for filename, cls, _ in CASES:
        assert f"sample_models/{filename}:{cls}" in readme


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "identity", "linear", "sigmoid"])
def test_mlp_activations(activation: str) -> None:
    module = load("mlp.py")
    model = module.MLP(in_features=5, width=7, depth=3, out_features=2, activation=activation)
    linears = [m for m in model.layers if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4
    assert run(module, model).shape == (8, 2)


def test_mlp_rejects_unknown_activation() -> None:
    module = load("mlp.py")
    with pytest.raises(ValueError, match="swish") as excinfo:
        module.MLP(activation="swish")
    for allowed in ("relu", "tanh", "gelu", "identity", "linear", "sigmoid"):
        assert allowed in str(excinfo.value)


def test_convnet_has_depthwise_conv() -> None:
    module = load("convnet.py")
    model = module.ConvNet()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    depthwise = [c for c in convs if c.groups > 1]
    assert len(depthwise) == 1
    dw = depthwise[0]
    assert dw.groups == dw.in_channels == dw.out_channels
    assert dw.weight.shape[1] == 1
    assert all(c.bias is None for c in convs)
    small = module.ConvNet(in_channels=1, num_classes=3, widths=(4, 8))
    assert run(module, small).shape == (4, 3)


def test_lstm_padding_idx() -> None:
    module = load("lstm_lm.py")
    model = module.LSTMLanguageModel()
    assert model.embedding.padding_idx == 0
    assert torch.count_nonzero(model.embedding.weight[0]) == 0
    assert model.lstm.num_layers == 2 and model.lstm.batch_first
    ids = module.example_inputs(model)
    assert ids.dtype == torch.long and ids.shape == (4, 16)
    assert (ids == 0).any() and (ids[:, 0] != 0).all()
    single = module.LSTMLanguageModel(vocab_size=50, num_layers=1)
    assert run(module, single).shape == (4, 16, 50)


def test_tiny_gpt_tied_weights_and_names() -> None:
    module = load("tiny_gpt.py")
    model = module.TinyGPT()
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.lm_head.bias is None
    names = {n for n, _ in model.named_parameters()}
    assert "lm_head.weight" not in names  # tied: reported once, under transformer.wte
    for expected in (
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.h.0.ln_1.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.0.attn.c_proj.weight",
        "transformer.h.1.ln_2.bias",
        "transformer.h.1.mlp.c_fc.weight",
        "transformer.h.1.mlp.c_proj.weight",
        "transformer.ln_f.weight",
    ):
        assert expected in names
    assert model.transformer.h[0].attn.c_attn.weight.shape == (192, 64)
    model.apply_gpt2_init()
    assert model.lm_head.weight is model.transformer.wte.weight
    assert run(module, model).shape == (2, 32, 512)


def test_tiny_gpt_is_causal() -> None:
    torch.manual_seed(0)
    module = load("tiny_gpt.py")
    model = module.TinyGPT(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=16).eval()
    idx = torch.randint(0, 32, (1, 8))
    changed = idx.clone()
    changed[0, -1] = (idx[0, -1] + 1) % 32
    with torch.no_grad():
        a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])


def test_resnet_blocks_have_bn2() -> None:
    module = load("resnet_tiny.py")
    model = module.TinyResNet()
    blocks = [m for m in model.modules() if isinstance(m, module.BasicBlock)]
    assert 2 <= len(blocks) <= 3
    for block in blocks:
        assert isinstance(block.bn2, torch.nn.BatchNorm2d)
    assert any(b.downsample is None for b in blocks)
    assert any(b.downsample is not None for b in blocks)
    # Zero-init residual: every block becomes relu(identity).
    for block in blocks:
        torch.nn.init.zeros_(block.bn2.weight)
    assert run(module, model).shape == (4, 10)


def test_gru_tagger() -> None:
    module = load("gru_tagger.py")
    model = module.GRUTagger()
    assert model.embedding.padding_idx == 0
    assert model.gru.bidirectional and model.gru.batch_first
    assert model.head.in_features == 2 * model.gru.hidden_size
