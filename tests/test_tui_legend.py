"""Pilot tests of the ``?`` overlay (the tree markers and the keys that matter where the
focus is), F1's help screen, and the key bar every dialog shows on the bottom line."""

from __future__ import annotations

import html
import importlib
import inspect
import io
import pkgutil
import re
from pathlib import Path

import pytest
from pilot import idle, plain, wait_for
from rich.console import Console
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input

import inittui.tui.screens as screens_package
from inittui.core.plan import parse_plan
from inittui.tui.app import InitApp
from inittui.tui.keys import MAIN_KEYS, TREE_KEYS, overlay_sections
from inittui.tui.legend import TREE_LEGEND
from inittui.tui.screens.assign import AssignScreen
from inittui.tui.screens.compare import CompareScreen
from inittui.tui.screens.dialogs import ConfirmScreen, DeviceScreen, HelpScreen, PathScreen
from inittui.tui.screens.export import ExportScreen
from inittui.tui.screens.inputs import InputsScreen
from inittui.tui.screens.overlay import KeysOverlay, sections_table
from inittui.tui.widgets.keybar import DialogKeys, KeyBar

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
SIZE = (80, 24)
PLAN = """version = 1
[[rule]]
select = "layers.0"
scheme = "zeros"
"""


def screen_lines(app) -> list[str]:
    """The screen as plain text, one string per row."""
    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        text = html.unescape(m.group(3)).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    return ["".join(t for _x, t in sorted(rows[y])) for y in sorted(rows)]


def overlay_text(app) -> str:
    """Everything the overlay holds (also the rows scrolled out of view), as drawn at the
    overlay's width."""
    console = Console(width=70, file=io.StringIO(), color_system=None)
    console.print(sections_table(app.screen.sections))
    return console.file.getvalue()


def bar_text(app) -> str:
    """The key bar of the screen on top (the dialog's own while a dialog is open)."""
    return plain(app.screen.query_one(KeyBar))


async def open_overlay(pilot) -> KeysOverlay:
    await pilot.press("question_mark")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, KeysOverlay))
    return pilot.app.screen


# --------------------------------------------------------------------------- the overlay


async def test_question_mark_opens_the_overlay_and_question_mark_closes_it():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await open_overlay(pilot)
        text = overlay_text(app)
        for marker, _meaning in TREE_LEGEND:  # the legend module's rows, not a copy
            assert marker in text
        assert "Tree markers" in text and "Here: module tree" in text
        assert "First / last line" in text  # the tree's own keys: the focus is there
        assert "F1 every key" in "\n".join(screen_lines(app))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not isinstance(app.screen, KeysOverlay))
        assert app.tree_widget.has_focus


@pytest.mark.parametrize("key", ["escape", "q"])
async def test_escape_and_q_close_the_overlay_and_q_does_not_quit(key):
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        # an unsaved plan: a q that reached the app would ask "Quit without saving?"
        app.resolve_and_commit(parse_plan(PLAN), "the test's plan")
        await idle(pilot)
        assert app.dirty
        await open_overlay(pilot)
        await pilot.press(key)
        await wait_for(pilot, lambda: not isinstance(app.screen, KeysOverlay))
        await pilot.pause(0.1)
        assert app.is_running and app.return_code is None
        assert len(app.screen_stack) == 1 and not isinstance(app.screen, ConfirmScreen)


async def test_overlay_scroll_keys_at_80x24():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await open_overlay(pilot)
        scroll = app.screen.query_one("#overlay-scroll")
        assert scroll.max_scroll_y > 3  # the overlay scrolls at 80x24: all of it is there
        region = app.screen.query_one(".keys-overlay").region
        assert region.width <= 80 and region.bottom <= 23  # the bottom line is the key bar
        assert scroll.scroll_y == 0
        await pilot.press("j", "j", "j")
        assert scroll.scroll_y == 3
        await pilot.press("k")
        assert scroll.scroll_y == 2
        await pilot.press("G")
        assert scroll.scroll_y == scroll.max_scroll_y
        await pilot.press("g")
        assert scroll.scroll_y == 0
        await pilot.press("end")
        assert scroll.scroll_y == scroll.max_scroll_y
        await pilot.press("home")
        assert scroll.scroll_y == 0
        bar = bar_text(app)
        assert "?/esc/q Close" in bar and "j Down" in bar and "G/end Bottom" in bar


async def test_overlay_follows_the_focus_and_what_matters():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await open_overlay(pilot)
        text = overlay_text(app)
        assert "Clear the rules set on the selected node" not in text  # x: no rule here
        assert "Undo the last plan change" not in text  # u: nothing to undo
        await pilot.press("escape")
        app.tree_widget.reveal("layers.0")
        app.resolve_and_commit(parse_plan(PLAN), "the test's plan")
        await idle(pilot)
        await pilot.press("r")  # the rules pane takes the focus
        await wait_for(pilot, lambda: app.query_one("#rules").has_focus)
        await open_overlay(pilot)
        text = overlay_text(app)
        assert "Here: rules pane" in text and "Move the rule down" in text
        assert "Here: module tree" not in text
        assert "Undo the last plan change" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, KeysOverlay))
        await pilot.press("escape")  # hides the rules pane, the tree has the focus again
        await pilot.press("p")
        await idle(pilot)
        app.query_one("#preview").focus()
        await pilot.pause()
        await open_overlay(pilot)
        text = overlay_text(app)
        assert "Here: preview table" in text and "Next / previous flagged layer" in text


def test_overlay_sections_use_the_key_bar_priorities():
    everything = overlay_sections("tree", lambda when: True)
    titles = [title for title, _ in everything]
    assert titles == ["Here: module tree", "Tree markers", "Keys that matter now"]
    assert everything[0][1] == list(TREE_KEYS) and everything[1][1] == list(TREE_LEGEND)
    main = [what for _key, what in everything[2][1]]
    shown = sorted(
        (k for k in MAIN_KEYS if k.show and k.action != "legend"), key=lambda k: k.priority
    )
    assert main[: len(shown)] == [key.help for key in shown]  # the key bar's order
    assert not any("where the focus is" in what for what in main)  # not ? itself
    nothing = overlay_sections(None, lambda when: False)
    assert [title for title, _ in nothing] == ["Tree markers", "Keys that matter now"]
    helps = {what for _key, what in nothing[1][1]}
    for key in MAIN_KEYS:
        if key.when is not None:
            assert key.help not in helps


async def test_question_mark_while_typing_a_filter_is_filter_text():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("slash", "l", "question_mark")
        await pilot.pause()
        assert not isinstance(app.screen, KeysOverlay)
        assert app.tree_widget.filter_text == "l?"


async def test_f1_opens_help_and_the_overlay_leads_there():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "esc/q/f1/? Close" in bar_text(app)
        await pilot.press("f1")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await open_overlay(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert len(app.screen_stack) == 2  # the overlay made way for help
        await pilot.press("q")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        assert app.is_running


# --------------------------------------------------------------------------- dialog keys


def modal_screens() -> list[type]:
    classes = []
    for info in pkgutil.iter_modules(screens_package.__path__):
        module = importlib.import_module(f"inittui.tui.screens.{info.name}")
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ModalScreen) and cls.__module__ == module.__name__:
                classes.append(cls)
    return classes


def test_every_dialog_has_a_key_bar_and_shown_described_keys():
    classes = modal_screens()
    assert {AssignScreen, ExportScreen, InputsScreen, CompareScreen, ConfirmScreen} <= set(classes)
    for cls in classes:
        assert issubclass(cls, DialogKeys), cls
        bindings = list(Binding.make_bindings(cls.BINDINGS))
        shown = [b for b in bindings if b.show]
        assert shown, f"{cls.__name__} shows no key"
        assert all(b.description for b in bindings), cls
        assert any(b.key == "escape" for b in shown), f"{cls.__name__}: esc is not shown"


async def test_assign_dialog_key_bar_at_80x24():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        app.tree_widget.reveal("layers.0")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
        await pilot.pause()
        bar = bar_text(app)
        assert bar.startswith("⏎/^s Assign ")  # the Input has the focus: its enter assigns
        assert "tab Next field" in bar and "esc Cancel" in bar
        assert screen_lines(app)[-1].rstrip() == bar.rstrip()  # the bottom line, in full
        await pilot.press("tab")  # another field: the same keys
        await pilot.pause()
        assert bar_text(app).startswith("⏎/^s Assign ")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        bar = plain(app.query_one("#keys", KeyBar))
        assert "a assign" in bar  # the main bar again
        await pilot.press("a")  # the kept dialog, opened again, shows its keys again
        await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
        await pilot.pause()
        assert bar_text(app).startswith("⏎/^s Assign ")


async def test_export_inputs_confirm_and_path_dialog_key_bars():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        await pilot.pause()
        bar = bar_text(app)
        for part in ("⏎/^s Export", "^y Copy script", "tab Next field", "esc Cancel"):
            assert part in bar
        assert screen_lines(app)[-1].rstrip() == bar.rstrip()
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, InputsScreen))
        await pilot.pause()
        bar = bar_text(app)
        assert "⏎/^s Use" in bar and "tab Next field" in bar and "esc Cancel" in bar
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        await pilot.pause()
        assert bar_text(app).startswith("⏎ OK esc Cancel")
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen))
        await pilot.pause()
        assert bar_text(app).startswith("⏎ Use device esc Cancel")
        await pilot.press("enter")  # the key the bar shows: the device (cpu, unchanged)
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        app.resolve_and_commit(parse_plan(PLAN), "the test's plan")
        await idle(pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert bar_text(app).startswith("y Yes n/esc No")
        await pilot.press("n")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)


async def test_compare_dialog_key_bar():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        app.screen.query_one("#path", Input).value = "preset:torch-default"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), timeout=60)
        await pilot.pause()
        bar = bar_text(app)
        assert bar.startswith("p Preview both esc/q Close")
        assert screen_lines(app)[-1].rstrip() == bar.rstrip()
        await pilot.press("q")  # q closes compare, it does not quit
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        assert app.is_running
