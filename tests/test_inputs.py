"""What the probe is fed: per-input ``--input-dtype``, real batches from ``--inputs FILE``
(.pt and .safetensors; a tensor, a tuple/list, a dict of keyword inputs), and the line and
JSON entries that say where the inputs came from and what they look like."""

from __future__ import annotations

import pytest
import torch
from harness import MODELS, SAMPLES
from safetensors.torch import save_file
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.loading import load_model
from inittui.core.probe import (
    DEFAULT_IDS_HIGH,
    ids_high,
    input_infos,
    inputs_line,
    make_inputs,
    probe,
    run_preview,
)

IMAGE_TEXT = f"{MODELS}/image_text.py:ImageText"
KEYWORD_ONLY = f"{MODELS}/image_text.py:KeywordOnly"
VOCAB = 50  # tests/models/image_text.py
TWO_SHAPES = ["4,3,16,16", "4,12"]


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
    ids = torch.randint(0, VOCAB, (2, 5), generator=g)
    return image, ids


def _direct(model: nn.Module, image: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(image=image.float(), ids=ids)


# --------------------------------------------------------------------------- --input-dtype


def test_one_dtype_per_input_shape_feeds_an_image_and_ids():
    loaded = load_model(IMAGE_TEXT)
    inputs = make_inputs(loaded, TWO_SHAPES, "float32,long", seed=3)
    image, ids = inputs
    assert inputs.source == "--input-shape" and inputs.keywords == ()
    assert image.dtype == torch.float32 and tuple(image.shape) == (4, 3, 16, 16)
    assert ids.dtype == torch.int64 and tuple(ids.shape) == (4, 12)
    # The first layer is the Conv2d; the ids still land in the Embedding's range.
    assert 0 <= int(ids.min()) and int(ids.max()) < VOCAB and int(ids.max()) >= 2
    torch.testing.assert_close(make_inputs(loaded, TWO_SHAPES, "float32,long", seed=3)[1], ids)
    result = probe(loaded.model, inputs)
    assert result.layer("lstm").out_std is not None and result.layer("head").out_std > 0


def test_one_dtype_applies_to_every_input_and_a_count_mismatch_is_an_error():
    loaded = load_model(IMAGE_TEXT)
    both_long = make_inputs(loaded, TWO_SHAPES, "long")
    assert [t.dtype for t in both_long] == [torch.int64, torch.int64]
    assert [t.dtype for t in make_inputs(loaded, TWO_SHAPES, "float64")] == [torch.float64] * 2
    with pytest.raises(InittuiError, match="gives 3 dtypes for 2 input"):
        make_inputs(loaded, TWO_SHAPES, "float32,long,long")
    with pytest.raises(InittuiError, match="gives 2 dtypes for 1 input"):
        make_inputs(load_model(f"{SAMPLES}/mlp.py:MLP"), None, "float32,long")


def test_ids_range_first_embedding_else_smallest_else_default():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.big = nn.Embedding(1000, 4)
            self.small = nn.Embedding(7, 4)

    assert ids_high(nn.Embedding(123, 4)) == 123
    assert ids_high(Two()) == 7
    assert ids_high(nn.Linear(3, 3)) == DEFAULT_IDS_HIGH == 2
    loaded = load_model(f"{MODELS}/zoo.py:make_mlp")
    ids = make_inputs(loaded, ["64,4"], "long", seed=1)[0]
    assert set(ids.unique().tolist()) == {0, 1}


def test_cli_preview_with_two_shapes_and_two_dtypes(cli):
    args = ("--input-shape", "4,3,16,16", "--input-shape", "4,12", "--input-dtype", "float32,long")
    result = cli("preview", IMAGE_TEXT, *args, "--json")
    assert result.code == 0, result.err
    image, ids = result.json()["inputs"]
    assert image["dtype"] == "float32" and ids["dtype"] == "int64"
    assert image["source"] == ids["source"] == "--input-shape"
    assert image["distribution"]["kind"] == "float"
    assert 0.8 < image["distribution"]["std"] < 1.2
    assert ids["distribution"] == {
        "kind": "ids",
        "mean": None,
        "std": None,
        "min": ids["distribution"]["min"],
        "max": ids["distribution"]["max"],
    }
    assert 0 <= ids["distribution"]["min"] <= ids["distribution"]["max"] < VOCAB
    text = cli("preview", IMAGE_TEXT, *args)
    assert text.code == 0, text.err
    assert "inputs: 2 from --input-shape: (4, 3, 16, 16) float32 mean" in text.out
    assert "(4, 12) int64 ids in [" in text.out.replace("\n", "")


# --------------------------------------------------------------------------- --inputs FILE


def _write(tmp_path, fmt: str, container: str) -> str:
    image, ids = _batch()
    if fmt == "pt":
        path = tmp_path / "batch.pt"
        value = {
            "tuple": (image, ids),
            "list": [image, ids],
            "dict": {"image": image, "ids": ids},
        }[container]
        torch.save(value, path)
    else:
        path = tmp_path / "batch.safetensors"
        if container == "dict":
            save_file({"image": image, "ids": ids}, str(path))
        else:
            save_file({"0": image, "1": ids}, str(path))
    return str(path)


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
@pytest.mark.parametrize("container", ["tuple", "list", "dict"])
def test_inputs_file_feeds_the_model_the_saved_batch(tmp_path, fmt, container):
    if fmt == "safetensors" and container == "list":
        pytest.skip("a safetensors file has no list: keys '0', '1' are the tuple case")
    path = _write(tmp_path, fmt, container)
    loaded = load_model(KEYWORD_ONLY if container == "dict" else IMAGE_TEXT)
    inputs = make_inputs(loaded, inputs_file=path)
    image, ids = _batch()
    assert inputs.source == f"--inputs {path}"
    by_name = dict(zip(inputs.names, inputs, strict=True)) if container == "dict" else None
    got_image, got_ids = (by_name["image"], by_name["ids"]) if by_name else tuple(inputs)
    assert sorted(inputs.keywords) == (["ids", "image"] if container == "dict" else [])
    # Floats come in the model's dtype (float64 in the file), ids as they were saved.
    assert got_image.dtype == torch.float32 and torch.equal(got_image, image.float())
    assert torch.equal(got_ids, ids)
    result = probe(loaded.model, inputs)
    expected = _direct(loaded.model, image, ids)
    assert result.layer("").out_std == pytest.approx(float(expected.std()), rel=1e-6)
    assert not loaded.model._forward_pre_hooks  # keyword_call removed its hook
    entries = result.to_dict()["inputs"]
    assert {e["source"] for e in entries} == {f"--inputs {path}"}
    names = [e["keyword"] for e in entries]
    assert names == (list(inputs.keywords) if container == "dict" else [None, None])


def test_a_single_tensor_file_is_one_positional_input(tmp_path, cli):
    path = tmp_path / "x.pt"
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    torch.save(x, path)
    result = cli("preview", f"{SAMPLES}/mlp.py:MLP", "--inputs", path, "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["inputs_source"] == f"--inputs {path}"
    assert doc["inputs"][0]["shape"] == [5, 64]
    assert doc["inputs"][0]["distribution"]["std"] == pytest.approx(float(x.std()), rel=1e-6)


def test_keyword_inputs_with_backward_and_a_plan(tmp_path):
    path = _write(tmp_path, "safetensors", "dict")
    loaded = load_model(KEYWORD_ONLY)
    from inittui.core.plan import Plan, Rule, resolve_plan
    from inittui.core.tree import build_tree

    plan = Plan(rules=(Rule("type:Linear", "zeros", "*"),))
    resolved = resolve_plan(plan, loaded.model, build_tree(loaded.model))
    run = run_preview(loaded, resolved, inputs_file=path, backward=True)
    assert run.comparison is not None
    assert run.result.layer("head").out_std == 0.0  # the planned copy got the keywords too
    assert run.current.layer("head").out_std > 0
    assert run.current.layer("conv").grad_std is not None


def test_a_tuple_for_keyword_only_forward_fails_in_the_forward(tmp_path):
    path = _write(tmp_path, "pt", "tuple")
    loaded = load_model(KEYWORD_ONLY)
    with pytest.raises(InittuiError, match="forward pass failed"):
        probe(loaded.model, make_inputs(loaded, inputs_file=path))


def test_input_dtype_with_a_file_casts_floats_and_keeps_ids(tmp_path):
    path = _write(tmp_path, "pt", "tuple")
    loaded = load_model(IMAGE_TEXT)
    image, ids = make_inputs(loaded, input_dtype="float64", inputs_file=path)
    assert image.dtype == torch.float64 and ids.dtype == torch.int64
    image, ids = make_inputs(loaded, input_dtype="float16,int32", inputs_file=path)
    assert image.dtype == torch.float16 and ids.dtype == torch.int32


# --------------------------------------------------------------------------- descriptions


def test_inputs_line_and_distribution_of_floats_ids_and_bools():
    x = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    ids = torch.tensor([[0, 999], [5, 17]])
    mask = torch.tensor([True, False, True, True])
    infos = input_infos((x, ids, mask))
    assert infos[0].distribution == {
        "kind": "float",
        "mean": 4.0,
        "std": pytest.approx(float(x.std())),
        "min": 1.0,
        "max": 7.0,
    }
    assert infos[1].distribution == {
        "kind": "ids",
        "mean": None,
        "std": None,
        "min": 0,
        "max": 999,
    }
    assert infos[2].distribution["kind"] == "bool" and infos[2].distribution["mean"] == 0.75
    line = inputs_line(infos, "example_inputs")
    assert line == (
        "inputs: 3 from example_inputs: (2, 2) float32 mean 4.00 std 2.58; "
        "(2, 2) int64 ids in [0, 999]; (4,) bool 75% true"
    )


def test_every_preview_check_and_lsuv_says_what_it_fed(cli, tmp_path):
    target = f"{SAMPLES}/mlp.py:MLP"
    line = "inputs: 1 from example_inputs: (8, 64) float32 mean"
    preview = cli("preview", target, "--arg", "depth=2")
    check = cli("check", target, "--arg", "depth=2")
    lsuv = cli("lsuv", target, "--arg", "depth=2", "--plan-out", tmp_path / "l.toml")
    assert line in preview.out and check.out.startswith(line) and lsuv.out.startswith(line)
    ids_model = f"{MODELS}/zoo.py:Shared"  # an Embedding first: inferred ids
    check = cli("check", ids_model, "--json")
    assert check.code == 2  # check has no --json
    doc = cli("preview", ids_model, "--json").json()
    (entry,) = doc["inputs"]
    assert entry["distribution"]["kind"] == "ids" and entry["distribution"]["std"] is None
    assert entry["source"].startswith("inferred from first layer emb (Embedding)")
    assert "ids in [" in cli("check", ids_model).out.splitlines()[0]
