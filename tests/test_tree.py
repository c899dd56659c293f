"""Module/parameter records: names, shapes, fans (exactly torch's), tied and shared weights."""

from __future__ import annotations

import torch
from harness import MODELS, SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from inittui.core.loading import load_model
from inittui.core.tree import build_tree, fans


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=9), min_size=0, max_size=6))
def test_fans_equal_torch(shape):
    got = fans(shape)
    if len(shape) < 2:
        assert got is None
        return
    expected = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert got == expected


def test_records_match_named_parameters_and_tied_aliases():
    model = load_model(f"{MODELS}/zoo.py:Shared").model
    tree = build_tree(model)
    names = [p.name for p in tree.parameters]
    assert names == [n for n, _ in model.named_parameters()]
    emb = tree.param("emb.weight")
    assert emb.aliases == ["head.weight"]
    assert tree.param("head.weight") is emb
    assert tree.total_params == sum(p.numel() for p in model.parameters())
    shared = next(m for m in tree.modules if m.path == "fc")
    assert shared.aliases == ["again"]
    assert [m.path for m in tree.modules] == [p for p, _ in model.named_modules()]
    root = tree.modules[0]
    assert root.num_params == tree.total_params
    assert root.param_names == ["scale"]
    scale = tree.param("scale")
    assert scale.shape == () and scale.fan_in is None


def test_fans_and_notes_for_convolutions():
    model = load_model(f"{MODELS}/zoo.py:Convs").model
    tree = build_tree(model)
    for record in tree.parameters:
        tensor = dict(model.named_parameters())[record.name]
        if tensor.dim() >= 2:
            torch_fans = nn.init._calculate_fan_in_and_fan_out(tensor)
            assert (record.torch_fan_in, record.torch_fan_out) == torch_fans
            if record.fan_source == "torch":
                assert (record.fan_in, record.fan_out) == torch_fans
    # Computed fans where torch's layout rule misleads (inittui.core.fans):
    # ConvTranspose2d(16, 6, 4, stride=2, groups=2): in/groups*k/stride^2, out/groups*k.
    assert (tree.param("up.weight").fan_in, tree.param("up.weight").fan_out) == (32, 48)
    assert (tree.param("grouped.weight").fan_in, tree.param("grouped.weight").fan_out) == (18, 36)
    assert tree.param("depthwise.weight").fan_out == 9
    assert tree.param("c1.weight").fan_source == "torch"
    assert "transposed" in tree.param("up.weight").fan_note
    assert "grouped conv (groups=4)" in tree.param("grouped.weight").fan_note
    assert "depthwise" in tree.param("depthwise.weight").fan_note
    assert tree.param("c1.weight").fan_note is None
    assert tree.param("bil.weight").shape == (5, 3, 4)


def test_lazy_parameters_reported_uninitialized():
    tree = build_tree(load_model(f"{MODELS}/zoo.py:Lazy").model)
    record = tree.param("fc.weight")
    assert record.uninitialized and record.shape is None and record.numel == 0
    assert not record.has_data


def test_buffers_and_module_counts():
    model = load_model(f"{SAMPLES}/convnet.py:ConvNet").model
    tree = build_tree(model)
    assert [b.name for b in tree.buffers] == [n for n, _ in model.named_buffers()]
    for record in tree.modules:
        module = model.get_submodule(record.path)
        assert record.num_params == sum(p.numel() for p in module.parameters())
        assert record.children == [n for n, _ in module.named_children()]
