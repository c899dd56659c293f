"""Draw scheme 2: a parameter larger than one tile draws each tile from its own generator.

Tiles cover every element exactly once; a parameter of one tile keeps the numbers of draw
scheme 1 (torch's own function on the whole tensor with the parameter's seed); a multi-tile
fan-based scheme draws with the std/bound torch computes for the whole tensor; ``draw_scheme
= 1`` restores whole-tensor draws; script = app on every layout. The sharded runs (world
sizes 1, 2, 4) are in ``tests/test_sharded.py``.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.codegen import render_script, step_source
from inittui.core.plan import parse_plan, plan_to_toml, resolve_plan
from inittui.core.prelude import (
    TILE_COLS,
    TILE_ROWS,
    _block_seed,
    _param_seed,
    _rows,
    _tiles,
    tile_count,
)
from inittui.core.tree import build_tree

# ----------------------------------------------------------------------------- tiles

SIZES = st.integers(min_value=0, max_value=1100)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.one_of(
        st.just(()),
        st.tuples(st.integers(min_value=0, max_value=3 * TILE_ROWS * TILE_COLS)),
        st.tuples(SIZES, SIZES),
        st.tuples(SIZES, SIZES, st.integers(min_value=0, max_value=3)),
    ),
    data=st.data(),
)
def test_tiles_cover_every_element_exactly_once(shape, data):
    cover = torch.zeros(shape, dtype=torch.int32)
    tiles = list(_tiles(shape))
    assert [index for index, _ in tiles] == list(range(len(tiles))) and tile_count(shape) == len(
        tiles
    )
    for _, tile in tiles:
        assert len(tile) == len(shape)
        if len(shape) >= 2:  # at most one tile's rows and columns, the other dims whole
            assert tile[0][1] - tile[0][0] <= TILE_ROWS and tile[1][1] - tile[1][0] <= TILE_COLS
            assert all(tile[d] == (0, shape[d]) for d in range(2, len(shape)))
        cover[tuple(slice(a, b) for a, b in tile)] += 1
    assert bool((cover == 1).all())
    if shape:  # a box (a shard) gets exactly the tiles that overlap it, in order
        box = []
        for n in shape:
            lo = data.draw(st.integers(min_value=0, max_value=n))
            box.append((lo, data.draw(st.integers(min_value=lo, max_value=n))))
        overlap = [
            index
            for index, tile in tiles
            if all(max(a, c) < min(b, d) for (a, b), (c, d) in zip(tile, box, strict=True))
        ]
        if all(n > 0 for n in shape):
            assert [index for index, _ in _tiles(shape, box)] == overlap


def test_block_seeds_differ_per_tile_and_from_the_parameter_seed():
    seeds = {_block_seed(0, "w", index) for index in range(100)}
    assert len(seeds) == 100 and _param_seed(0, "w") not in seeds
    # no name forges another tile's text: "<seed>/<index>:<name>"
    assert _block_seed(0, "w", 12) != _block_seed(0, "2:w", 1)
    assert _block_seed(1, "w", 0) != _block_seed(0, "w", 0)


def test_rows_cuts_global_rows_out_of_a_tile():
    tile = torch.arange(10)
    assert _rows(tile, 100, 103, 105).tolist() == [3, 4]
    assert _rows(tile, 100, 95, 101).tolist() == [0]
    assert _rows(tile, 100, 110, 120).numel() == 0 and _rows(tile, 100, 0, 5).numel() == 0


# ----------------------------------------------------------------------------- numbers


def _resolved(model: nn.Module, text: str):
    return resolve_plan(parse_plan(text), model, build_tree(model))


def _plan(select: str, scheme: str, extra: str = "", head: str = "") -> str:
    return (
        f'version = 1\nseed = 7\n{head}[[rule]]\nselect = "{select}"\nparams = "weight"\n'
        f'scheme = "{scheme}"\n{extra}'
    )


@pytest.mark.parametrize(
    ("shape", "scheme", "call"),
    [
        ((256, 512), "kaiming_normal", lambda t, g: nn.init.kaiming_normal_(t, generator=g)),
        ((100, 300), "xavier_uniform", lambda t, g: nn.init.xavier_uniform_(t, generator=g)),
        ((256, 512), "normal", lambda t, g: nn.init.normal_(t, generator=g)),
    ],
)
def test_one_tile_parameter_keeps_the_old_numbers(shape, scheme, call):
    model = nn.Linear(shape[1], shape[0])
    resolved = _resolved(model, _plan("", scheme))
    assert step_source(resolved.steps[0]).startswith("with _fresh(params, 'weight', seed)")
    apply_plan(model, resolved)
    expected = torch.empty(shape)
    call(expected, torch.Generator().manual_seed(_param_seed(7, "weight")))
    assert torch.equal(model.weight.detach(), expected)


def test_one_tile_vector_keeps_the_old_numbers():
    model = nn.Linear(1, TILE_ROWS * TILE_COLS)
    text = 'version = 1\nseed = 7\n[[rule]]\nselect = ""\nparams = "bias"\nscheme = "normal"\n'
    resolved = _resolved(model, text)
    apply_plan(model, resolved)
    expected = torch.empty(TILE_ROWS * TILE_COLS)
    expected.normal_(generator=torch.Generator().manual_seed(_param_seed(7, "bias")))
    assert torch.equal(model.bias.detach(), expected)


def test_multi_tile_tiles_are_torch_draws_with_the_tile_seed():
    model = nn.Linear(1030, 600)  # 3 tile rows x 3 tile columns
    apply_plan(model, _resolved(model, _plan("", "normal", "std = 0.5\n")))
    weight = model.weight.detach()
    for index, tile in _tiles(weight.shape):
        part = torch.empty(tuple(b - a for a, b in tile))
        part.normal_(
            0.0, 0.5, generator=torch.Generator().manual_seed(_block_seed(7, "weight", index))
        )
        assert torch.equal(weight[tuple(slice(a, b) for a, b in tile)], part), index


@pytest.mark.parametrize(
    ("scheme", "torch_call", "formula"),
    [
        ("kaiming_normal", nn.init.kaiming_normal_, lambda i, o: math.sqrt(2.0) / math.sqrt(i)),
        (
            "xavier_uniform",
            nn.init.xavier_uniform_,
            lambda i, o: math.sqrt(3.0) * math.sqrt(2.0 / (i + o)),
        ),
        (
            "kaiming_uniform",
            nn.init.kaiming_uniform_,
            lambda i, o: (
                math.sqrt(3.0)
                * (nn.init.calculate_gain("leaky_relu", math.sqrt(5.0)) / math.sqrt(i))
            ),
        ),
        ("lecun_normal", None, lambda i, o: 1.0 / math.sqrt(i)),
    ],
)
def test_multi_tile_fan_based_scheme_draws_torchs_std(scheme, torch_call, formula):
    model = nn.Linear(1200, 700)
    extra = 'nonlinearity = "relu"\n' if scheme == "kaiming_normal" else ""
    extra = "a = 2.23606797749979\n" if scheme == "kaiming_uniform" else extra
    resolved = _resolved(model, _plan("", scheme, extra))
    source = step_source(resolved.steps[0])
    assert source.startswith("for p, g, _, _ in _blocks(params, 'weight', seed):")
    value = formula(1200, 700)
    kind = "uniform_(p, a=" if "uniform" in scheme else "normal_(p, mean=0.0, std="
    assert (f"{kind}{-value!r}" if "uniform" in scheme else f"{kind}{value!r}") in source
    if torch_call is not None:  # the lowered value is torch's: the same bits from one seed
        ours, theirs = torch.empty(700, 1200), torch.empty(700, 1200)
        kwargs = {"a": math.sqrt(5.0)} if scheme == "kaiming_uniform" else {}
        kwargs = {"nonlinearity": "relu"} if scheme == "kaiming_normal" else kwargs
        torch_call(theirs, generator=torch.Generator().manual_seed(1), **kwargs)
        if "uniform" in scheme:
            ours.uniform_(-value, value, generator=torch.Generator().manual_seed(1))
        else:
            ours.normal_(0.0, value, generator=torch.Generator().manual_seed(1))
        assert torch.equal(ours, theirs)
    apply_plan(model, resolved)
    drawn = model.weight.detach().double()
    std = value / math.sqrt(3.0) if "uniform" in scheme else value
    # 840,000 values: the sample std is within 4 of its own standard errors (std / sqrt(2n))
    assert abs(drawn.std().item() - std) < 4 * std / math.sqrt(2 * drawn.numel())
    assert abs(drawn.mean().item()) < 4 * std / math.sqrt(drawn.numel())


def test_draw_scheme_1_draws_whole_tensors_and_round_trips(tmp_path):
    text = _plan("", "kaiming_normal", head="draw_scheme = 1\n")
    plan = parse_plan(text)
    assert plan.draw_scheme == 1 and "draw_scheme = 1" in plan_to_toml(plan)
    assert parse_plan(plan_to_toml(plan)) == plan
    assert "draw_scheme" not in plan_to_toml(parse_plan(_plan("", "normal")))
    assert parse_plan(_plan("", "normal")).draw_scheme == 2
    model = nn.Linear(1200, 700)
    resolved = resolve_plan(plan, model, build_tree(model))
    apply_plan(model, resolved)
    expected = torch.empty(700, 1200)
    nn.init.kaiming_normal_(
        expected, generator=torch.Generator().manual_seed(_param_seed(7, "weight"))
    )
    assert torch.equal(model.weight.detach(), expected)
    script = render_script(resolved)
    assert "DRAW_SCHEME = 1" in script and "_blocks" not in script
    assert "DRAW_SCHEME = 2" in render_script(_resolved(model, _plan("", "normal")))


# ----------------------------------------------------------------------------- script = app


class Wide(nn.Module):
    """Multi-tile parameters under every tile path: rows only (in place), columns too, a
    split along dim 1 with blocks that draw differently, a padding row, LSTM gates with a
    forget bias over a 1-D multi-tile bias, a conv, and whole-tensor schemes."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(300, 700)
        self.b = nn.Linear(1100, 40)
        self.emb = nn.Embedding(600, 24, padding_idx=300)
        self.lstm = nn.LSTM(8, 33000, proj_size=1)  # 1-D biases of 132000
        self.conv = nn.Conv2d(520, 300, 1)
        self.orth = nn.Linear(520, 300)


WIDE_PLAN = """version = 1
seed = 5
[[rule]]
select = "a"
params = "weight"
scheme = "kaiming_uniform"
split = [400, 200, 100]
scale = 0.5
[[rule]]
select = "b"
params = "weight"
scheme = "variance_scaling"
[[rule]]
select = "b"
params = "bias"
scheme = "uniform"
[[rule]]
select = "emb"
scheme = "trunc_normal"
std = 0.02
a = -0.04
b = 0.04
[[rule]]
select = "lstm"
params = "bias*"
scheme = "uniform"
per_gate = true
forget_bias = 1.0
[[rule]]
select = "lstm"
params = "weight*"
scheme = "zeros"
[[rule]]
select = "conv"
params = "weight"
scheme = "xavier_normal"
[[rule]]
select = "orth"
params = "weight"
scheme = "orthogonal"
"""


def _import_script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _relayout(model: nn.Module) -> None:
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            data = torch.empty(*param.shape, 2, dtype=param.dtype)[..., 1]
            setattr(module, name, nn.Parameter(data))


@pytest.mark.timeout(240)
def test_script_equals_app_on_every_layout_and_is_ruff_clean(tmp_path):
    torch.manual_seed(0)
    model = Wide()
    resolved = _resolved(model, WIDE_PLAN)
    script_text = render_script(resolved, model_class="Wide")
    for name in ("a.weight", "b.weight", "emb.weight", "lstm.bias_ih_l0", "conv.weight"):
        assert f"_blocks(params, {name!r}, seed" in script_text, name
    assert "with _fresh(params, 'orth.weight', seed)" in script_text  # orthogonal: whole
    assert "split=(0, [400, 200, 100])" in script_text and "elif k == 2:" in script_text
    assert "_rows(p, r, 300, 301).zero_()" in script_text
    path = tmp_path / "init_wide.py"
    path.write_text(script_text)
    ruff = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--extend-select",
            "B",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout
    script = _import_script(path, "init_wide")
    apply_plan(model, resolved)
    expected = model.state_dict()
    assert bool((expected["emb.weight"][300] == 0).all())
    hidden = 33000
    assert bool((expected["lstm.bias_ih_l0"][hidden : 2 * hidden] == 1.0).all())
    assert bool((expected["lstm.bias_hh_l0"][hidden : 2 * hidden] == 0.0).all())
    for layout in ("fresh", "strided"):
        other = Wide()
        if layout == "strided":
            _relayout(other)  # every tile through a buffer and a copy
        script.init_weights(other)
        for name, value in other.state_dict().items():
            if resolved.step_for(name) is not None:  # the plan's; the rest untouched
                assert torch.equal(value, expected[name]), f"{layout}: {name}"


def test_adding_a_layer_changes_no_other_multi_tile_parameter():
    plan = 'version = 1\nseed = 3\n[[rule]]\nselect = "**"\nscheme = "default"\n'
    small = nn.Sequential(nn.Linear(600, 600), nn.Linear(600, 300))
    large = nn.Sequential(nn.Linear(600, 600), nn.Linear(600, 300), nn.Linear(300, 900))
    apply_plan(small, _resolved(small, plan))
    apply_plan(large, _resolved(large, plan))
    for name, value in small.state_dict().items():
        assert torch.equal(value, large.state_dict()[name]), name
