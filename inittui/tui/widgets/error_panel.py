"""The last preview failure, kept in the preview pane until the next preview succeeds: the
one-line message, a hint that matches the failure (from
:func:`inittui.core.probe.failure.classify_failure`), the frame of the user's code that
raised, where the inputs came from, and the traceback behind ``t``."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from inittui.core.probe.failure import PreviewFailure


def failure_text(failure: PreviewFailure, traceback: bool) -> Text:
    """The panel's text (plain words for every part: readable without colour)."""
    text = Text()
    text.append("preview failed: ", style="bold red")
    text.append(failure.message + "\n", style="red")
    if failure.hint:
        text.append("hint: ", style="bold")
        text.append(failure.hint + "\n")
    if failure.frame:
        text.append("raised at: ", style="bold")
        text.append(failure.frame + "\n")
    text.append("inputs: ", style="bold")
    text.append((failure.source or "not made") + "\n", style="dim")
    if traceback:
        text.append("\n" + failure.traceback + "\n", style="dim")
        text.append("t hides the traceback · i sets the inputs", style="dim italic")
    else:
        text.append("t shows the traceback · i sets the inputs", style="dim italic")
    return text


class ErrorPanel(VerticalScroll):
    """Shows one :class:`PreviewFailure` (``show``); ``toggle_traceback`` flips the
    traceback; ``clear`` hides the panel."""

    DEFAULT_CSS = """
    ErrorPanel {
        height: 1fr;
        display: none;
        scrollbar-size-vertical: 1;
    }
    ErrorPanel > Static {
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.failure: PreviewFailure | None = None
        self.traceback_shown = False

    def compose(self):
        yield Static("", id="error-text")

    def show(self, failure: PreviewFailure) -> None:
        self.failure = failure
        self.traceback_shown = False
        self.display = True
        self._draw()

    def toggle_traceback(self) -> bool:
        """Flip the traceback; ``False`` when there is no failure to show."""
        if self.failure is None or not self.display:
            return False
        self.traceback_shown = not self.traceback_shown
        self._draw()
        return True

    def clear(self) -> None:
        self.failure = None
        self.display = False

    @property
    def text(self) -> str:
        return (
            "" if self.failure is None else failure_text(self.failure, self.traceback_shown).plain
        )

    def _draw(self) -> None:
        assert self.failure is not None
        self.query_one("#error-text", Static).update(
            failure_text(self.failure, self.traceback_shown)
        )
