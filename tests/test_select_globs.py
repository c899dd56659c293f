"""The select and params globs: linear-time matching that agrees with the old regex
translation (kept here as the oracle), and plans whose resolution is linear in rules."""

from __future__ import annotations

import fnmatch
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.plan import Plan, Rule, resolve_plan
from inittui.core.plan.globs import compile_name_glob, compile_select_glob
from inittui.core.plan.select import RuleIndex, compile_select
from inittui.core.tree import build_tree


def old_compile_select(select: str) -> re.Pattern[str]:
    """The regex translation select globs had before the automaton (the oracle)."""
    out = []
    i = 0
    while i < len(select):
        c = select[i]
        if select.startswith(".**", i):
            out.append(r"(?:\..*)?")
            i += 3
        elif select.startswith("**", i):
            out.append(r".*")
            i += 2
        elif c == "*":
            out.append(r"[^.]*")
            i += 1
        elif c == "?":
            out.append(r"[^.]")
            i += 1
        elif c == "[":
            end = select.find("]", i)
            assert end >= 0
            out.append(select[i : end + 1].replace("[!", "[^"))
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


ALPHABET = "ab.\n_0"
CLASSES = st.sampled_from(["[ab]", "[!a]", "[a-c]", "[.]", "[!.]", "[0-9_]", "[b]"])
PIECES = st.one_of(
    st.sampled_from(["*", "**", ".**", "?", "a", "b", ".", "_", "0", "\n", "x"]), CLASSES
)
PATTERNS = st.lists(PIECES, max_size=8).map("".join)
PATHS = st.text(alphabet=ALPHABET, max_size=14)


@settings(max_examples=600, deadline=None)
@given(PATTERNS, PATHS)
def test_select_glob_agrees_with_the_old_regex(pattern, path):
    expected = old_compile_select(pattern).match(path) is not None
    assert compile_select_glob(pattern).match(path) == expected


@settings(max_examples=200, deadline=None)
@given(PATTERNS, st.lists(PATHS, min_size=1, max_size=4))
def test_compile_select_matches_like_the_old_regex_on_any_of_several_paths(pattern, paths):
    expected = any(old_compile_select(pattern).match(p) for p in paths)
    glob = compile_select(pattern)
    assert glob is not None
    assert any(glob.match(p) for p in paths) == expected


NAME_PIECES = st.one_of(
    st.sampled_from(["*", "?", "a", "b", ".", "[", "]", "!", "-", "\n", "[!", "[]"]),
    st.sampled_from(["[ab]", "[!a]", "[a-c]", "[]a]", "[!]]", "[b-a]", "[-a]"]),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(NAME_PIECES, max_size=8).map("".join), st.text(alphabet="ab.\n]![-", max_size=12))
def test_params_glob_agrees_with_fnmatch(pattern, name):
    assert compile_name_glob(pattern).match(name) == fnmatch.fnmatchcase(name, pattern)


@pytest.mark.timeout(10)
def test_a_glob_that_would_backtrack_matches_at_once():
    start = time.perf_counter()
    assert not compile_select_glob("*a*a*a*a*a*a*a*a*b").match("a" * 60)
    assert not compile_select_glob("**a**a**a**a**a**a**a**a**b").match("a." * 30)
    assert not compile_name_glob("*a*a*a*a*a*a*a*a*b").match("a" * 200)
    assert time.perf_counter() - start < 1.0


def test_an_unclosed_class_is_one_user_error():
    with pytest.raises(InittuiError, match=r"rule 1: unclosed '\['"):
        compile_select("enc[oder", "rule 1")
    with pytest.raises(InittuiError, match="bad class"):
        compile_select("enc[z-a]", "rule 1")


class Twice(nn.Module):
    """One Linear under two paths, and a tied weight under two names."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.b = self.a
        self.c = nn.Linear(2, 2, bias=False)
        self.d = nn.Linear(2, 2, bias=False)
        self.d.weight = self.c.weight


def test_the_index_answers_as_the_rules_would_one_by_one():
    rules = [
        Rule(select="type:Linear", scheme="zeros"),
        Rule(select="b", params="weight", scheme="ones"),
        Rule(select="*", params="bias", scheme="ones"),
        Rule(select="type:torch.nn.modules.module.Module", params="w*", scheme="zeros"),
        Rule(select="d", params="weight", scheme="ones"),
        Rule(select="[!c]", params="[bw]*", scheme="zeros"),
    ]
    model = Twice()
    index = RuleIndex(rules)
    assert index.module_rules(model.a, ["a", "b"]) == (0, 1, 2, 3, 5)
    assert index.site_rules("bias", model.a, ["a", "b"]) == [0, 2, 5]
    assert index.site_rules("weight", model.c, ["c"]) == [0, 3]
    resolved = resolve_plan(Plan(rules=tuple(rules)), model, build_tree(model))
    assert resolved.decided_by == {"a.weight": 5, "a.bias": 5, "c.weight": 5}
    assert resolved.step_for("b.weight") is resolved.step_for("a.weight")
    assert resolved.step_for("d.weight").rule_index == 5  # via d (c's last rule is 3)


def _lsuv_like(layers: int) -> tuple[nn.Module, Plan]:
    model = nn.Sequential(*(nn.Linear(1, 1, bias=False) for _ in range(layers)))
    rules = tuple(Rule(select=str(i), scheme="ones", scale=2.0) for i in range(layers))
    return model, Plan(rules=(Rule(select="type:Linear", scheme="zeros"), *rules))


@pytest.mark.timeout(60)
def test_one_exact_rule_per_layer_resolves_in_linear_time():
    def seconds(layers: int) -> float:
        model, plan = _lsuv_like(layers)
        tree = build_tree(model)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            resolved = resolve_plan(plan, model, tree)
            best = min(best, time.perf_counter() - start)
        assert resolved.decided_by[f"{layers - 1}.weight"] == layers
        return best

    small, large = seconds(200), seconds(2000)
    assert large < 40 * small  # quadratic would be ~100 (the index makes it ~10)
