"""The headless twin of the app's session actions (inittui.core.workspace): what the TUI's
load, open-plan and device workers do, callable from a script with the same result."""

from __future__ import annotations

import pytest
import torch

from inittui.core.errors import InittuiError
from inittui.core.plan import parse_plan, resolve_plan
from inittui.core.workspace import move_model, open_model, read_plan

MLP = "sample_models/mlp.py:MLP"
PLAN = """
version = 1
seed = 3

[[rule]]
select = "type:Linear"
params = "bias"
scheme = "zeros"
"""


def test_open_model_resolves_the_plan_like_resolve_plan(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(PLAN)
    opened = open_model(MLP, {"depth": 2}, plan_path=str(path), seed=None)
    assert opened.plan_error is None
    assert opened.plan.seed == 3
    expected = resolve_plan(parse_plan(PLAN), opened.loaded.model, opened.tree)
    assert [s.param for s in opened.resolved.steps] == [s.param for s in expected.steps]
    assert {s.scheme for s in opened.resolved.steps} == {"zeros"}
    # --seed replaces the plan's seed, as on the command line
    assert open_model(MLP, {"depth": 2}, plan_path=str(path), seed=7).plan.seed == 7
    assert read_plan(str(path), 11).seed == 11


def test_open_model_builds_the_same_weights_as_the_same_seed():
    a = open_model(MLP, {"depth": 2}, seed=5).loaded.model
    b = open_model(MLP, {"depth": 2}, seed=5).loaded.model
    c = open_model(MLP, {"depth": 2}, seed=6).loaded.model
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(x, y), name
    assert not all(torch.equal(x, z) for x, z in zip(a.parameters(), c.parameters(), strict=True))


def test_a_bad_plan_opens_the_model_with_an_empty_plan_or_raises(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('version = 1\n[[rule]]\nselect = "type:Linear"\nscheme = "nope"\n')
    opened = open_model(MLP, plan_path=str(path))
    assert opened.plan_error is not None and "nope" in opened.plan_error
    assert opened.plan.rules == () and not opened.resolved.steps
    with pytest.raises(InittuiError, match="nope"):
        open_model(MLP, plan_path=str(path), keep_bad_plan=False)


def test_move_model_moves_it_and_walks_its_tree_again():
    opened = open_model(MLP, {"depth": 1})
    moved, tree = move_model(opened.loaded, "meta")
    assert moved.on_meta and moved.model is opened.loaded.model
    assert all(p.device.type == "meta" for p in moved.model.parameters())
    assert [p.name for p in tree.parameters] == [p.name for p in opened.tree.parameters]
    with pytest.raises(InittuiError):
        move_model(moved, "nonsense")
