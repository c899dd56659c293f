"""Every use of Textual's private API, in one place.

inittui uses Textual's public API everywhere it can. Where no public API does the job (a
frame timer that does not over-skip, a dialog laid out before it is shown), the private
attribute is used here and only here, through the small functions below;
``PRIVATE_HOOKS`` lists each one with the reason, and ``tests/test_textual_private.py``
checks every hook against the installed Textual so an upgrade that renames or removes one
fails loudly in CI rather than subtly on screen.
Textual is pinned to an exact version in pyproject.toml.

Frames
    Textual's screen draws its changes on an update timer that is paused while nothing
    changes. Its ``Timer`` keeps a fixed grid of ticks and, resumed after a pause, skips to
    the grid point *after* the next one: a change made right after a frame waited 17-33 ms
    for its own frame instead of at most 17. Most keys cause two or three frames (the
    cursor, then the detail pane, then the scrollbars that follow its size), so that was
    30-60 ms of every keypress spent waiting with nothing to do. :class:`FrameTimer` keeps
    Textual's limit (one frame per ``UPDATE_PERIOD``) and nothing else: a frame comes
    ``UPDATE_PERIOD`` after the previous one or at once, whichever is later;
    :class:`PromptFrames` gives a screen that timer (``Screen._update_timer``).

Screens
    The assign dialog is composed, laid out and drawn while the tree is shown, so its first
    ``a`` only shows it (``App._get_screen``, ``App._load_screen_css``,
    ``Screen._refresh_layout``, ``Screen._compositor``).

Quitting
    Textual's terminal driver stops its input thread by setting an event and joining the
    thread, which wakes from a 100 ms ``select`` and then selects 100 ms more for late
    input: 200 ms of every quit spent waiting. :func:`stop_input_now` turns the mouse off
    and sets the event itself (the driver then skips its join); the thread ends on its own
    while the app shuts down (``App._driver``, ``LinuxDriver._disable_mouse_support``).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import _time
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import EventTargetGone, Timer


@dataclass(frozen=True)
class PrivateHook:
    """One private Textual attribute inittui relies on."""

    owner: type
    name: str
    callable: bool  # a method (True) or a data attribute / property (False)
    why: str


PRIVATE_HOOKS: tuple[PrivateHook, ...] = (
    PrivateHook(Timer, "_run", True, "FrameTimer replaces the tick loop"),
    PrivateHook(Timer, "_tick", True, "FrameTimer ticks through it"),
    PrivateHook(Timer, "_start", True, "the frame timer is started like Textual's"),
    PrivateHook(Screen, "_update_timer", False, "PromptFrames swaps the screen's timer"),
    PrivateHook(Screen, "_on_timer_update", True, "the frame timer's callback"),
    PrivateHook(Screen, "_refresh_layout", True, "a dialog laid out off screen"),
    PrivateHook(App, "_get_screen", True, "a dialog mounted off the screen stack"),
    PrivateHook(App, "_load_screen_css", True, "a dialog's CSS loaded before it is shown"),
    PrivateHook(LinuxDriver, "_disable_mouse_support", True, "q stops the input thread at once"),
)
"""Every private attribute used by inittui. Instance attributes set in ``__init__``
(``Timer._interval``, ``_active``, ``Screen._timers``, ``Screen._compositor``,
``App._driver``) are listed
in ``PRIVATE_INSTANCE_ATTRIBUTES`` and checked on live objects by the tests."""

PRIVATE_INSTANCE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    Timer: ("_interval", "_active"),
    Screen: ("_timers", "_compositor"),
    App: ("_driver",),
}


# --------------------------------------------------------------------------- frames


class FrameTimer(Timer):
    """A repeating timer that, while active, ticks at most once per interval and, when
    resumed after a pause, ticks as soon as an interval has passed since its last tick."""

    async def _run(self) -> None:
        interval = self._interval
        last = _time.get_time() - interval
        while True:
            await self._active.wait()
            wait = last + interval - _time.get_time()
            if wait > 0:
                await _time.sleep(wait)
                await self._active.wait()
            last = _time.get_time()
            try:
                await self._tick(next_timer=last, count=0)
            except EventTargetGone:
                break


class PromptFrames(Screen):
    """A screen whose updates are drawn by a :class:`FrameTimer`."""

    @property
    def _update_timer(self) -> Timer:
        timer = self.__dict__.get("_frame_timer")
        if timer is None:
            timer = FrameTimer(
                self,
                UPDATE_PERIOD,
                name="screen_update",
                callback=self._on_timer_update,
                pause=True,
            )
            timer._start()
            self._timers.add(timer)
            self.__dict__["_frame_timer"] = timer
        return timer


# --------------------------------------------------------------------------- screens


def mount_off_screen(app: App, screen: Screen):  # type: ignore[no-untyped-def]
    """Load ``screen``'s CSS and mount it without showing it (it is installed, not pushed);
    returns the awaitable that completes once it is mounted."""
    app._load_screen_css(screen)
    _screen, mounted = app._get_screen(screen)
    return mounted


def draw_off_screen(screen: Screen) -> None:
    """Lay out and draw ``screen`` while another one is shown (widgets sized, lines cached),
    so that showing it later only shows it."""
    screen._refresh_layout(screen.app.size)
    screen._compositor.render_full_update()


# --------------------------------------------------------------------------- quitting


def stop_input_now(app: App) -> bool:
    """Stop the terminal driver's input without waiting for its thread (see the module's
    "Quitting"); ``False`` (nothing done) under any other driver (headless, web)."""
    driver = app._driver
    if not isinstance(driver, LinuxDriver) or driver.exit_event.is_set():
        return False
    import signal

    signal.signal(signal.SIGWINCH, signal.SIG_DFL)
    driver._disable_mouse_support()
    driver.exit_event.set()  # disable_input now skips the join
    return True
