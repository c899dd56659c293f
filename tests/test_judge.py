"""The assign dialog's verdict and expected std are the resolver's (issue 10).

Every row of the scheme table x every parameter kind of the sample models x a few argument
sets (scale, per_gate, forget_bias, values a float16 tensor cannot hold): the verdict the
dialog gets (:meth:`Coverage.judge`, i.e. :func:`judge_rule` on the node's parameters)
equals what :func:`resolve_plan` says, word for word, and the expected std it shows for
every parameter equals ``plan --json``'s (:func:`plan_report`).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from sample_models_loader import load_sample

from inittui.core.errors import InittuiError
from inittui.core.plan import Plan, Rule, judge_rule, resolve_plan
from inittui.core.schemes import ROWS
from inittui.core.summary import plan_report
from inittui.core.tree import build_tree
from inittui.tui.session import ModelIndex

SAMPLES = [
    ("mlp.py", "MLP", {}),
    ("convnet.py", "ConvNet", {}),
    ("lstm_lm.py", "LSTMLanguageModel", {"vocab_size": 50, "embed_dim": 8, "hidden_size": 8}),
    ("tiny_gpt.py", "TinyGPT", {}),
    ("resnet_tiny.py", "TinyResNet", {}),
    ("gru_tagger.py", "GRUTagger", {}),
]


def _arg_sets(row) -> list[dict]:
    base = row.sample_args()
    sets = [
        {"args": base},
        {"args": base, "scale": -0.5},
        {"args": base, "per_gate": True},
        {"args": base, "forget_bias": 1.0},
        {"args": base, "per_gate": True, "forget_bias": 2.0, "scale": 0.25},
    ]
    extreme = {
        "uniform": {"a": -1e5, "b": 1e5},
        "constant": {"val": 1e6},
        "trunc_normal": {"mean": 0.0, "std": 1.0, "a": 60.0, "b": 70.0},
        "normal": {"mean": 0.0, "std": 1e6},
    }.get(row.name)
    if extreme is not None:
        sets.append({"args": extreme})
    return sets


def _kinds(tree) -> list[tuple[str, str]]:
    """One module per type, with ``*``, each of its own parameter names and each name's
    prefix glob (``bias*``); then the whole model (``**``) with every such glob."""
    seen, out, globs = set(), [], {"*"}
    for module in tree.modules:
        if module.param_names and module.type not in seen:
            seen.add(module.type)
            locals_ = [n.rsplit(".", 1)[-1] for n in module.param_names]
            own = ["*", *locals_, *sorted({f"{n.split('_')[0]}*" for n in locals_})]
            out.extend((module.path, glob) for glob in dict.fromkeys(own))
            globs.update(own)
    out.extend(("**", glob) for glob in sorted(globs))
    return out


def _resolved_verdict(rule: Rule, model, tree, loaded):
    try:
        resolved = resolve_plan(Plan(rules=(rule,)), model, tree)
    except InittuiError as exc:
        return str(exc), None
    report = plan_report(loaded, tree, resolved)
    return None, {p["name"]: p.get("expected_std") for p in report["parameters"]}


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or a == b


def _check_model(model) -> int:
    tree = build_tree(model)
    index = ModelIndex(tree)
    loaded = SimpleNamespace(target="t", model_class=type(model).__name__)
    checked = 0
    for path, glob in _kinds(tree):
        coverage = index.covered(path, glob)
        for row in ROWS.values():
            for extra in _arg_sets(row):
                rule = Rule(path, row.name, params=glob, **extra)
                verdict = coverage.judge(rule, model)  # what the dialog asks
                reason, stds = _resolved_verdict(rule, model, tree, loaded)
                assert verdict.reason == reason, (rule, verdict.reason, reason)
                assert verdict.ok == (reason is None)
                if verdict.ok:
                    assert stds is not None
                    for param in coverage:
                        step = verdict.step_for(param.name)
                        shown = None if step is None or step.expected is None else step.expected.std
                        assert _same(shown, stds[param.name]), (rule, param.name, shown)
                checked += 1
    return checked


@pytest.mark.parametrize(("file", "name", "kwargs"), SAMPLES, ids=[s[1] for s in SAMPLES])
def test_dialog_verdict_and_std_are_the_resolvers(file, name, kwargs):
    assert _check_model(load_sample(file, name, **kwargs)) > 100


@pytest.mark.parametrize(("file", "name", "kwargs"), SAMPLES[:3], ids=[s[1] for s in SAMPLES[:3]])
def test_float16_models_agree_too(file, name, kwargs):
    assert _check_model(load_sample(file, name, **kwargs).half()) > 100


def test_float16_uniform_out_of_range_is_refused_by_the_judge():
    """The case the issue measured: the dialog accepted it, resolve refused it."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).half()
    tree = build_tree(model)
    verdict = judge_rule(Rule("0", "uniform", args={"a": -1e5, "b": 1e5}), model, tree)
    assert not verdict.ok and "does not fit in float16" in verdict.reason


def test_forget_bias_is_in_the_expected_std():
    """zeros per gate with forget_bias 1 on bias_ih: a quarter of ones, std sqrt(3)/4."""
    model = torch.nn.LSTM(3, 5)
    tree = build_tree(model)
    rule = Rule("", "zeros", params="bias*", per_gate=True, forget_bias=1.0)
    verdict = judge_rule(rule, model, tree)
    ih, hh = verdict.step_for("bias_ih_l0"), verdict.step_for("bias_hh_l0")
    assert ih.expected.std == pytest.approx(math.sqrt(3) / 4)
    assert ih.expected.mean == pytest.approx(0.25)
    assert hh.expected.std == 0.0
    # and the values the step produces have that std
    from inittui.core.apply import apply_plan

    apply_plan(model, resolve_plan(Plan(rules=(rule,)), model, tree))
    assert model.bias_ih_l0.detach().std(unbiased=False).item() == pytest.approx(ih.expected.std)


def test_judge_stands_one_parameter_for_its_kind():
    model = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(50)])
    tree = build_tree(model)
    verdict = judge_rule(Rule("**", "kaiming_normal", params="weight"), model, tree)
    assert verdict.ok and len(verdict.params) == 1 and len(verdict.params[0].members) == 50


def test_default_groups_by_what_it_resolves_to():
    """Linear biases of the same shape get different defaults from different fan_in."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(9, 3))
    tree = build_tree(model)
    verdict = judge_rule(Rule("**", "default", params="bias"), model, tree)
    stds = [verdict.step_for(n).expected.std for n in ("0.bias", "1.bias")]
    assert stds[0] == pytest.approx(2 / math.sqrt(12) / 2) and stds[0] != stds[1]
