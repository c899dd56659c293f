"""Pilot tests of the terminal UI: every flow, driven through the real app at 80x24."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from pilot import idle, plain, wait_for
from textual.command import CommandPalette
from textual.widgets import Checkbox, Input, OptionList, RadioButton, Static

from inittui.core.plan import Plan, Rule, plan_to_toml
from inittui.tui.app import InitApp
from inittui.tui.keys import KEYS_BY_ACTION
from inittui.tui.palette import palette_commands
from inittui.tui.screens.assign import AssignScreen
from inittui.tui.screens.dialogs import ConfirmScreen, DeviceScreen, HelpScreen, PathScreen
from inittui.tui.screens.export import ExportScreen
from inittui.tui.widgets.preview import PreviewTable

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
LSTM = str(ROOT / "sample_models" / "lstm_lm.py") + ":LSTMLanguageModel"
SIZE = (80, 24)


async def open_assign(pilot, path: str) -> AssignScreen:
    app = pilot.app
    assert app.tree_widget.reveal(path)
    await pilot.pause()
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
    return app.screen


async def confirm_assign(pilot) -> None:
    app = pilot.app
    app.screen.action_confirm()
    await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
    await idle(pilot)


async def assign(
    pilot, path: str, scheme: str, scope: str = "node", params: str = "*", **args: str
) -> None:
    screen = await open_assign(pilot, path)
    screen.query_one(f"#scope-{scope}", RadioButton).value = True
    screen.query_one("#params", Input).value = params
    await pilot.pause()
    screen.choose(scheme)
    await pilot.pause()
    for name, value in args.items():
        field = next(w for w in screen.query(".arg") if w.name == name and w.display)
        field.value = value
    await pilot.pause()
    await confirm_assign(pilot)


# --------------------------------------------------------------------------- opening


async def test_open_mlp_shows_tree_header_and_detail():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        header = plain(app.query_one("#header", Static))
        assert "mlp.py:MLP" in header and "MLP" in header and "33.9K params" in header
        assert "cpu" in header and "plan: new" in header
        tree = app.tree_widget
        assert set(tree.nodes) >= {"", "layers", "layers.0", "layers.16"}
        label = tree.nodes["layers.0"].label.plain
        assert label.startswith("0 Linear 4.2K")
        assert app.session.stats is not None
        # navigation: j/k and arrows move, enter/space collapse and expand
        await pilot.press("j", "j")
        assert tree.cursor_path == "layers.0"
        detail = plain(app.query_one("#detail", Static))
        assert "weight (64, 64)" in detail and "fan_in 64 fan_out 64" in detail
        assert "now  std" in detail
        await pilot.press("k", "down", "up")
        assert tree.cursor_path == "layers"
        await pilot.press("enter")
        assert not tree.nodes["layers"].is_expanded
        await pilot.press("space")
        assert tree.nodes["layers"].is_expanded
        await pilot.press("left")
        assert not tree.nodes["layers"].is_expanded
        await pilot.press("right", "l", "j")
        assert tree.cursor_path == "layers.0"


async def test_open_lstm_padding_and_recurrent_fields():
    app = InitApp(LSTM)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        assert {"embedding", "lstm", "drop", "decoder"} <= set(tree.nodes)
        assert tree.marker_for("embedding", False).plain == " i"  # padding row marker
        tree.reveal("embedding")
        await pilot.pause()
        assert "padding row 0 is kept at zero" in plain(app.query_one("#detail", Static))
        screen = await open_assign(pilot, "lstm")
        assert screen.query_one("#recurrent-row").display
        assert screen.query_one("#forget-bias").display
        screen.query_one("#params", Input).value = "weight_hh*"
        await pilot.pause()
        screen.query_one("#per-gate", Checkbox).value = True
        await pilot.pause()
        screen.choose("orthogonal")
        await pilot.pause()
        assert "weight_hh_l0 4×(128, 128): std" in plain(screen.query_one("#expected", Static))
        await confirm_assign(pilot)
        rule = app.session.plan.rules[-1]
        assert rule == Rule(
            "lstm", "orthogonal", params="weight_hh*", args={"gain": 1.0}, per_gate=True
        )
        screen = await open_assign(pilot, "lstm")
        screen.query_one("#params", Input).value = "bias*"
        await pilot.pause()
        screen.choose("zeros")
        screen.query_one("#forget-bias", Input).value = "1.0"
        await pilot.pause()
        await confirm_assign(pilot)
        assert app.session.plan.rules[-1].forget_bias == 1.0
        step = app.session.resolved.step_for("lstm.bias_ih_l0")
        assert step is not None and step.forget_block is not None
        screen = await open_assign(pilot, "embedding")
        assert "padding row is kept at zero" in plain(screen.query_one("#scheme-summary"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))


def dialog_state(screen: AssignScreen) -> dict:
    """Everything the assign dialog shows, as values."""
    from textual.widgets import Select

    options = screen.query_one("#schemes", OptionList)
    forms = [f for f in screen.query(".arg-form") if f.display]
    assert len(forms) == 1
    return {
        "title": screen.query_one(".assign-dialog").border_title,
        "scope": {b.id: b.value for b in screen.query(RadioButton)},
        "type label": str(screen.query_one("#scope-type", RadioButton).label),
        "fields": {
            w.id: w.value
            for w in screen.query("#params, #scale, #forget-bias, #per-gate")
            if isinstance(w, (Input, Checkbox))
        },
        "shown": {
            i: screen.query_one(f"#{i}").display
            for i in ("recurrent-row", "forget-bias", "forget-label")
        },
        "options": [
            str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
        ],
        "highlighted": options.highlighted,
        "form": forms[0].id,
        "args": {w.name: w.value for w in forms[0].query(".arg") if isinstance(w, (Input, Select))},
        "summary": plain(screen.query_one("#scheme-summary", Static)),
        "expected": plain(screen.query_one("#expected", Static)),
        "error": plain(screen.query_one("#assign-error", Static)),
        "focused": screen.focused.id if screen.focused else None,
    }


async def test_assign_dialog_is_reused_and_reopens_as_new():
    app = InitApp(LSTM)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        plan = Plan(rules=[Rule("decoder", "normal", params="weight", args={"std": 0.05})])
        app.resolve_and_commit(plan, "a rule on decoder")
        await idle(pilot)
        fresh = {}
        for path in ("lstm", "embedding", "decoder", ""):
            app.drop_assign_screen()  # a new dialog: what every later open must look like
            screen = await open_assign(pilot, path)
            await pilot.pause()
            fresh[path] = dialog_state(screen)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        assert fresh["decoder"]["form"] == "form-normal"
        assert fresh["decoder"]["args"]["std"] == "0.05"
        assert fresh["decoder"]["fields"]["params"] == "weight"
        reused = app.assign_screen
        for path in ("lstm", "decoder", "embedding", "lstm", "", "decoder"):
            screen = await open_assign(pilot, path)
            assert screen is reused
            await pilot.pause()
            assert dialog_state(screen) == fresh[path], path
            # Leave the dialog in another state: scope, params, scale, scheme, arguments.
            screen.query_one("#scope-subtree", RadioButton).value = True
            screen.query_one("#params", Input).value = "weight*"
            screen.query_one("#scale", Input).value = "oops"
            await pilot.pause()
            screen.choose("normal")
            await pilot.pause()
            next(w for w in screen.query(".arg") if w.name == "std" and w.display).value = "7"
            await pilot.pause()
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        # A reused dialog still assigns.
        await assign(pilot, "lstm", "zeros", params="bias*")
        assert app.session.plan.rules[-1] == Rule("lstm", "zeros", params="bias*")
        assert app.assign_screen is reused


async def test_kept_assign_dialog_follows_a_theme_change():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "layers.0")
        dark = screen.query_one("#schemes").background_colors
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        app.theme = "textual-light"
        await pilot.pause()
        again = await open_assign(pilot, "layers.0")
        assert again is screen
        await pilot.pause()
        kept = again.query_one("#schemes").background_colors
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        app.drop_assign_screen()
        fresh = (await open_assign(pilot, "layers.0")).query_one("#schemes").background_colors
        assert kept == fresh and kept != dark


async def test_load_error_shows_message_and_quits():
    app = InitApp("no/such/file.py:Net")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ready)
        error = app.query_one("#load-error", Static)
        assert error.display
        assert "model file 'no/such/file.py' not found" in plain(error)
        await pilot.press("a")  # no model: a warning, not a crash
        await pilot.pause()
        assert app.is_running
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


# --------------------------------------------------------------------------- tree


async def test_filter_shows_matches_with_ancestors_and_escape_clears():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        line = app.query_one("#filter", Static)
        assert "/ filter by name or type" in plain(line)
        await pilot.press("slash")
        assert tree.has_focus and tree.typing  # the tree keeps the focus and reads the keys
        await pilot.press(*"Linear")  # l and a are not expand / assign while typing
        await pilot.pause()
        assert not isinstance(app.screen, AssignScreen)
        assert tree.filter_count == 9
        assert set(tree.nodes) == {"", "layers"} | {f"layers.{i}" for i in range(0, 17, 2)}
        assert "9 match 'Linear'" in app.query_one("#left").border_title
        assert plain(line).startswith("/Linear ")
        await pilot.press("backspace", "backspace")  # "Line": still the 9 Linear layers
        assert tree.filter_query == "Line" and tree.filter_count == 9
        await pilot.press("down")  # arrows move through the matches while typing
        assert tree.typing and tree.cursor_path == "layers.2"
        await pilot.press("ctrl+u", *"relu", "enter")
        assert not tree.typing and tree.filter_query == "relu" and tree.filter_count == 8
        assert plain(line).startswith("/relu")
        await pilot.press("j")  # a command again
        assert tree.cursor_path == "layers.3"
        await pilot.press("slash", "x")  # / edits the filter in force
        assert tree.filter_query == "relux" and tree.filter_count == 0
        await pilot.press("escape")
        await pilot.pause()
        assert tree.filter_query == "" and not tree.typing
        assert "layers.1" in tree.nodes
        assert "/ filter by name or type" in plain(line)
        await pilot.click("#filter")  # clicking the line starts typing
        assert tree.typing


async def test_detail_follows_the_cursor_when_a_filter_moves_it():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        detail = app.query_one("#detail-pane")
        await pilot.press("slash", "0")
        assert tree.cursor_path == "layers.0" and "layers.0" in detail.border_title
        line = tree.cursor_line
        await pilot.press("backspace", "1")  # layers.1 takes the line layers.0 had
        assert tree.cursor_path == "layers.1" and tree.cursor_line == line
        assert detail.border_title.endswith("layers.1")
        assert plain(app.query_one("#detail", Static)).startswith("layers.1 ")


async def test_filter_reads_a_burst_of_keys_in_order():
    """Keys that arrive together (a fast typist, a paste, SSH) are read in order: the ones
    after ``/`` are text, the ones after ``enter`` / ``escape`` commands again."""
    from textual import events

    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget

        def burst(*keys: tuple[str, str | None]) -> None:
            for key, character in keys:
                event = events.Key(key, character)
                event.set_sender(app)
                app._driver.send_message(event)

        text = [(c, c) for c in "Linear"]
        burst(("slash", "/"), *text, ("enter", "\r"), ("j", "j"))
        await wait_for(pilot, lambda: tree.cursor_path == "layers.2")
        assert tree.filter_query == "Linear" and not tree.typing
        burst(("slash", "/"), ("backspace", None), ("escape", "\x1b"), ("j", "j"))
        await wait_for(pilot, lambda: not tree.filter_query and not tree.typing)
        await pilot.pause()
        assert not isinstance(app.screen, AssignScreen)
        assert tree.cursor_path == "layers.3"


async def test_key_bar_shows_bindings_and_filter_keys_and_clicks_press_keys():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        bar = app.query_one("#keys", Static)
        shown = plain(bar)
        for binding in app.BINDINGS:  # the keys that matter, by priority, short labels
            row = KEYS_BY_ACTION[binding.action]
            if binding.show and row.when is None and row.priority < 70:
                assert f"{app.get_key_display(binding)} {row.bar_label}" in shown
        assert "Clear filter" not in shown and "^p palette" in shown
        await pilot.press("slash")
        await pilot.pause()
        assert "esc Clear filter" in plain(bar)  # the keys of typing a filter
        await pilot.press("escape")
        await pilot.pause()
        assert plain(bar) == shown
        x = shown.index("d dev")  # clicking a key presses it
        await pilot.click("#keys", offset=(x + 1, 0))
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen))


# --------------------------------------------------------------------------- assign


async def test_assign_each_scope_builds_rules():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "kaiming_normal", "node", "weight", nonlinearity="relu")
        await assign(pilot, "layers", "zeros", "subtree", "bias")
        await assign(pilot, "layers.2", "xavier_uniform", "type", "weight", gain="0.5")
        rules = app.session.plan.rules
        assert rules == (
            Rule(
                "layers.0",
                "kaiming_normal",
                params="weight",
                args={"a": 0.0, "mode": "fan_in", "nonlinearity": "relu"},
            ),
            Rule("layers.**", "zeros", params="bias", args={}),
            Rule("type:Linear", "xavier_uniform", params="weight", args={"gain": 0.5}),
        )
        tree = app.tree_widget
        assert tree.nodes["layers.4"].label.plain == "4 Linear xavier_uniform+1·type 4.2K"
        assert tree.nodes["layers.0"].label.plain == "0 Linear xavier_uniform+1·type 4.2K"
        assert "zeros" in tree.nodes["layers"].label.plain
        await wait_for(pilot, lambda: app.session.planned_stats is not None)
        tree.reveal("layers.4")
        await pilot.pause()
        detail = plain(app.query_one("#detail", Static))
        assert "exp  std" in detail and "plan std" in detail
        assert "[+]" in plain(app.query_one("#header", Static))


async def test_default_scheme_on_root_subtree():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "", "default", "subtree")
        assert app.session.plan.rules == (Rule("**", "default"),)
        assert len(app.session.resolved.steps) == 18


async def test_invalid_argument_is_shown_inline_and_refused():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "layers.0")
        screen.choose("normal")
        await pilot.pause()
        field = next(w for w in screen.query(".arg") if w.name == "std" and w.display)
        field.value = "-1"
        await pilot.pause()
        error = plain(screen.query_one("#assign-error", Static))
        assert 'key "std" of scheme normal must be >= 0' in error
        assert field.has_class("-bad")
        screen.action_confirm()
        await pilot.pause()
        assert isinstance(app.screen, AssignScreen)
        field.value = "abc"
        await pilot.pause()
        assert "must be a number" in plain(screen.query_one("#assign-error", Static))
        # a scheme that cannot apply to a bias is listed with the reason and refused
        screen.choose("kaiming_normal")
        await pilot.pause()
        assert "does not apply" in plain(screen.query_one("#scheme-summary", Static))
        assert "set params to weight" in plain(screen.query_one("#assign-error", Static))
        options = screen.query_one("#schemes", OptionList)
        names = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert "✗ kaiming_normal" in names and "normal" in names
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
        assert app.session.plan.rules == ()


async def test_undo_redo_and_clear():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "zeros")
        await assign(pilot, "layers.2", "ones")
        assert len(app.session.plan.rules) == 2
        await pilot.press("u")
        assert [r.select for r in app.session.plan.rules] == ["layers.0"]
        await pilot.press("u")
        assert app.session.plan.rules == ()
        await pilot.press("u")  # nothing left: no change
        await pilot.press("U", "U")
        assert [r.select for r in app.session.plan.rules] == ["layers.0", "layers.2"]
        app.tree_widget.reveal("layers.0")
        await pilot.pause()
        await pilot.press("x")
        await idle(pilot)
        assert [r.select for r in app.session.plan.rules] == ["layers.2"]
        await pilot.press("u")
        assert len(app.session.plan.rules) == 2


# --------------------------------------------------------------------------- preview


async def test_preview_forward_backward_and_row_selects_tree():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "kaiming_normal", "type", "weight", nonlinearity="relu")
        await pilot.press("p")
        await idle(pilot)
        preview = app.session.preview
        assert preview is not None and preview.planned and not preview.backward
        assert len(preview.rows) == 17
        assert preview.rows[0].plan_std > preview.rows[0].now_std
        table = app.query_one("#preview", PreviewTable)
        assert table.row_count == 17
        assert "kaiming_normal" in app.tree_widget.nodes["layers.0"].label.plain
        table.focus()
        await pilot.press("j", "j")
        assert app.tree_widget.cursor_path == "layers.2"
        await pilot.press("enter")
        assert app.tree_widget.has_focus
        await pilot.press("b")
        await idle(pilot)
        assert app.session.preview.backward
        assert app.session.preview.rows[0].now_grad is not None
        assert "forward+backward" in app.query_one("#preview-pane").border_title


async def test_preview_error_keeps_session_alive():
    app = InitApp(MLP, input_shapes=["8,3"])  # wrong width for the first Linear
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("p")
        await idle(pilot)
        assert app.session.preview is None
        info = plain(app.query_one("#preview-info", Static))
        assert info.startswith("preview failed:")
        assert app.is_running


async def test_device_dialog_lists_devices_and_moves_model(monkeypatch):
    import inittui.core.loading as loading

    monkeypatch.setattr(loading, "available_devices", lambda: ["cpu", "meta"])
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen))
        options = app.screen.query_one("#devices", OptionList)
        assert [options.get_option_at_index(i).id for i in range(2)] == ["cpu", "meta"]
        await pilot.press("down", "enter")
        await idle(pilot)
        assert app.device_name == "meta"
        assert "meta" in plain(app.query_one("#header", Static))
        await pilot.press("p")  # the probe needs real weights: an error, not a crash
        await idle(pilot)
        assert "meta" in plain(app.query_one("#preview-info", Static))


# --------------------------------------------------------------------------- files


async def open_export(pilot) -> ExportScreen:
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ExportScreen))
    return pilot.app.screen


def set_outputs(screen: ExportScreen, **paths: str | None) -> None:
    for kind in ("script", "checkpoint", "plan"):
        path = paths.get(kind)
        screen.query_one(f"#use-{kind}", Checkbox).value = path is not None
        screen.query_one(f"#path-{kind}", Input).value = path or ""


async def test_export_each_kind_and_overwrite(tmp_path):
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "kaiming_normal", "type", "weight")
        await assign(pilot, "layers.0", "zeros", "type", "bias")
        script, ckpt, plan = tmp_path / "init.py", tmp_path / "w.pt", tmp_path / "p.toml"
        screen = await open_export(pilot)
        assert "def init_weights" in screen.source
        screen.action_copy_script()
        assert app.clipboard == screen.source
        for kind, path in (("script", script), ("checkpoint", ckpt), ("plan", plan)):
            screen = (
                await open_export(pilot) if not isinstance(app.screen, ExportScreen) else screen
            )
            set_outputs(screen, **{kind: str(path)})
            await pilot.pause()
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen))
            assert path.exists()
        assert "def init_weights(model: torch.nn.Module" in script.read_text()
        state = torch.load(ckpt, weights_only=True)
        assert torch.count_nonzero(state["layers.0.bias"]) == 0
        assert torch.equal(
            state["layers.1.weight"] if "layers.1.weight" in state else state["layers.2.weight"],
            state["layers.2.weight"],
        )
        assert 'scheme = "kaiming_normal"' in plan.read_text()
        # the user's model is untouched
        assert torch.count_nonzero(app.session.loaded.model.layers[0].bias) > 0
        # overwrite: refused, then confirmed
        script.write_text("old")
        screen = await open_export(pilot)
        set_outputs(screen, script=str(script))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        assert "already exist" in plain(app.screen.query_one("#export-error", Static))
        assert script.read_text() == "old"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen))
        assert "def init_weights" in script.read_text()
        # a bad suffix is reported inline
        screen = await open_export(pilot)
        set_outputs(screen, checkpoint=str(tmp_path / "w.bin"))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "unknown extension '.bin'" in plain(screen.query_one("#export-error", Static))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen))


async def test_save_and_open_plan(tmp_path):
    app = InitApp(MLP)
    target = tmp_path / "plan.toml"
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "zeros")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        assert app.screen.query_one("#path", Input).value == "init_plan.toml"
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PathScreen))
        assert 'select = "layers.0"' in target.read_text()
        assert not app.dirty
        assert "plan.toml saved" in plain(app.query_one("#header", Static))
        # second save goes to the same file without asking
        await assign(pilot, "layers.2", "ones")
        await pilot.press("s")
        await pilot.pause()
        assert 'select = "layers.2"' in target.read_text()
        # open: an error is shown inline, a good file replaces the plan (u undoes)
        other = tmp_path / "other.toml"
        other.write_text(plan_to_toml(Plan((Rule("type:Linear", "zeros", params="bias"),))))
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        app.screen.query_one("#path", Input).value = str(tmp_path / "missing.toml")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "not found" in plain(app.screen.query_one("#path-error")))
        app.screen.query_one("#path", Input).value = str(other)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PathScreen))
        await idle(pilot)
        assert app.session.plan.rules == (Rule("type:Linear", "zeros", params="bias"),)
        assert app.plan_path == str(other) and not app.dirty
        await pilot.press("u")
        assert len(app.session.plan.rules) == 2
        # undo of open: the plan goes back to its own file, saved there
        assert app.plan_path == str(target) and not app.dirty
        await pilot.press("U")  # redo: the opened file again
        assert app.plan_path == str(other)
        await assign(pilot, "layers.2", "ones")
        # saving over an existing file asks first
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await pilot.pause()
        assert 'select = "layers.2"' in other.read_text()


async def test_plan_given_at_start(tmp_path):
    plan = tmp_path / "start.toml"
    plan.write_text(plan_to_toml(Plan((Rule("type:Linear", "zeros", params="bias"),), seed=3)))
    app = InitApp(MLP, plan_path=str(plan))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert app.session.plan.seed == 3 and len(app.session.resolved.steps) == 9
        assert "start.toml saved" in plain(app.query_one("#header", Static))
        assert "zeros·type" in app.tree_widget.nodes["layers.0"].label.plain


async def test_quit_with_unsaved_changes_asks():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "zeros")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "unsaved changes" in plain(app.screen.query_one(".question", Static))
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await pilot.pause()
    assert app.return_code == 0


# --------------------------------------------------------------------------- help, palette


async def test_help_screen_lists_every_key():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        sections = dict(app.help_sections())
        keys = {k for k, _ in sections["Main"]}
        for binding in app.BINDINGS:
            assert binding.id and binding.description
            assert app.get_key_display(binding) in keys
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_offers_actions_and_rules():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "zeros")
        names = [name for name, _, _ in palette_commands(app)]
        assert {"Assign", "Preview", "Export", "Undo", "Redo", "Device"} <= set(names)
        assert "Remove rule 1: layers.0 -> zeros()" in names
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: CommandPalette.is_open(app))
        await pilot.press(*"Remove rule")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not CommandPalette.is_open(app))
        await idle(pilot)
        assert app.session.plan.rules == ()


@pytest.mark.parametrize("size", [(120, 40)])
async def test_wide_layout(size):
    app = InitApp(MLP)
    async with app.run_test(size=size) as pilot:
        await idle(pilot)
        assert app.screen.has_class("-wide")
        assert app.query_one("#left").outer_size.width == 48


async def test_escape_cancels_long_work(monkeypatch):
    import inittui.tui.preview_jobs as jobs_module  # the preview's worker lives there
    from inittui.core.errors import CancelledError

    def slow_preview(*args, **kwargs):
        cancel = args[6]
        while not cancel():
            time.sleep(0.01)
        raise CancelledError("preview cancelled")

    monkeypatch.setattr(jobs_module, "run_preview", slow_preview)
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("p")
        await pilot.pause(0.1)
        assert "preview" in app.running
        assert "esc cancels" in plain(app.query_one("#status-text", Static))
        await pilot.press("escape")
        await idle(pilot)
        assert "preview: cancelled" in plain(app.query_one("#status-text", Static))
        assert app.session.preview is None and app.is_running


async def test_main_keys_are_inert_in_dialogs():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "layers.0")
        await pilot.press("a", "e", "q", "u")  # the scheme list has the focus
        await pilot.pause()
        assert app.screen is screen and len(app.screen_stack) == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)


async def test_ctrl_q_also_asks_when_unsaved():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await assign(pilot, "layers.0", "zeros")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running


BIG_MODEL = """
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.act = nn.ReLU()


class Big(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(2600))
"""


async def test_big_model_opens_lazily(tmp_path):
    source = tmp_path / "big.py"
    source.write_text(BIG_MODEL)
    app = InitApp(f"{source}:Big")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session is not None)
        assert len(app.session.tree.modules) == 10_402  # root, blocks, 2600 x 4
        tree = app.tree_widget
        assert set(tree.nodes) == {"", "blocks"}  # root expanded one level only
        assert not tree.nodes["blocks"].is_expanded
        assert tree.reveal("blocks.2599.norm")
        assert tree.cursor_path == "blocks.2599.norm"
        assert len(tree.nodes) == 2 + 2600 + 3
        await idle(pilot)
        assert "LayerNorm" in plain(app.query_one("#detail", Static))


async def test_bad_plan_at_start_is_reported_and_model_still_opens(tmp_path):
    plan = tmp_path / "bad.toml"
    plan.write_text('version = 1\n[[rule]]\nselect = "type:Linear"\nscheme = "kaiming_normal"\n')
    app = InitApp(MLP, plan_path=str(plan))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert app.session.plan.rules == () and app.plan_path is None
        messages = [n.message for n in app._notifications]
        assert any("cannot apply to layers.0.bias" in m for m in messages)
