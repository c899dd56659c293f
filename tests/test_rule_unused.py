"""The ``rule_unused`` lint: a rule that decides no parameter of the model is named, in the
core (:func:`resolve_plan`) and in ``inittui plan`` (text and ``--json``)."""

from __future__ import annotations

from harness import SAMPLES
from torch import nn

from inittui.core.plan import parse_plan, resolve_plan
from inittui.core.plan.lints import rule_counts
from inittui.core.tree import build_tree

MLP = f"{SAMPLES}/mlp.py:MLP"


def resolve(model: nn.Module, text: str):
    plan = parse_plan("version = 1\n" + text)
    return resolve_plan(plan, model, build_tree(model))


def unused(resolved) -> list:
    return [lint for lint in resolved.lints if lint.kind == "rule_unused"]


RULE = '[[rule]]\nselect = "{select}"\nparams = "{params}"\nscheme = "zeros"\n'


def net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))


def test_a_path_no_module_has_is_a_warning_naming_the_rule():
    text = RULE.format(select="0", params="*") + RULE.format(select="up", params="*")
    resolved = resolve(net(), text)
    (lint,) = unused(resolved)
    assert lint.severity == "warning" and lint.param is None
    assert lint.message == (
        "rule 2 (select 'up') decides no parameter of this model: no module has the path 'up'"
    )
    assert rule_counts(resolved.decided_by, 2) == [2, 0]


def test_a_glob_type_or_params_that_found_nothing_is_a_note():
    text = (
        RULE.format(select="type:Conv2d", params="*")
        + RULE.format(select="2", params="bias")
        + RULE.format(select="*", params="weight")
    )
    lints = unused(resolve(net(), text))
    assert [lint.severity for lint in lints] == ["info", "info"]
    assert lints[0].message.startswith("rule 1 (select 'type:Conv2d') decides no parameter")
    assert lints[1].message.endswith("it selects none (params 'bias')")


def test_a_rule_later_rules_override_is_a_note_and_a_used_rule_is_silent():
    text = RULE.format(select="0", params="weight") + RULE.format(select="0", params="*")
    (lint,) = unused(resolve(net(), text))
    assert lint.severity == "info"
    assert lint.message.endswith("later rules decide every parameter it selects")
    assert not unused(resolve(net(), RULE.format(select="**", params="*")))
    keep = '[[rule]]\nselect = "0"\nscheme = "keep"\n'  # keep decides its parameters
    assert not unused(resolve(net(), keep))


def test_inittui_plan_prints_the_lint(cli, tmp_path):
    plan = tmp_path / "other.toml"
    plan.write_text("version = 1\n" + RULE.format(select="up", params="*"))
    result = cli("plan", MLP, "--plan", plan, "--json")
    assert result.code == 0, result.err
    lints = [lint for lint in result.json()["lints"] if lint["kind"] == "rule_unused"]
    assert lints == [
        {
            "kind": "rule_unused",
            "param": None,
            "severity": "warning",
            "message": "rule 1 (select 'up') decides no parameter of this model: "
            "no module has the path 'up'",
        }
    ]
    text = cli("plan", MLP, "--plan", plan)
    assert text.code == 0
    assert "warning: rule 1 (select 'up') decides no parameter" in " ".join(text.out.split())
