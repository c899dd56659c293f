"""Snapshots of the main screens at 80x24 and 120x40.

Regenerate after a deliberate change with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the report.
"""

from __future__ import annotations

import datetime
import html
import re
from pathlib import Path

import pytest
from pilot import idle, wait_for
from textual.widgets import Input

from inittui.core import codegen
from inittui.tui.app import InitApp
from inittui.tui.screens.assign import AssignScreen
from inittui.tui.screens.export import ExportScreen

ROOT = Path(__file__).resolve().parent.parent
MLP = "sample_models/mlp.py:MLP"
LSTM = "sample_models/lstm_lm.py:LSTMLanguageModel"
SIZES = [(80, 24), (120, 40)]


@pytest.fixture(autouse=True)
def _fixed_environment(monkeypatch):
    """Relative targets (the header shows them) and a fixed date in the script header."""
    monkeypatch.chdir(ROOT)

    class _FixedDate(datetime.date):
        @classmethod
        def today(cls):  # noqa: D102
            return cls(2025, 1, 1)

    class _Clock:
        date = _FixedDate

    monkeypatch.setattr(codegen, "_dt", _Clock)


async def _settle(pilot) -> None:
    app = pilot.app
    await idle(pilot)
    await pilot.pause()
    app.clear_notifications()
    for widget in app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


async def _assign(pilot, path: str, scheme: str, scope: str, params: str) -> None:
    app = pilot.app
    app.tree_widget.reveal(path)
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
    screen = app.screen
    screen.query_one(f"#scope-{scope}").value = True
    screen.query_one("#params", Input).value = params
    await pilot.pause()
    screen.choose(scheme)
    await pilot.pause()
    screen.action_confirm()
    await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
    await _settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare, size):
    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("j", "j")
        await _settle(pilot)

    assert snap_compare(InitApp(MLP), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_assign_dialog(snap_compare, size):
    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("j", "j", "a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AssignScreen))
        screen = pilot.app.screen
        screen.query_one("#params", Input).value = "weight"
        await pilot.pause()
        screen.choose("kaiming_normal")
        await _settle(pilot)

    assert snap_compare(InitApp(MLP), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_preview_with_plan(snap_compare, size):
    async def run_before(pilot):
        await _settle(pilot)
        await _assign(pilot, "layers.0", "kaiming_normal", "type", "weight")
        await _assign(pilot, "layers.0", "zeros", "type", "bias")
        pilot.app.tree_widget.reveal("layers.4")
        await pilot.press("p")
        await _settle(pilot)

    assert snap_compare(InitApp(MLP), terminal_size=size, run_before=run_before)


def test_lstm_assign_dialog(snap_compare):
    async def run_before(pilot):
        await _settle(pilot)
        pilot.app.tree_widget.reveal("lstm")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AssignScreen))
        screen = pilot.app.screen
        screen.query_one("#params", Input).value = "weight_hh*"
        await pilot.pause()
        screen.choose("orthogonal")
        await _settle(pilot)

    assert snap_compare(InitApp(LSTM), terminal_size=(80, 24), run_before=run_before)


def test_export_dialog(snap_compare):
    async def run_before(pilot):
        await _settle(pilot)
        await _assign(pilot, "layers.0", "kaiming_normal", "type", "weight")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ExportScreen))
        await _settle(pilot)

    assert snap_compare(InitApp(MLP), terminal_size=(80, 24), run_before=run_before)


def test_help_screen(snap_compare):
    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(InitApp(MLP), terminal_size=(80, 24), run_before=run_before)


async def test_load_error():
    """The load-error screen, checked by its visible text: its SVG snapshot hashed invisible
    style metadata that changed with the tests run before it in the same process."""
    app = InitApp("sample_models/missing.py:Net")
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        svg = app.export_screenshot()
        lines = html.unescape("".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg)))
        lines = lines.replace("\xa0", " ")
        assert "not loaded" in lines
        assert "could not open the model" in lines
        assert "sample_models/missing.py" in lines and "not found" in lines
        assert "q quits" in lines


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_preview_plot(snap_compare, size):
    async def run_before(pilot):
        await _settle(pilot)
        await _assign(pilot, "layers.0", "kaiming_normal", "type", "weight")
        await pilot.press("p")
        await _settle(pilot)
        pilot.app.query_one("#preview").focus()
        await pilot.press("v")
        await _settle(pilot)

    assert snap_compare(InitApp(MLP), terminal_size=size, run_before=run_before)
