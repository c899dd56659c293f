"""Snapshots of the rules pane (``r``) at 80x24 and 120x40: counts, the unused mark, an
expression as written, a split.

Regenerate after a deliberate change with
``pytest tests/test_tui_rules_snapshots.py --snapshot-update`` and look at the report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot import idle
from test_tui_rules import PLAN

from inittui.core.plan import parse_plan
from inittui.tui.app import InitApp

ROOT = Path(__file__).resolve().parent.parent
MLP = "sample_models/mlp.py:MLP"
SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rules_pane(snap_compare, size, monkeypatch):
    monkeypatch.chdir(ROOT)

    async def run_before(pilot):
        app = pilot.app
        await idle(pilot)
        app.resolve_and_commit(parse_plan(PLAN), "the test's plan")
        await idle(pilot)
        await pilot.press("r", "j")
        await idle(pilot)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(InitApp(MLP), terminal_size=size, run_before=run_before)
