"""Pilot tests of the rules pane (``r``), compare (``c``), export marking the plan saved and
keeping its paths, undo of open restoring the file, and the key bar at 80 columns."""

from __future__ import annotations

from pathlib import Path

from pilot import idle, plain, wait_for
from textual.widgets import Checkbox, DataTable, Input, Static

from inittui.core.diff import diff_preview
from inittui.core.plan import Plan, Rule, parse_plan, plan_to_toml
from inittui.tui.app import InitApp
from inittui.tui.screens.assign import AssignScreen
from inittui.tui.screens.compare import CompareScreen
from inittui.tui.screens.dialogs import ConfirmScreen, PathScreen
from inittui.tui.screens.export import ExportScreen
from inittui.tui.widgets.rules_pane import UNUSED, RulesPane, moved_rule

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
SIZE = (80, 24)

PLAN = """version = 1
[[rule]]
select = "type:Linear"
params = "bias"
scheme = "zeros"

[[rule]]
select = "up"
scheme = "ones"

[[rule]]
select = "layers.0"
params = "weight"
scheme = "normal"
std = "0.02 / sqrt(2)"
split = 2
"""


def pane_lines(app) -> list[str]:
    pane = app.query_one("#rules", RulesPane)
    return [pane.get_option_at_index(i).prompt.plain for i in range(pane.option_count)]


async def open_with_plan(pilot, text: str = PLAN) -> None:
    app = pilot.app
    await idle(pilot)
    app.resolve_and_commit(parse_plan(text), "the test's plan")
    await idle(pilot)


async def test_r_lists_rules_with_counts_arguments_and_the_unused_mark():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        pane = app.query_one("#rules", RulesPane)
        assert not pane.display
        await pilot.press("r")
        await pilot.pause()
        assert pane.display and pane.has_focus and not app.query_one("#detail-pane").display
        first, unused, third = (" ".join(line.split()) for line in pane_lines(app))
        assert first.startswith("1 type:Linear [bias] 9 params") and "zeros" in first
        assert unused.startswith("2 up 0 params (decides nothing)") and UNUSED in unused
        assert "normal mean=0.0, std='0.02 / sqrt(2)', split 2" in third and "1 param" in third
        assert "decide nothing" in str(pane.border_title)
        await pilot.press("r")  # r again hides it; the detail comes back
        await pilot.pause()
        assert not pane.display and app.query_one("#detail-pane").display


async def test_move_and_remove_rules_are_undoable():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        original = app.session.plan.rules
        await pilot.press("r")
        await pilot.pause()
        pane = app.query_one("#rules", RulesPane)
        assert pane.rule_index == 0
        await pilot.press("J")  # rule 1 down: it is now rule 2, the cursor follows it
        await idle(pilot)
        assert [r.select for r in app.session.plan.rules] == ["up", "type:Linear", "layers.0"]
        assert pane.rule_index == 1
        await pilot.press("K")
        await idle(pilot)
        assert app.session.plan.rules == original
        await pilot.press("j", "delete")  # remove "up"
        await idle(pilot)
        assert [r.select for r in app.session.plan.rules] == ["type:Linear", "layers.0"]
        assert len(pane_lines(app)) == 2
        await pilot.press("u")
        await pilot.pause()
        assert app.session.plan.rules == original and len(pane_lines(app)) == 3
        await pilot.press("U")
        await pilot.pause()
        assert len(app.session.plan.rules) == 2
        await pilot.press("u", "u", "u")  # the delete, K and J undone
        await pilot.pause()
        assert [r.select for r in app.session.plan.rules] == [r.select for r in original]
        await pilot.press("u")
        await pilot.pause()
        assert app.session.plan.rules == ()
        assert "no rules yet" in pane_lines(app)[0]


def test_moved_rule_keeps_every_rule_and_refuses_the_ends():
    plan = Plan((Rule("a", "zeros"), Rule("b", "ones"), Rule("c", "zeros")))
    assert [r.select for r in moved_rule(plan, 0, 1).rules] == ["b", "a", "c"]
    assert [r.select for r in moved_rule(plan, 2, -1).rules] == ["a", "c", "b"]
    assert moved_rule(plan, 0, -1) is None and moved_rule(plan, 2, 1) is None


async def test_enter_opens_the_assign_dialog_on_the_rules_node():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("j", "j", "enter")  # rule 3: select "layers.0"
        await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
        assert app.screen.path == "layers.0"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        assert app.query_one("#rules", RulesPane).has_focus


async def test_compare_with_a_preset_shows_the_per_parameter_table():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        field = app.screen.query_one("#path", Input)
        field.value = "nonsense"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "cannot tell" in plain(app.screen.query_one("#path-error")))
        field.value = "preset:torch-default"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), timeout=60)
        table = app.screen.query_one("#compare-table", DataTable)
        names = [p.name for p in app.session.tree.parameters]
        assert table.row_count == len(names)
        assert [str(c.label) for c in table.columns.values()][:3] == ["parameter", "std A", "std B"]
        # the working plan zeroes every bias: the default init draws them, so they differ
        bias = table.get_row("layers.0.bias")
        assert "differs" in bias[-1].plain
        summary = plain(app.screen.query_one("#compare-summary", Static))
        assert summary.endswith("identical)") and "parameters differ" in summary
        # p: both sides' preview, per layer, side by side (as `inittui diff --preview`)
        await pilot.press("p")
        layers = app.screen.query_one("#compare-preview", DataTable)
        await wait_for(pilot, lambda: layers.row_count > 0, timeout=60)
        assert [str(c.label) for c in layers.columns.values()] == ["layer", "std A", "std B", "B/A"]
        expected = diff_preview(app.session.loaded, app.screen.result, {"seed": app.seed or 0})
        assert layers.row_count == len(expected["layers"])
        first = layers.get_row_at(0)
        assert first[0] == expected["layers"][0]["path"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen))
        await pilot.press("c")  # the dialog offers the last comparison again
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        assert app.screen.query_one("#path", Input).value == "preset:torch-default"


async def test_exporting_the_plan_marks_it_saved_and_explains_partial_plans(tmp_path):
    app = InitApp(MLP)
    target = tmp_path / "exported.toml"
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        assert app.dirty
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        screen = app.screen
        unplanned = len(app.session.tree.parameters) - len(app.session.resolved.decided_by)
        partial = plain(screen.query_one("#export-partial", Static))
        assert partial.startswith(f"{unplanned} parameter(s) no rule decides are stored with")
        for kind in ("script", "checkpoint"):
            screen.query_one(f"#use-{kind}", Checkbox).value = False
        screen.query_one("#use-plan", Checkbox).value = True
        screen.query_one("#path-plan", Input).value = str(target)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen))
        assert parse_plan(target.read_text()) == app.session.plan
        assert not app.dirty and app.plan_path == str(target)
        header = plain(app.query_one("#header", Static))
        assert "exported.toml saved" in header and "[+]" not in header
        await pilot.press("q")  # saved: q does not ask
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert app.return_value == 0


async def test_export_remembers_the_paths_of_the_session(tmp_path):
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        app.screen.query_one("#path-script", Input).value = str(tmp_path / "mine.py")
        app.screen.query_one("#use-checkpoint", Checkbox).value = False
        app.screen.query_one("#path-plan", Input).value = str(tmp_path / "mine.toml")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        screen = app.screen
        assert screen.query_one("#path-script", Input).value == str(tmp_path / "mine.py")
        assert screen.query_one("#path-plan", Input).value == str(tmp_path / "mine.toml")
        assert screen.query_one("#use-checkpoint", Checkbox).value is False


async def test_open_then_undo_names_the_previous_file(tmp_path):
    app = InitApp(MLP)
    first, other = tmp_path / "first.toml", tmp_path / "other.toml"
    other.write_text(plan_to_toml(Plan((Rule("type:Linear", "zeros", params="bias"),))))
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        assert app.write_plan(str(first), force=False)
        header = app.query_one("#header", Static)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        app.screen.query_one("#path", Input).value = str(other)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PathScreen))
        await idle(pilot)
        assert "other.toml" in plain(header)
        await pilot.press("u")
        await pilot.pause()
        assert app.plan_path == str(first) and not app.dirty
        assert "first.toml saved" in plain(header) and "other.toml" not in plain(header)
        await pilot.press("U")
        await pilot.pause()
        assert app.plan_path == str(other) and not app.dirty
        assert "other.toml saved" in plain(header)


async def test_key_bar_at_80_columns_keeps_the_keys_that_matter():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        bar = app.query_one("#keys", Static)
        start = plain(bar)
        assert "a assign" in start and "p preview" in start and "^p" in start
        assert "x clear" not in start and "u undo" not in start  # nothing to clear or undo
        app.resolve_and_commit(Plan((Rule("layers.0", "zeros"),)), "one")
        await idle(pilot)
        app.resolve_and_commit(Plan((Rule("layers.0", "zeros"), Rule("layers.2", "ones"))), "two")
        await idle(pilot)
        await pilot.press("u")  # undo and redo both matter now
        app.tree_widget.reveal("layers.0")
        await pilot.press("p")
        await idle(pilot)
        app.tree_widget.focus()
        await pilot.pause()
        shown = plain(bar)
        assert len(shown) <= SIZE[0]
        for key in ("a assign", "x clear", "u undo", "U redo", "b grad", "d dev", "o open"):
            assert key in shown, (key, shown)
        order = [shown.index(k) for k in ("a assign", "x clear", "p preview", "u undo")]
        assert order == sorted(order)  # priority order
        await pilot.press("r")  # the rules pane's own keys come first
        await pilot.pause()
        assert plain(bar).startswith("⏎ edit J down K up")


async def test_enter_edits_the_rule_in_place():
    """The rules pane's enter opens the dialog prefilled with the rule; confirming replaces
    that rule at its place (the plan keeps its length and order), and u undoes it."""
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await open_with_plan(pilot)
        before = app.session.plan
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("j", "j", "enter")  # rule 3: select "layers.0"
        await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
        assert app.screen.start.edit and app.screen.start.rule_index == 2
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        await wait_for(pilot, lambda: app.session.plan is not before)
        after = app.session.plan
        assert len(after.rules) == len(before.rules)
        assert [r.select for r in after.rules] == [r.select for r in before.rules]
        await pilot.press("u")
        await wait_for(pilot, lambda: app.session.plan == before)
