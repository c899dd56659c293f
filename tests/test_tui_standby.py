"""Pilot tests of the standby preview child: started at low priority once a model that
qualifies is open, previews through it equal the in-thread ones (also a second one, on a
model whose forward changes its buffers and draws from the global RNG), a dead standby
falls back to a child of its own, one that cannot build is not started again, and ``q``
kills it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from pilot import idle, plain, wait_for
from textual.widgets import Static

from inittui.core.plan import Plan, Rule, plan_to_toml
from inittui.tui import job_process
from inittui.tui.app import InitApp
from inittui.tui.job_process import PreviewChild, PreviewRequest, run_request
from inittui.tui.session import run_preview
from inittui.tui.standby import STANDBY_NICE, StandbyChild
from inittui.tui.widgets.error_panel import ErrorPanel

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
SIZE = (80, 24)

DRIFT_MODEL = """
import torch
from torch import nn


class Drift(nn.Module):
    # each forward counts itself in a buffer and adds noise from the global RNG: a child
    # that did not put its model back would preview something else the second time (the
    # noise differs between processes: torch seeds its global RNG at random)
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.out(self.fc(x) * self.calls + torch.randn(x.shape[0], 4))
"""

GATED_MODEL = """
import asyncio
import os

from torch import nn


class Gated(nn.Module):
    def __init__(self, gate: str = ""):
        super().__init__()
        if not os.path.exists(gate):
            raise RuntimeError("the gate is closed")
        self.fc = nn.Linear(4, 4)
"""


def standby_app(target: str, kwargs: dict | None = None, **options) -> InitApp:
    app = InitApp(target, kwargs, **options)
    app.preview_in_child = True
    app.preview_standby = True  # the sample models are small: ask for it
    return app


def request_of(app: InitApp) -> PreviewRequest:
    request = app.preview_request(app.session.history.current, False)
    assert request is not None
    return request


async def ready_standby(pilot) -> StandbyChild:
    app = pilot.app
    await idle(pilot)
    await wait_for(pilot, lambda: app.standby is not None and app.standby.ready, timeout=60)
    return app.standby


async def preview(pilot) -> None:
    app = pilot.app
    await pilot.press("p")
    await wait_for(pilot, lambda: "preview" not in app.running, timeout=60)
    assert app.session.preview is not None, plain(app.query_one("#status-text", Static))


async def wait_gone(standby: StandbyChild) -> None:
    for _ in range(200):  # killed and reaped within two seconds
        if standby.process.poll() is not None:
            break
        await asyncio.sleep(0.01)
    assert standby.process.returncode == -signal.SIGKILL


def write_plan(tmp_path: Path, select: str) -> str:
    plan = Plan(rules=[Rule(select=select, scheme="kaiming_normal", params="weight")])
    path = tmp_path / "plan.toml"
    path.write_text(plan_to_toml(plan))
    return str(path)


async def test_the_standby_builds_at_low_priority_and_serves_the_preview(tmp_path):
    app = standby_app(MLP, plan_path=write_plan(tmp_path, "layers.0"), seed=3)
    async with app.run_test(size=SIZE) as pilot:
        standby = await ready_standby(pilot)
        pid = standby.process.pid
        assert standby.built_nice == STANDBY_NICE  # its build thread's, from the child
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0)
        await preview(pilot)
        assert app.preview_child is standby and standby.is_alive()  # kept for the next
        got = app.session.preview
        state = app.session.history.current
        expected = run_preview(app.session.loaded, state.resolved, [], None, 3, False)
        assert got.planned and got == expected  # every number, every flag
        await preview(pilot)  # the same child again
        assert app.preview_child is standby and standby.process.pid == pid
        assert app.session.preview == expected


async def test_a_reused_standby_previews_what_a_fresh_child_would(tmp_path):
    model = tmp_path / "drift.py"
    model.write_text(DRIFT_MODEL)
    app = standby_app(f"{model}:Drift", plan_path=write_plan(tmp_path, "fc"))
    async with app.run_test(size=SIZE) as pilot:
        standby = await ready_standby(pilot)
        expected = run_request(request_of(app), lambda done, total: None)
        await preview(pilot)
        first = app.session.preview
        assert first.rows[0] == expected.rows[0]  # fc: before the noise, as built fresh
        await preview(pilot)
        assert app.preview_child is standby and standby.is_alive()
        assert app.session.preview == first  # buffers and global RNG put back
    await wait_gone(standby)  # the app ended without q (unmounted): killed too


async def test_a_dead_standby_falls_back_to_a_child_of_its_own_and_restarts(tmp_path):
    app = standby_app(MLP, plan_path=write_plan(tmp_path, "layers.0"), seed=3)
    async with app.run_test(size=SIZE) as pilot:
        standby = await ready_standby(pilot)
        os.kill(standby.process.pid, signal.SIGKILL)
        await wait_for(pilot, lambda: not standby.is_alive())
        await preview(pilot)
        assert isinstance(app.preview_child, PreviewChild)  # the path without a standby
        assert "child process" in app.preview_where
        state = app.session.history.current
        expected = run_preview(app.session.loaded, state.resolved, [], None, 3, False)
        assert app.session.preview == expected
        await wait_for(pilot, lambda: app.standby is not standby and app.standby.ready, 60)


async def test_a_standby_that_cannot_build_is_not_started_again(tmp_path):
    model = tmp_path / "gated.py"
    model.write_text(GATED_MODEL)
    gate = tmp_path / "gate"
    gate.write_text("")
    app = standby_app(f"{model}:Gated", {"gate": str(gate)})
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        standby = app.standby
        assert standby is not None
        gate.unlink()  # the app has its model; no child can build it now
        await wait_for(pilot, lambda: standby.poll_built() is False, timeout=60)
        await pilot.press("p")
        await wait_for(pilot, lambda: "preview" not in app.running, timeout=60)
        panel = app.query_one("#preview-error", ErrorPanel)
        assert panel.display and "the gate is closed" in panel.text  # as without a standby
        assert isinstance(app.preview_child, PreviewChild)
        assert app.standby_refused == standby.spec
        assert app.standby is standby and not standby.is_alive()  # none started again


async def test_q_kills_the_standby_at_once(tmp_path):
    app = standby_app(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await wait_for(pilot, lambda: app.standby is not None)
        standby = app.standby  # still building, or ready: either way killed
        start = time.perf_counter()
        await pilot.press("q")
        quit_s = time.perf_counter() - start
    await wait_gone(standby)
    assert quit_s < 0.3 * 5  # q does not wait for the child (slack for a loaded machine)
    assert job_process.live_children() == []


async def test_a_small_model_gets_no_standby_by_default():
    app = InitApp(MLP)
    app.preview_in_child = True  # previews in a child, but the model is small
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.pause(0.1)
        assert app.standby is None and job_process.live_children() == []
