"""Textual's private API as inittui uses it (inittui.tui.textual_private): every hook
exists in the installed Textual (an upgrade that renames one fails here, by name), and the
screens' frame timer draws a frame at most once
per period and a change made after a quiet spell at once, on a fake clock."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from inittui.tui import textual_private as frames
from inittui.tui.textual_private import FrameTimer

PERIOD = 1 / 60


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def get_time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Target:
    """Stands in for a screen (the timer holds a weak reference to its target)."""


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(frames, "_time", fake)
    return fake


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_frames_follow_changes_at_once_but_at_most_once_per_period(clock):
    ticks: list[float] = []

    class Recording(FrameTimer):
        async def _tick(self, *, next_timer: float, count: int) -> None:
            ticks.append(clock.now)
            self.pause()  # as Screen._on_timer_update does: wait for the next change

    target = Target()
    timer = Recording(target, PERIOD, pause=True)
    timer._start()
    try:
        await settle()
        assert ticks == []  # nothing changed, nothing drawn
        timer.resume()  # a change after a quiet spell: drawn at once
        await settle()
        assert ticks == [pytest.approx(1000.0)]
        clock.now += 0.002  # another change 2 ms later: drawn one period after the first
        timer.resume()
        await settle()
        assert ticks[1] == pytest.approx(1000.0 + PERIOD)
        clock.now += 5.0  # quiet; then a change: at once again
        start = clock.now
        timer.resume()
        await settle()
        assert ticks[2] == pytest.approx(start)
        timer.resume()  # changes back to back: one frame per period
        await settle()
        timer.resume()
        await settle()
        gaps = [b - a for a, b in zip(ticks[2:], ticks[3:], strict=False)]
        assert gaps == [pytest.approx(PERIOD), pytest.approx(PERIOD)]
    finally:
        timer.stop()


async def test_an_active_timer_ticks_once_per_period(clock):
    ticks: list[float] = []

    class Recording(FrameTimer):
        async def _tick(self, *, next_timer: float, count: int) -> None:
            ticks.append(clock.now)
            if len(ticks) == 5:
                self.pause()

    target = Target()
    timer = Recording(target, PERIOD)
    timer._start()
    try:
        await settle()
        assert len(ticks) == 5
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        assert gaps == [pytest.approx(PERIOD)] * 4
    finally:
        timer.stop()


async def test_app_screens_use_the_frame_timer():
    from pathlib import Path

    from inittui.tui.app import InitApp

    target = str(Path(__file__).resolve().parent.parent / "sample_models" / "mlp.py") + ":MLP"
    app = InitApp(target)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen._update_timer, FrameTimer)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen._update_timer, FrameTimer)


# --------------------------------------------------------------------------- every hook


@pytest.mark.parametrize("hook", frames.PRIVATE_HOOKS, ids=lambda h: f"{h.owner.__name__}.{h.name}")
def test_private_hook_exists(hook):
    assert hasattr(hook.owner, hook.name), (
        f"Textual no longer has {hook.owner.__name__}.{hook.name} ({hook.why}); "
        "see inittui/tui/textual_private.py"
    )
    attribute = inspect.getattr_static(hook.owner, hook.name)
    is_method = inspect.isfunction(attribute) or inspect.iscoroutinefunction(attribute)
    assert is_method == hook.callable, f"{hook.owner.__name__}.{hook.name} changed kind"


async def test_private_instance_attributes_exist():
    from textual.app import App

    class Probe(App):
        pass

    app = Probe()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        timer = frames.FrameTimer(Target(), 1.0, callback=lambda: None, pause=True)
        live = {
            frames.Timer: timer,
            frames.Screen: app.screen,
            frames.App: app,
        }
        for owner, names in frames.PRIVATE_INSTANCE_ATTRIBUTES.items():
            for name in names:
                assert hasattr(live[owner], name), f"Textual {owner.__name__} lost {name}"
