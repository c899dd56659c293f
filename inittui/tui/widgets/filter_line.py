"""The filter line under the module tree.

Typing a filter does not move the focus: the tree keeps it and turns the keys into text
(:meth:`ModuleTree.type_key`), and this line shows the text. A focus change redraws the
whole screen and every scrollbar in Textual (three frames, ~100 ms on a 10,000-module
tree); this way ``/``, each character and ``enter`` redraw this line and the tree only.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import Static

CURSOR = "reverse"


class FilterLine(Static, can_focus=False):
    """``/query▏`` while typing, the filter in force after ``enter``, a hint otherwise."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.show("", typing=False)

    def show(self, query: str, typing: bool) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if typing:
            text.append("/", style="bold")
            text.append(query)
            text.append(" ", style=CURSOR)
            text.append("  enter keeps · esc clears", style="dim")
        elif query:
            text.append("/", style="bold")
            text.append(query, style="bold")
            text.append("  / edits · esc clears", style="dim")
        else:
            text.append("/ filter by name or type", style="dim")
        self.update(text)

    async def on_click(self, event: events.Click) -> None:
        event.stop()
        await self.app.run_action("filter")
