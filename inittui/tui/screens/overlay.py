"""The ``?`` overlay: a small modal over the main screen with the tree markers' legend and
the keys that matter where the focus is (:func:`inittui.tui.keys.overlay_sections`: the
same legend rows as the help screen, the same priorities as the key bar). It scrolls with
j/k, g/G, home/end and the arrows; ``?``, ``esc`` and ``q`` close it (``q`` never quits
from here). F1 opens the help screen with every key."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from inittui.tui.textual_private import PromptFrames
from inittui.tui.widgets.keybar import DialogKeys

HINT = "j k g G home end scroll · ? esc q close · F1 every key"


def sections_table(sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> Group:
    """``(title, [(key, what it does), ...])`` sections, each a title line over a
    two-column grid; one key column width for all (the widest key, not the widest title),
    the key never wraps, the text wraps to the width left."""
    width = max((len(key) for _title, rows in sections for key, _ in rows), default=1)
    parts: list[Text | Table] = []
    for index, (title, rows) in enumerate(sections):
        parts.append(Text(("\n" if index else "") + title, style="bold underline"))
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True, width=width)
        table.add_column()
        for key, description in rows:
            table.add_row(key, description)
        parts.append(table)
    return Group(*parts)


class KeysOverlay(DialogKeys, PromptFrames, ModalScreen[None]):
    """The legend and the keys that matter here; ``sections`` as
    :func:`~inittui.tui.keys.overlay_sections` gives them."""

    DEFAULT_CSS = """
    KeysOverlay .keys-overlay {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
    }
    KeysOverlay #overlay-scroll {
        height: auto;
        max-height: 18;
    }
    """

    BINDINGS = [
        Binding("question_mark,escape,q", "close", "Close", id="overlay.close"),
        Binding("j", "scroll(1)", "Down", id="overlay.down"),
        Binding("k", "scroll(-1)", "Up", id="overlay.up"),
        Binding("g,home", "scroll_to(0)", "Top", id="overlay.top"),
        Binding("G,end", "scroll_to(-1)", "Bottom", id="overlay.bottom"),
        Binding("f1", "help", "Every key", id="overlay.help"),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog keys-overlay") as box:
            box.border_title = "Legend and keys here"
            with VerticalScroll(id="overlay-scroll"):
                yield Static(sections_table(self.sections), id="overlay-text")
            yield Label(HINT, classes="hint")

    def on_mount(self) -> None:
        self.query_one("#overlay-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_help(self) -> None:
        """F1: the help screen in the overlay's place."""
        self.dismiss(None)
        self.app.call_later(self.app.run_action, "help")

    def action_scroll(self, lines: int) -> None:
        self.query_one("#overlay-scroll").scroll_relative(y=lines, animate=False)

    def action_scroll_to(self, where: int) -> None:
        scroll = self.query_one("#overlay-scroll")
        scroll.scroll_to(y=scroll.max_scroll_y if where < 0 else 0, animate=False)
