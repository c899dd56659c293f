"""``type:CLASS@PATH``: every module of a class inside a path selector (the assign
dialog's "every TYPE inside this subtree"), and coverage of tied aliases: what a rule
selecting a tied head reaches is the shared tensor, once, exactly as resolution decides."""

from __future__ import annotations

from harness import MODELS
from torch import nn

from inittui.core.fans import traced_tree
from inittui.core.loading import load_model
from inittui.core.plan import Plan, Rule, covered_params, resolve_plan
from inittui.core.plan.select import module_matches
from inittui.core.tree import build_tree
from inittui.tui.session import ModelIndex


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        convs = [nn.Conv2d(3, 4, 3, bias=False), nn.Conv2d(4, 4, 3, bias=False)]
        self.encoder = nn.Sequential(convs[0], nn.BatchNorm2d(4), convs[1])
        self.head = nn.Sequential(nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))


def _decided(model: nn.Module, *rules: Rule) -> dict[str, int]:
    return resolve_plan(Plan(rules=rules), model, build_tree(model)).decided_by


def test_type_inside_a_subtree_selects_only_that_class_there():
    model = Net()
    decided = _decided(model, Rule("type:Conv2d@encoder.**", "kaiming_normal"))
    assert decided == {"encoder.0.weight": 0, "encoder.2.weight": 0}
    # an exact path and a glob after @, and subclasses/qualified names before it
    assert _decided(model, Rule("type:Conv2d@encoder.2", "zeros")) == {"encoder.2.weight": 0}
    assert set(_decided(model, Rule("type:BatchNorm2d@*.1", "ones"))) == {
        "encoder.1.weight",
        "encoder.1.bias",
        "head.1.weight",
        "head.1.bias",
    }
    qualified = "type:torch.nn.modules.conv.Conv2d@head.**"
    assert set(_decided(model, Rule(qualified, "zeros"))) == {"head.0.weight", "head.0.bias"}
    assert module_matches("type:_ConvNd@encoder.**", ["encoder.0"], model.encoder[0])
    assert not module_matches("type:Conv2d@encoder.**", ["head.0"], model.head[0])


def test_subtree_kaiming_fails_on_batchnorm_where_type_inside_subtree_does_not():
    model = Net()
    tree = build_tree(model)
    index = ModelIndex(tree)
    subtree = [p.name for p in covered_params(index, "encoder.**", "*")]
    assert "encoder.1.weight" in subtree
    within = [p.name for p in covered_params(index, "type:Conv2d@encoder.**", "*")]
    assert within == ["encoder.0.weight", "encoder.2.weight"]
    # the coverage and resolution agree
    assert set(within) == set(_decided(model, Rule("type:Conv2d@encoder.**", "kaiming_normal")))


def test_a_tied_head_covers_the_shared_tensor_as_resolution_does():
    loaded = load_model(f"{MODELS}/hf.py:gpt2_lm")
    tree = traced_tree(loaded)
    index = ModelIndex(tree)
    assert index.own_params("lm_head") == []
    assert [(local, p.name) for local, p in index.tied_here("lm_head")] == [
        ("weight", "transformer.wte.weight")
    ]
    for select, params in (("lm_head", "*"), ("lm_head", "weight"), ("type:Linear", "*")):
        covered = [p.name for p in covered_params(index, select, params)]
        decided = resolve_plan(
            Plan(rules=(Rule(select, "normal", params=params),)), loaded.model, tree
        ).decided_by
        assert covered == list(decided) == ["transformer.wte.weight"], select
    assert covered_params(index, "lm_head", "bias") == []
    # a subtree holding both names counts the tensor once
    both = [p.name for p in covered_params(index, "**", "*") if p.name == "transformer.wte.weight"]
    assert both == ["transformer.wte.weight"]
