"""Provenance: what the model's own construction did to each parameter (core/provenance.py)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import torch
from harness import MODELS, SAMPLES
from torch import nn

from inittui.core import provenance
from inittui.core.loading import load_model
from inittui.core.provenance import record_construction
from inittui.core.tree import build_tree

PROV = f"{MODELS}/provenance_models.py"


def _calls(prov, name):
    return [c.to_dict() for c in prov[name].calls]


def _originals():
    return (
        {name: getattr(nn.init, name) for name in provenance.INIT_FUNCTIONS},
        {name: vars(torch.Tensor).get(name) for name in ("normal_", "copy_", "zero_", "mul_")},
        torch.empty,
        torch.empty_like,
    )


def test_linear_is_one_kaiming_uniform_and_one_uniform_by_reset_parameters():
    with record_construction() as recorder:
        model = nn.Linear(8, 4)
    prov = recorder.provenance(model)
    (weight,) = _calls(prov, "weight")
    assert weight["fn"] == "kaiming_uniform_" and weight["args"]["a"] == math.sqrt(5)
    assert weight["by"] == "Linear.reset_parameters" and weight["kind"] == "init"
    assert weight["at"].startswith("torch/nn/modules/linear.py:")
    source = Path(torch.__file__).parent / "nn/modules/linear.py"
    line = source.read_text().splitlines()[int(weight["at"].rsplit(":", 1)[1]) - 1]
    assert "kaiming_uniform_" in line
    (bias,) = _calls(prov, "bias")
    bound = 1 / math.sqrt(8)
    assert bias["fn"] == "uniform_" and bias["args"] == {"a": -bound, "b": bound}
    assert prov["weight"].flags == prov["bias"].flags == ()
    assert prov["weight"].calls[0].short() == "Linear.reset_parameters -> kaiming_uniform_(a=2.236)"


def test_init_weights_after_construction_is_written_twice_in_order():
    loaded = load_model(f"{PROV}:Reinit")
    prov = loaded.provenance
    fns = [(c["fn"], c["by"]) for c in _calls(prov, "fc.weight")]
    assert fns == [
        ("kaiming_uniform_", "Linear.reset_parameters"),
        ("normal_", "Reinit._init_weights"),
    ]
    assert _calls(prov, "fc.weight")[1]["args"] == {"mean": 0.0, "std": 0.02}
    assert _calls(prov, "fc.weight")[1]["at"].endswith("provenance_models.py:19")
    assert prov["fc.weight"].flags == ("written_twice",)
    # zero_ by model code is a write, not an init: the bias was initialised once, then zeroed.
    assert [c["kind"] for c in _calls(prov, "fc.bias")] == ["init", "write"]
    assert prov["fc.bias"].flags == ()


def test_transformers_gpt2_init_weights_overwrites_with_std_002_and_residual_scaling():
    from transformers.models.gpt2 import modeling_gpt2

    scaled = "math.sqrt(2 * self.config.n_layer)" in Path(modeling_gpt2.__file__).read_text()
    loaded = load_model(f"{MODELS}/hf.py:gpt2")
    prov = loaded.provenance
    last = _calls(prov, "model.h.0.attn.c_attn.weight")[-1]
    assert last["fn"] == "normal_" and last["args"]["std"] == 0.02
    assert last["at"].startswith("transformers/models/gpt2/modeling_gpt2.py:")
    assert prov["model.h.0.attn.c_attn.weight"].flags == ("written_twice",)
    proj = _calls(prov, "model.h.0.attn.c_proj.weight")[-1]
    n_layer = loaded.model.config.n_layer
    expected = 0.02 / math.sqrt(2 * n_layer) if scaled else 0.02
    assert proj["args"]["std"] == pytest.approx(expected)
    tree = build_tree(loaded.model)
    assert tree.param("model.h.0.attn.c_proj.weight").init_calls[-1].args == (
        ("mean", 0.0),
        ("std", pytest.approx(expected)),
    )


def test_garbage_uninitialized_not_init_and_modifications():
    prov = load_model(f"{PROV}:Garbage").provenance
    assert prov["raw"].calls == () and prov["raw"].flags == ("uninitialized",)
    assert _calls(prov, "copied") == [
        {
            "fn": "copy_",
            "args": {"src": "tensor(4)"},
            "at": _calls(prov, "copied")[0]["at"],
            "by": "Garbage.__init__",
            "kind": "write",
        }
    ]
    assert prov["copied"].flags == ("not_init",)
    assert prov["filled"].flags == ("not_init",)
    assert [(c["fn"], c["kind"]) for c in _calls(prov, "scaled")] == [
        ("xavier_normal_", "init"),
        ("mul_", "modify"),
    ]
    assert prov["scaled"].flags == ()


def test_tied_weights_share_one_history_and_padding_row_is_a_partial_write():
    prov = load_model(f"{PROV}:Tied").provenance
    assert prov["wte.weight"] is prov["head.weight"]
    calls = _calls(prov, "wte.weight")
    # Linear's own kaiming_uniform_ ran on its weight before the tie: not this tensor.
    assert [c["fn"] for c in calls] == ["normal_", "fill_"]
    assert calls[1]["part"] is True and calls[1]["args"] == {"value": 0}
    assert calls[1]["by"] == "Embedding._fill_padding_idx_with_zero"
    assert prov["wte.weight"].flags == ()


def test_meta_build_records_calls_without_data():
    loaded = load_model(f"{SAMPLES}/mlp.py:MLP", device="meta")
    name = next(iter(loaded.provenance))
    (call,) = _calls(loaded.provenance, name)
    assert call["fn"] == "kaiming_uniform_" and call["args"]["a"] == math.sqrt(5)


def test_checkpoint_load_is_the_last_call(tmp_path):
    model = load_model(f"{SAMPLES}/mlp.py:MLP").model
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    prov = load_model(f"{SAMPLES}/mlp.py:MLP", checkpoint=str(path)).provenance
    last = _calls(prov, next(iter(prov)))[-1]
    assert last["fn"] == "load_checkpoint" and last["kind"] == "load"
    assert last["args"] == {"file": "w.pt"}


def test_recording_changes_no_value():
    torch.manual_seed(3)
    plain = nn.Sequential(nn.Linear(5, 7), nn.Embedding(9, 3, padding_idx=2), nn.LSTM(3, 4))
    after_plain = torch.rand(3)
    torch.manual_seed(3)
    with record_construction():
        recorded = nn.Sequential(nn.Linear(5, 7), nn.Embedding(9, 3, padding_idx=2), nn.LSTM(3, 4))
    after_recorded = torch.rand(3)
    pairs = zip(plain.state_dict().items(), recorded.state_dict().items(), strict=True)
    for (name, a), (_, b) in pairs:
        assert torch.equal(a, b), name
    assert torch.equal(after_plain, after_recorded)


def test_functions_are_restored_even_when_construction_raises():
    before = _originals()
    from inittui.core.errors import InittuiError

    with pytest.raises(InittuiError, match="constructing Raises failed"):
        load_model(f"{PROV}:Raises")
    assert _originals() == before
    assert not provenance._state.depth and provenance._installed == 0


def test_nested_and_threaded_recorders():
    before = _originals()
    with record_construction() as outer:
        a = nn.Linear(2, 2)
        with record_construction() as inner:
            b = nn.Linear(3, 3)
        seen = {}

        def other_thread():  # another thread builds while this one records: not recorded
            with record_construction() as mine:
                seen["mine"] = mine.provenance(nn.Linear(4, 4))
            seen["free"] = nn.Linear(4, 4)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        c = nn.Linear(5, 5)
    assert _originals() == before
    assert len(outer.provenance(b)["weight"].calls) == 1  # the outer recorder saw b too
    assert len(inner.provenance(b)["weight"].calls) == 1
    assert inner.provenance(a)["weight"].calls == ()  # a was built before inner began
    assert len(outer.provenance(c)["weight"].calls) == 1
    assert len(seen["mine"]["weight"].calls) == 1
    assert outer.provenance(seen["free"])["weight"].calls == ()


def test_inspect_json_and_text_show_the_history(cli):
    result = cli("inspect", f"{PROV}:Reinit", "--json")
    doc = result.json()
    weight = next(p for p in doc["parameters"] if p["name"] == "fc.weight")
    assert [c["fn"] for c in weight["init_calls"]] == ["kaiming_uniform_", "normal_"]
    assert weight["init_flags"] == ["written_twice"]
    assert doc["init_summary"]["recorded"] and doc["init_summary"]["written_twice"] == 1
    text = cli("inspect", f"{PROV}:Reinit").out
    assert "Reinit._init_weights -> normal_(std=0.02)" in text
    assert "written_twice: fc.weight" in text
    assert "Linear.reset_parameters -> kaiming_uniform_(a=2.236)" in text


def test_a_first_meta_build_under_the_recorder_stays_on_meta():
    """torch.device("meta") caches its factory functions by identity on first use: the
    recorder's torch.empty wrapper must not end up there (a 70B model would hit the CPU)."""
    import subprocess
    import sys

    code = (
        "import torch\nfrom torch import nn\n"
        "from inittui.core.provenance import record_construction\n"
        "with record_construction():\n"
        "    with torch.device('meta'):\n"
        "        layer = nn.Linear(4, 4)\n"
        "with torch.device('meta'):\n"
        "    after = nn.Linear(4, 4)\n"
        "assert layer.weight.is_meta and after.weight.is_meta\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_alike_calls_share_one_entry_but_keep_their_own_arguments():
    """Histories are built once per distinct call (speed); equal-hashing arguments of other
    types (1, 1.0, True) still show as given."""
    from inittui.core.provenance import record_construction

    class Fills(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.empty(3))
            self.b = nn.Parameter(torch.empty(3))
            with torch.no_grad():
                for p, value in ((self.a, 1), (self.b, 1.0)):
                    p.fill_(value)

    with record_construction() as recorder:
        model = Fills()
    found = recorder.provenance(model)
    assert [c.args for c in found["a"].calls] == [(("value", 1),)]
    assert [type(dict(c.args)["value"]) for c in found["b"].calls] == [float]
    with record_construction() as recorder:
        linears = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    found = recorder.provenance(linears)
    assert found["0.weight"] is found["1.weight"]  # one shared history


def test_the_collector_pauses_while_recording_and_comes_back_as_it_was():
    import gc

    from inittui.core.provenance import record_construction

    assert gc.isenabled()
    with pytest.raises(RuntimeError), record_construction():
        with record_construction():  # nested: the outermost one restores it
            assert not gc.isenabled()
        assert not gc.isenabled()
        raise RuntimeError("construction failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with record_construction():
            pass
        assert not gc.isenabled()  # the caller had it off: it stays off
    finally:
        gc.enable()
