"""Bad input, the plan's ``draw_scheme``: only 1 (whole-tensor draws) or 2 (tile by tile,
the default). The rows follow ``tests/test_bad_input.py`` (same ``Case``, same assertions:
exit 2, one ``error:`` line, nothing on stdout, the folder untouched)."""

from __future__ import annotations

import pytest
from test_bad_input import ZOO, C, Case, plan, run_bad_input

RULE = 'select = "c1"\nparams = "bias"\nscheme = "zeros"'
WHAT = "draw_scheme must be 1 or 2, got"


def draw_case(name: str, value: str, fragment: str) -> object:
    return C(
        name,
        "plan",
        f"{ZOO}:Convs",
        "--plan",
        "{tmp}/p.toml",
        "--json",
        fragment=fragment,
        files={"p.toml": plan(RULE, head=f"version = 1\nseed = 0\ndraw_scheme = {value}\n")},
    )


CASES = [
    draw_case("draw-scheme-zero", "0", f"{WHAT} 0; leave it out for tile-by-tile draws"),
    draw_case("draw-scheme-three", "3", f"{WHAT} 3"),
    draw_case("draw-scheme-string", '"2"', f"{WHAT} '2'"),
    draw_case("draw-scheme-bool", "true", f"{WHAT} True"),
    draw_case("draw-scheme-float", "2.0", f"{WHAT} 2.0"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_draw_scheme(case: Case, cli, tmp_path, monkeypatch):
    run_bad_input(case, cli, tmp_path, monkeypatch)
