"""Frames drawn as soon as a change is ready (at most Textual's 60 per second).

A Textual screen draws its changes on an update timer that is paused while nothing
changes. Textual's ``Timer`` keeps a fixed grid of ticks and, resumed after a pause, skips
to the grid point *after* the next one: a change made right after a frame waited 17-33 ms
for its own frame instead of at most 17. Most keys cause two or three frames (the cursor,
then the detail pane, then the scrollbars that follow its size), so that was 30-60 ms of
every keypress spent waiting with nothing to do.

:class:`FrameTimer` keeps Textual's limit (one frame per ``UPDATE_PERIOD``) and nothing
else: a frame comes ``UPDATE_PERIOD`` after the previous one or at once, whichever is
later. :class:`PromptFrames` gives a screen that timer. Both rely on Textual's private
``Screen._update_timer`` and ``Timer._run`` / ``Timer._tick``: textual is pinned in
pyproject, and the Pilot and snapshot tests draw every screen through them.
"""

from __future__ import annotations

from textual import _time
from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import EventTargetGone, Timer


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
