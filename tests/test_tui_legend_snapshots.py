"""Snapshots of the compare screen (``c``) at 80x24 and 120x40 and of the ``?`` overlay at
80x24, each with its own key bar on the bottom line.

Regenerate after a deliberate change with
``pytest tests/test_tui_legend_snapshots.py --snapshot-update`` and look at the report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot import idle, wait_for
from test_tui_rules import PLAN
from textual.widgets import Input

from inittui.core.plan import parse_plan
from inittui.tui.app import InitApp
from inittui.tui.screens.compare import CompareScreen
from inittui.tui.screens.dialogs import PathScreen
from inittui.tui.screens.overlay import KeysOverlay

ROOT = Path(__file__).resolve().parent.parent
MLP = "sample_models/mlp.py:MLP"  # relative: the header shows it
SIZES = [(80, 24), (120, 40)]


async def _with_plan(pilot) -> None:
    app = pilot.app
    await idle(pilot)
    app.resolve_and_commit(parse_plan(PLAN), "the test's plan")
    await idle(pilot)


async def _settle(pilot) -> None:
    await idle(pilot)
    await pilot.pause()
    pilot.app.clear_notifications()
    # the status line under the dialog: idle (no progress bar, "? keys" shown), as on a calm
    # machine; under load the last job's bar could still be up at the capture
    bar = pilot.app.query_one("#progress")
    await wait_for(pilot, lambda: not bar.display and not pilot.app.running)
    await pilot.pause(0.2)
    await idle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_compare_screen(snap_compare, size, monkeypatch):
    monkeypatch.chdir(ROOT)

    async def run_before(pilot):
        app = pilot.app
        await _with_plan(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        field = app.screen.query_one("#path", Input)
        field.value = "preset:torch-default"
        field.cursor_blink = False
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), timeout=60)
        await pilot.press("p")  # both sides' per-layer preview under the table
        table = app.screen.query_one("#compare-preview")
        await wait_for(pilot, lambda: table.row_count > 0, timeout=60)
        await _settle(pilot)

    assert snap_compare(InitApp(MLP), terminal_size=size, run_before=run_before)


def test_keys_overlay(snap_compare, monkeypatch):
    monkeypatch.chdir(ROOT)

    async def run_before(pilot):
        app = pilot.app
        await _with_plan(pilot)
        app.tree_widget.reveal("layers.0")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysOverlay))
        await _settle(pilot)

    assert snap_compare(InitApp(MLP), terminal_size=(80, 24), run_before=run_before)
