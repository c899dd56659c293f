"""Pilot tests of the assign dialog at 80x24: enter assigns from every field, focus never
lands on a container, radios and checkboxes readable without colour, prefilled from the rule
deciding the node, the type-inside-subtree scope, expressions and splits with their values,
the params glob kept through tabbing (bug 4), editing a rule in place, tied aliases."""

from __future__ import annotations

import html
import re
from pathlib import Path

from pilot import idle, plain, wait_for
from textual.widgets import Button, Checkbox, Input, OptionList, RadioButton, Static

from inittui.core.plan import Plan, Rule, resolve_plan
from inittui.tui.app import InitApp
from inittui.tui.screens.assign import AssignScreen
from inittui.tui.session import PlanState

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
LSTM = str(ROOT / "sample_models" / "lstm_lm.py") + ":LSTMLanguageModel"
CONV = str(ROOT / "sample_models" / "convnet.py") + ":ConvNet"
GPT = str(ROOT / "sample_models" / "tiny_gpt.py") + ":TinyGPT"
SHARED = str(ROOT / "tests" / "models" / "zoo.py") + ":Shared"
SIZE = (80, 24)


async def open_assign(pilot, path: str) -> AssignScreen:
    app = pilot.app
    assert app.tree_widget.reveal(path)
    await pilot.pause()
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AssignScreen))
    await pilot.pause()
    return app.screen


async def closed(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: not isinstance(app.screen, AssignScreen))
    await idle(pilot)


def screen_text(app) -> str:
    """The screen as plain text, one line per row (what a capture without colour shows)."""
    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        text = html.unescape(m.group(3)).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    return "\n".join("".join(t for _x, t in sorted(rows[y])) for y in sorted(rows))


def arg_field(screen: AssignScreen, name: str):
    return next(w for w in screen.query(".arg") if w.name == name and w.display)


# --------------------------------------------------------------------------- enter / keys


async def _enter_from(target: str, path: str, prepare, selector: str) -> list[Rule]:
    app = InitApp(target)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, path)
        await prepare(screen, pilot)
        screen.query_one(selector).focus()
        await pilot.pause()
        await pilot.press("enter")
        await closed(pilot)
        return list(app.session.plan.rules)


async def test_enter_assigns_from_every_field():
    async def zeros(screen, pilot):
        screen.choose("zeros")
        await pilot.pause()

    for selector in ("#scope", "#params", "#scale", "#split", "#schemes"):
        rules = await _enter_from(MLP, "layers.0", zeros, selector)
        assert [(r.select, r.scheme) for r in rules] == [("layers.0", "zeros")], selector

    async def kaiming(screen, pilot):
        screen.choose("kaiming_normal")
        screen.query_one("#params", Input).value = "weight"
        await pilot.pause()
        await pilot.pause()

    rules = await _enter_from(MLP, "layers.0", kaiming, ".arg-form Select")
    assert [r.scheme for r in rules] == ["kaiming_normal"]

    async def orthogonal(screen, pilot):
        screen.query_one("#params", Input).value = "weight_hh*"
        await pilot.pause()
        screen.choose("orthogonal")
        await pilot.pause()

    rules = await _enter_from(LSTM, "lstm", orthogonal, "#per-gate")
    assert [(r.scheme, r.params) for r in rules] == [("orthogonal", "weight_hh*")]


async def test_enter_on_an_open_select_picks_the_option_and_space_toggles():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "layers.0")
        screen.query_one("#params", Input).value = "weight"
        await pilot.pause()
        screen.choose("kaiming_normal")
        await pilot.pause()
        await pilot.pause()
        mode = arg_field(screen, "mode")
        before = mode.value
        mode.focus()
        await pilot.press("space")  # opens the list
        await pilot.pause()
        await pilot.press("down", "enter")  # picks the next option, stays in the dialog
        await pilot.pause()
        assert isinstance(app.screen, AssignScreen)
        assert mode.value != before
        assert "ctrl+s" in str(screen.query_one("#assign", Button).label)
        screen.query_one("#scope").focus()
        await pilot.press("right", "space")  # space picks a scope, enter is left to assign
        await pilot.pause()
        assert screen.query_one("#scope-subtree", RadioButton).value
        await pilot.press("ctrl+s")
        await closed(pilot)
        assert app.session.plan.rules[0].select == "layers.0.**"


async def test_tab_never_stops_on_a_container_and_focus_is_shown():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "layers.0")
        screen.choose("trunc_normal")
        await pilot.pause()
        await pilot.pause()
        seen = []
        for _ in range(14):
            await pilot.press("tab")
            focused = screen.focused
            assert focused is not None
            assert focused.id != "args" and focused.__class__.__name__ != "VerticalScroll"
            assert focused.region.area > 0  # on screen: every argument is visible at 80x24
            seen.append(focused.id or focused.name)
        assert {"scope", "params", "schemes", "a", "b", "assign"} <= set(seen)


async def test_radios_and_checkbox_read_without_colour():
    app = InitApp(LSTM)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "lstm")
        text = screen_text(app)
        assert "(•) this node" in text and "( ) + subtree" in text
        assert "( ) every LSTM" in text and "( ) LSTM in subtree" in text
        assert "[ ] per gate" in text
        screen.query_one("#per-gate", Checkbox).value = True
        screen.query_one("#scope-subtree", RadioButton).value = True
        await pilot.pause()
        text = screen_text(app)
        assert "[x] per gate" in text
        assert "( ) this node" in text and "(•) + subtree" in text


# --------------------------------------------------------------------------- prefill


async def test_prefilled_from_the_type_rule_that_decides_the_node():
    plan = Plan(
        rules=(
            Rule(
                "type:Linear",
                "kaiming_normal",
                params="weight",
                args={"mode": "fan_out", "nonlinearity": "relu"},
                scale="0.5 * 2",
            ),
        )
    )
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        session = app.session
        app.commit(PlanState(plan, resolve_plan(plan, session.loaded.model, session.tree), "t"))
        await idle(pilot)
        screen = await open_assign(pilot, "layers.2")
        assert screen.scheme_name == "kaiming_normal"
        assert screen.query_one("#scope-type", RadioButton).value
        assert screen.query_one("#params", Input).value == "weight"
        assert screen.query_one("#scale", Input).value == "0.5 * 2"
        assert arg_field(screen, "mode").value == "fan_out"
        options = screen.query_one("#schemes", OptionList)
        assert options.get_option_at_index(options.highlighted).id == "kaiming_normal"


async def test_edit_a_rule_in_place_keeps_its_select_and_position():
    rules = (
        Rule("layers.*", "normal", params="weight", args={"std": 0.1}),
        Rule("layers.0", "zeros", params="bias"),
    )
    plan = Plan(rules=rules)
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        session = app.session
        app.commit(PlanState(plan, resolve_plan(plan, session.loaded.model, session.tree), "t"))
        await idle(pilot)
        screen = AssignScreen(session, "layers.0", edit=(0, rules[0]))
        app.push_screen(screen, app.assigned)
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.pause()
        assert screen.query_one("#scope-rule", RadioButton).value
        assert "rule 1: layers.*" in str(screen.query_one("#scope-rule", RadioButton).label)
        assert arg_field(screen, "std").value == "0.1"
        arg_field(screen, "std").value = "0.02 / sqrt(fan_in)"
        await pilot.pause()
        assert "std = 0.0025 on" in plain(screen.query_one("#expected", Static))
        screen.action_confirm()
        await closed(pilot)
        new = app.session.plan.rules
        assert len(new) == 2 and new[1] == rules[1]
        assert new[0].select == "layers.*" and new[0].args["std"] == "0.02 / sqrt(fan_in)"


# --------------------------------------------------------------------------- scopes


async def test_type_inside_subtree_scope_spares_the_batchnorms():
    app = InitApp(CONV)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "features")
        screen.choose("kaiming_normal")
        await pilot.pause()
        await pilot.pause()
        assert "does not apply" in plain(screen.query_one("#scheme-summary", Static))
        kind = app.session.index.modules["features"].type
        label = str(screen.query_one("#scope-type-subtree", RadioButton).label)
        assert label == f"{kind} in subtree"
        screen.query_one("#scope-subtree", RadioButton).value = True
        await pilot.pause()
        assert screen.select == "features.**"
    # The node is a Sequential: open it on a conv to offer "Conv2d in subtree" of features.
    app = InitApp(CONV)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        conv = next(m.path for m in app.session.tree.modules if m.type == "Conv2d")
        screen = await open_assign(pilot, conv)
        screen.query_one("#scope-type-subtree", RadioButton).value = True
        await pilot.pause()
        screen.choose("kaiming_normal")
        await pilot.pause()
        await pilot.pause()
        assert screen.select == f"type:Conv2d@{conv}.**"
        assert screen.validate_form()
        screen.action_confirm()
        await closed(pilot)
        assert app.session.plan.rules[-1].select == f"type:Conv2d@{conv}.**"


async def test_split_and_expressions_show_their_values():
    app = InitApp(GPT)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_assign(pilot, "transformer.h.0.attn.c_attn")
        screen.query_one("#params", Input).value = "weight"
        await pilot.pause()
        screen.choose("normal")
        await pilot.pause()
        await pilot.pause()
        arg_field(screen, "std").value = "0.02 / sqrt(2 * arg.n_layer)"
        screen.query_one("#split", Input).value = "3"
        await pilot.pause()
        expected = plain(screen.query_one("#expected", Static))
        assert "std = 0.01 on transformer.h.0.attn.c_attn.weight" in expected
        assert "3 blocks on" in expected
        screen.query_one("#split", Input).value = "0"
        await pilot.pause()
        assert "split must be at least 1" in plain(screen.query_one("#assign-error", Static))
        screen.query_one("#split", Input).value = "3"
        await pilot.pause()
        screen.action_confirm()
        await closed(pilot)
        rule = app.session.plan.rules[-1]
        assert rule.split == 3 and rule.args["std"] == "0.02 / sqrt(2 * arg.n_layer)"


async def test_params_glob_survives_clear_type_and_tabbing():
    """Bug 4: ctrl+u, typing, tabbing into the scheme list and the arguments, enter."""
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        for attempt in range(2):  # the second time on the reused dialog, prefilled
            screen = await open_assign(pilot, "layers.0")
            screen.query_one("#params", Input).focus()
            await pilot.press("ctrl+u", *"weight")
            await pilot.press("tab", "tab")  # scale, the scheme list
            assert screen.focused.id == "schemes"
            await pilot.press("home", "down", "down")  # default -> uniform -> normal
            await pilot.press("tab")  # into the arguments
            assert screen.focused.name == "mean"
            assert screen.query_one("#params", Input).value == "weight"
            await pilot.press("tab")
            assert screen.query_one("#params", Input).value == "weight"
            await pilot.press("ctrl+s")
            await closed(pilot)
            rule = app.session.plan.rules[-1]
            assert (rule.scheme, rule.params) == ("normal", "weight"), attempt
            assert "layers.0.bias" not in app.session.resolved.decided_by


async def test_params_is_two_shift_tabs_back_from_the_schemes_also_on_an_lstm():
    """Bug 4 as seen by hand: on an LSTM the per-gate row sat between params and the scheme
    list, so shift+tab twice then typing went to the checkbox, and the rule kept "*"."""
    for target, path in ((MLP, "layers.0"), (LSTM, "lstm")):
        app = InitApp(target)
        async with app.run_test(size=SIZE) as pilot:
            await idle(pilot)
            screen = await open_assign(pilot, path)
            screen.query_one("#schemes", OptionList).focus()
            await pilot.press("shift+tab", "shift+tab")
            assert screen.focused.id == "params", (target, screen.focused)
            await pilot.press("ctrl+u", *"weight*")
            assert screen.query_one("#params", Input).value == "weight*"


# --------------------------------------------------------------------------- tied aliases


async def test_tied_head_names_the_shared_tensor_and_assigns_it_like_the_cli():
    for target, head, shared in (
        (GPT, "lm_head", "transformer.wte.weight"),
        (SHARED, "head", "emb.weight"),
    ):
        app = InitApp(target)
        async with app.run_test(size=SIZE) as pilot:
            await idle(pilot)
            session = app.session
            assert app.tree_widget.reveal(head)
            await pilot.pause()
            detail = plain(app.query_one("#detail", Static))
            assert f"weight: tied to {shared} (decided there" in detail
            assert "no parameters" not in detail
            screen = await open_assign(pilot, head)
            screen.choose("normal")
            await pilot.pause()
            await pilot.pause()
            assert "covers no parameters" not in plain(screen.query_one("#scheme-summary"))
            screen.action_confirm()
            await closed(pilot)
            rule = session.plan.rules[-1]
            assert rule.select == head
            cli = resolve_plan(Plan(rules=(rule,)), session.loaded.model, session.tree)
            assert session.resolved.decided_by == cli.decided_by == {shared: 0}
            assert [s.param for s in session.resolved.steps] == [shared]
            detail = plain(app.query_one("#detail", Static))
            assert f"weight: tied to {shared} (decided there: rule 1 normal)" in detail
