"""Loading targets: files, packages, factories, instances, arguments, devices, checkpoints."""

from __future__ import annotations

import pytest
import torch
from harness import MODELS, SAMPLES
from safetensors.torch import save_file
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.loading import build_kwargs, load_model, parse_arg, parse_device, parse_dtype

ZOO = f"{MODELS}/zoo.py"


def test_file_target_constructs_class():
    loaded = load_model(f"{SAMPLES}/mlp.py:MLP", {"depth": 3})
    assert loaded.model_class == "MLP"
    assert sum(isinstance(m, nn.Linear) for m in loaded.model.modules()) == 4


def test_package_relative_import_and_sibling_import():
    assert load_model(f"{MODELS}/pkg/net.py:Net").model_class == "Net"
    assert load_model(f"{MODELS}/sibling_import.py:WithHead").model_class == "WithHead"


def test_dotted_module_target():
    loaded = load_model("torch.nn:Linear", {"in_features": 3, "out_features": 2})
    assert isinstance(loaded.model, nn.Linear)


def test_factory_and_instance():
    assert isinstance(load_model(f"{ZOO}:make_mlp", {"width": 5}).model, nn.Sequential)
    assert isinstance(load_model(f"{ZOO}:instance").model, nn.Linear)


@pytest.mark.parametrize(
    ("target", "kwargs", "fragment"),
    [
        ("nowhere/missing.py:Net", {}, "not found"),
        (f"{ZOO}:Sharedd", {}, "did you mean 'Shared'"),
        (f"{ZOO}", {}, "must be path/to/file.py:Name"),
        (f"{MODELS}/broken_syntax.py:Net", {}, "syntax error in broken_syntax.py line 3"),
        (f"{MODELS}/raises_on_import.py:Net", {}, "RuntimeError: this file needs a GPU"),
        (f"{ZOO}:NeedsArgs", {}, "needs constructor argument(s) 'hidden', 'depth'"),
        (
            f"{ZOO}:NeedsArgs",
            {"hidden": 2, "depth": 1, "widht": 3},
            "unexpected argument(s) 'widht'",
        ),
        (f"{ZOO}:Raises", {}, "ValueError: width must be even"),
        (f"{ZOO}:not_a_module", {}, "returned a int, not an nn.Module"),
        (f"{ZOO}:NUMBER", {}, "is a int, not an nn.Module"),
        (f"{ZOO}:instance", {"x": 1}, "takes no --arg"),
        ("no_such_package_xyz.mod:Net", {}, "no module named"),
    ],
)
def test_bad_targets_give_one_line_errors(target, kwargs, fragment):
    with pytest.raises(InittuiError) as info:
        load_model(target, kwargs)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_arguments_parse_literals_else_strings():
    assert parse_arg("depth=12") == ("depth", 12)
    assert parse_arg("widths=(1, 2)") == ("widths", (1, 2))
    assert parse_arg("activation=tanh") == ("activation", "tanh")
    assert parse_arg("flag=True") == ("flag", True)
    assert build_kwargs(["a=1"], '{"a": 0, "b": [1, 2]}') == {"a": 1, "b": [1, 2]}
    with pytest.raises(InittuiError, match="KEY=VALUE"):
        parse_arg("depth")
    with pytest.raises(InittuiError, match="not valid JSON"):
        build_kwargs([], "{depth: 1}")
    with pytest.raises(InittuiError, match="JSON object"):
        build_kwargs([], "[1]")


def test_devices_and_dtypes():
    assert parse_device("cpu") == torch.device("cpu")
    assert parse_device("meta").type == "meta"
    with pytest.raises(InittuiError, match="unknown device 'gpu'"):
        parse_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(InittuiError, match="not available"):
            parse_device("cuda:0")
    assert parse_dtype("bf16") is torch.bfloat16
    with pytest.raises(InittuiError, match="unknown dtype 'float8'"):
        parse_dtype("float8")


def test_meta_device_allocates_nothing_and_dtype_applies():
    loaded = load_model(
        f"{SAMPLES}/mlp.py:MLP", {"width": 4096, "depth": 4}, device="meta", dtype="bfloat16"
    )
    weights = list(loaded.model.parameters())
    assert all(p.is_meta and p.dtype == torch.bfloat16 for p in weights)


def test_lazy_and_parametrized_models_load():
    lazy = load_model(f"{ZOO}:Lazy").model
    assert isinstance(lazy.fc.weight, nn.parameter.UninitializedParameter)
    normed = load_model(f"{ZOO}:WeightNormed").model
    assert "fc.parametrizations.weight.original0" in dict(normed.named_parameters())


def _save_pt(path, obj):
    torch.save(obj, path)
    return str(path)


def test_checkpoint_roundtrip_pt_wrapped_and_safetensors(tmp_path):
    source = load_model(f"{ZOO}:Shared").model
    with torch.no_grad():
        source.fc.weight.fill_(0.5)
    state = source.state_dict()
    for path in (
        _save_pt(tmp_path / "plain.pt", state),
        _save_pt(tmp_path / "wrapped.pth", {"epoch": 3, "state_dict": state}),
        _save_pt(tmp_path / "ddp.pt", {f"module.{k}": v for k, v in state.items()}),
    ):
        loaded = load_model(f"{ZOO}:Shared", checkpoint=path).model
        assert torch.equal(loaded.fc.weight, source.fc.weight)
    # safetensors refuses shared tensors: store one name of the tied pair, loading restores both
    flat = {k: v.clone() for k, v in state.items() if k != "head.weight"}
    save_file(flat, str(tmp_path / "w.safetensors"))
    loaded = load_model(f"{ZOO}:Shared", checkpoint=str(tmp_path / "w.safetensors")).model
    assert torch.equal(loaded.fc.weight, source.fc.weight)
    assert loaded.head.weight is loaded.emb.weight


def test_checkpoint_on_meta_assigns_real_tensors(tmp_path):
    source = load_model(f"{ZOO}:make_mlp").model
    path = _save_pt(tmp_path / "w.pt", source.state_dict())
    loaded = load_model(f"{ZOO}:make_mlp", device="meta", checkpoint=path).model
    assert torch.equal(loaded[0].weight, source[0].weight)


def test_checkpoint_errors(tmp_path):
    source = load_model(f"{ZOO}:make_mlp", {"width": 4}).model
    mismatch = _save_pt(tmp_path / "m.pt", source.state_dict())
    with pytest.raises(InittuiError) as info:
        load_model(f"{ZOO}:make_mlp", {"width": 5}, checkpoint=mismatch)
    assert "shape mismatch: 0.weight checkpoint (4, 4) vs model (5, 5)" in str(info.value)

    partial = dict(source.state_dict())
    partial.pop("2.bias")
    partial["extra.weight"] = torch.zeros(1)
    path = _save_pt(tmp_path / "p.pt", partial)
    with pytest.raises(InittuiError) as info:
        load_model(f"{ZOO}:make_mlp", {"width": 4}, checkpoint=path)
    assert "missing keys: 2.bias" in str(info.value)
    assert "unexpected keys: extra.weight" in str(info.value)

    pickled = _save_pt(tmp_path / "obj.pt", {"model": source})
    with pytest.raises(InittuiError, match="pickled Python objects"):
        load_model(f"{ZOO}:make_mlp", checkpoint=pickled)

    corrupt = tmp_path / "c.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InittuiError, match="corrupt"):
        load_model(f"{ZOO}:make_mlp", checkpoint=str(corrupt))
    bad_st = tmp_path / "c.safetensors"
    bad_st.write_bytes(b"\x00" * 3)
    with pytest.raises(InittuiError, match="corrupt"):
        load_model(f"{ZOO}:make_mlp", checkpoint=str(bad_st))
    with pytest.raises(InittuiError, match="not found"):
        load_model(f"{ZOO}:make_mlp", checkpoint=str(tmp_path / "none.pt"))
    with pytest.raises(InittuiError, match="unknown checkpoint type"):
        load_model(f"{ZOO}:make_mlp", checkpoint=str(tmp_path / "x.npz"))
