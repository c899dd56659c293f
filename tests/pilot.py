"""Helpers for Pilot tests of the app (``app.run_test()``): wait for what a worker reports,
read a widget's text. Workers report back through messages, so a test polls for the state
it needs instead of sleeping a fixed time."""

from __future__ import annotations

from collections.abc import Callable


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll the app until ``condition()`` holds, then let it process one more round of
    messages; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("timed out waiting for the app")


async def idle(pilot) -> None:
    """Wait until the model is loaded and no worker runs."""
    app = pilot.app
    await wait_for(pilot, lambda: app.ready and not app.running)


def plain(widget) -> str:
    """The text a ``Static`` shows, without styles."""
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)
