"""Bad input, ``type:CLASS@PATH`` selectors (a class inside a path selector): a class must
come before ``@`` and a path selector after it. The rows follow ``tests/test_bad_input.py``
(exit 2, one ``error:`` line, nothing on stdout, the folder untouched)."""

from __future__ import annotations

import pytest
from test_bad_input import MLP, C, Case, plan, run_bad_input


def plan_case(name: str, select: str, *, fragment: str) -> object:
    return C(
        name,
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        "--json",
        fragment=fragment,
        files={"p.toml": plan(f'select = "{select}"\nscheme = "zeros"')},
    )


CASES = [
    plan_case(
        "type-at-no-path",
        "type:Linear@",
        fragment="must name a path after @, e.g. type:Linear@encoder.**",
    ),
    plan_case(
        "type-at-no-class",
        "type:@0.**",
        fragment="must name a class, e.g. type:Linear or type:Linear@encoder.**",
    ),
    plan_case(
        "type-at-type",
        "type:Linear@type:ReLU",
        fragment="must name a path after @",
    ),
    plan_case("type-at-bad-glob", "type:Linear@0.[", fragment="rule 1 (select 'type:Linear@0.["),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_select(case: Case, cli, tmp_path, monkeypatch):
    run_bad_input(case, cli, tmp_path, monkeypatch)
