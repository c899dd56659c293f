"""Pilot tests of the app's jobs at 80x24: the preview in a child process (same numbers as
in-process, keys handled meanwhile, esc and q end the child), the error panel (a hint per
failure kind, the traceback behind t) and the inputs editor (i)."""

from __future__ import annotations

from pathlib import Path

from pilot import idle, plain, wait_for
from textual.widgets import Input, Static

from inittui.core.plan import Plan, Rule, plan_to_toml
from inittui.tui import job_process
from inittui.tui.app import InitApp
from inittui.tui.screens.inputs import InputsScreen
from inittui.tui.session import run_preview
from inittui.tui.widgets.error_panel import ErrorPanel

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
SIZE = (80, 24)

SLOW_MODEL = """
import os
import time

from torch import nn


class Slow(nn.Module):
    def __init__(self, gate: str = ""):
        super().__init__()
        self.gate = gate
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        for _ in range(0 if x.device.type == "meta" else 6000):  # until the test lets it
            if os.path.exists(self.gate):  # finish (60 s at most; the tree's meta pass: not)
                break
            time.sleep(0.01)
        return self.out(self.fc(x))
"""

FAILING = {
    # the second layer's width does not follow the first: torch raises on guessed inputs
    "guessed": """
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(16, 2)

    def forward(self, x):
        return self.b(self.a(x))
""",
    # the model's own forward raises
    "forward": """
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 8)

    def forward(self, x):
        y = self.a(x)
        raise ValueError("this model refuses to run")
""",
    # example_inputs returns the wrong width
    "example_inputs": """
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 8)

    def forward(self, x):
        return self.a(x)


def example_inputs(model):
    return torch.randn(2, 5)
""",
}


def write_plan(tmp_path: Path) -> str:
    plan = Plan(rules=[Rule(select="layers.0", scheme="kaiming_normal", params="weight")])
    path = tmp_path / "plan.toml"
    path.write_text(plan_to_toml(plan))
    return str(path)


async def test_preview_in_a_child_equals_the_in_process_preview(tmp_path):
    app = InitApp(MLP, plan_path=write_plan(tmp_path), seed=3)
    app.preview_in_child = True
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: "preview" in app.running)
        assert "child process" in plain(app.query_one("#status-text", Static))
        await idle(pilot)
        child = app.preview_child
        assert child is not None and child.process.returncode is not None
        got = app.session.preview
        assert got is not None and got.planned
        state = app.session.history.current
        expected = run_preview(app.session.loaded, state.resolved, [], None, 3, False)
        assert got == expected  # every number, every flag
        assert [row.plan_std for row in got.rows] == [row.plan_std for row in expected.rows]


async def test_keys_move_the_tree_while_a_child_preview_runs_and_esc_ends_it(tmp_path):
    model = tmp_path / "slow.py"
    model.write_text(SLOW_MODEL)
    gate = tmp_path / "gate"
    app = InitApp(f"{model}:Slow", {"gate": str(gate)})
    app.preview_in_child = True
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.preview_child is not None)
        child = app.preview_child
        start = app.tree_widget.cursor_line
        await pilot.press("j")
        await pilot.pause()
        assert app.tree_widget.cursor_line == start + 1
        assert "preview" in app.running and child.is_alive()  # handled before it finished
        await pilot.press("escape")
        await wait_for(pilot, lambda: "preview" not in app.running)
        assert child.process.returncode is not None  # the child is gone
        assert job_process.live_children() == []
        assert "preview: cancelled" in plain(app.query_one("#status-text", Static))


async def test_q_ends_a_running_preview_child(tmp_path):
    model = tmp_path / "slow.py"
    model.write_text(SLOW_MODEL)
    app = InitApp(f"{model}:Slow", {"gate": str(tmp_path / "never")})
    app.preview_in_child = True
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.preview_child is not None)
        child = app.preview_child
        await pilot.press("q")
        await pilot.pause()
        assert child.process.returncode is not None
        assert all(event.is_set() for event in app.cancel_events.values())
    assert job_process.live_children() == []


async def failing_app(tmp_path: Path, kind: str, child: bool = False) -> InitApp:
    model = tmp_path / f"{kind}.py"
    model.write_text(FAILING[kind])
    app = InitApp(f"{model}:Model")
    app.preview_in_child = child
    return app


async def run_failing(pilot) -> str:
    app = pilot.app
    await idle(pilot)
    await pilot.press("p")
    await idle(pilot)
    panel = app.query_one("#preview-error", ErrorPanel)
    assert panel.display and app.session.preview is None
    return panel.text


async def test_error_panel_hint_for_inputs_guessed_from_the_first_layer(tmp_path):
    app = await failing_app(tmp_path, "guessed", child=True)  # crosses the process too
    async with app.run_test(size=SIZE) as pilot:
        text = await run_failing(pilot)
        assert "--input-shape" in text and "guessed" in text
        assert app.query_one("#preview-error", ErrorPanel).failure.kind == "guessed"
        assert "Traceback" not in text and "t shows the traceback" in text
        await pilot.press("t")
        assert "Traceback" in app.query_one("#preview-error", ErrorPanel).text
        await pilot.press("t")
        assert "Traceback" not in app.query_one("#preview-error", ErrorPanel).text


async def test_error_panel_says_when_forward_itself_raised(tmp_path):
    app = await failing_app(tmp_path, "forward")
    async with app.run_test(size=SIZE) as pilot:
        text = await run_failing(pilot)
        assert "forward raised at forward.py:" in text
        assert 'raise ValueError("this model refuses to run")' in text
        assert "--input-shape" not in text


async def test_error_panel_names_example_inputs(tmp_path):
    app = await failing_app(tmp_path, "example_inputs")
    async with app.run_test(size=SIZE) as pilot:
        text = await run_failing(pilot)
        assert "example_inputs" in text.split("hint:")[1].splitlines()[0]
        assert "--input-shape" not in text
        await pilot.pause(0.2)
        assert app.query_one("#preview-error", ErrorPanel).display  # stays, unlike a notice
        app.input_shapes = ["2,4"]  # a good preview clears the panel
        await pilot.press("p")
        await idle(pilot)
        assert not app.query_one("#preview-error", ErrorPanel).display


async def open_inputs(pilot) -> InputsScreen:
    await pilot.press("i")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, InputsScreen))
    return pilot.app.screen


async def test_inputs_dialog_sets_shapes_and_the_preview_uses_them():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_inputs(pilot)
        await pilot.press(*"3x64", "tab", *"float32,int64")  # two dtypes for one input
        await pilot.pause()
        assert "2 dtypes for 1 input shape(s)" in screen.error
        await pilot.press("ctrl+u", *"float32")
        await pilot.pause()
        assert screen.error is None
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, InputsScreen))
        assert app.input_shapes == ["3,64"] and app.input_dtype == "float32"
        await pilot.press("p")
        await idle(pilot)
        assert "(3, 64) float32 from --input-shape" in app.session.preview.description
        screen = await open_inputs(pilot)  # remembered: the dialog shows them again
        assert screen.query_one("#shapes", Input).value == "3,64"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, InputsScreen))
        assert app.input_shapes == ["3,64"]


async def test_inputs_dialog_refuses_bad_shapes_in_one_line(tmp_path):
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        screen = await open_inputs(pilot)
        await pilot.press(*"4xa")
        await pilot.pause()
        error = plain(screen.query_one("#inputs-error", Static))
        assert "--input-shape '4,a' must be comma-separated positive integers" in error
        assert "\n" not in error
        assert screen.query_one("#shapes", Input).has_class("-bad")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen  # refused: the dialog stays
        await pilot.press("ctrl+u", "tab", *"int7")
        await pilot.pause()
        assert "unknown --input-dtype 'int7'" in plain(screen.query_one("#inputs-error", Static))
        await pilot.press("ctrl+u", "tab", *str(tmp_path / "missing.pt"))
        await pilot.pause()
        assert "not found" in plain(screen.query_one("#inputs-error", Static))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, InputsScreen))
        assert app.input_shapes == [] and app.inputs_file is None
