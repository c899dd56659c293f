"""The module tree's nodes and how one line of it is drawn, without a widget.

A :class:`ModuleNode` is one module of the tree; its children are made when it is first
expanded (:class:`~inittui.tui.widgets.model_tree.ModuleTree` does that). A line is
``guides icon label marker  count``: the guides and the expand icon, the label cut in the
middle to the room left (:func:`cut_middle`), the flag marker kept whole, and the
parameter count right-aligned in a column as wide as the widest count of the model, so
counts are never cut."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

if TYPE_CHECKING:
    from inittui.tui.widgets.model_tree import ModuleTree

ICON_EXPANDED = "▼ "
ICON_COLLAPSED = "▶ "
GUIDE_LAST = "└─"
GUIDE_MIDDLE = "├─"
GUIDE_PASS = "│ "
GUIDE_NONE = "  "
ELLIPSIS = "…"
MIN_LABEL = 6  # below this many cells a label is cut at the end, not in the middle

_BLANK = Text()


class ModuleNode:
    """One line of the module tree: ``data`` is the module path (``""`` for the root)."""

    __slots__ = (
        "tree",
        "data",
        "parent",
        "children",
        "allow_expand",
        "_expanded",
        "is_last",
        "depth",
        "_lkey",
        "_label",
        "_marker",
        "_count",
    )

    def __init__(
        self,
        tree: ModuleTree,
        parent: ModuleNode | None,
        data: str,
        allow_expand: bool,
        is_last: bool = True,
    ) -> None:
        self.tree = tree
        self.data = data
        self.parent = parent
        self.children: list[ModuleNode] = []
        self.allow_expand = allow_expand
        self._expanded = False
        self.is_last = is_last
        self.depth = 0 if parent is None else parent.depth + 1
        self._lkey: tuple[int, bool] | None = None
        self._label: Text = _BLANK
        self._marker: Text = _BLANK
        self._count = ""

    def __repr__(self) -> str:
        return f"ModuleNode({self.data!r})"

    @property
    def is_expanded(self) -> bool:
        return self._expanded

    @property
    def label(self) -> Text:
        """The label with its parameter count (``0 Linear kaiming_normal 4.2K``)."""
        self.tree.fresh_label(self)
        if not self._count:
            return self._label.copy()
        text = self._label.copy()
        text.append(f" {self._count}", style="dim")
        return text

    @property
    def line(self) -> int:
        """The line the node is on, -1 while it is hidden (a collapsed ancestor)."""
        return self.tree.line_of(self)

    def expand(self) -> None:
        self.tree.expand(self)

    def collapse(self) -> None:
        self.tree.collapse(self)

    def toggle(self) -> None:
        if self._expanded:
            self.collapse()
        else:
            self.expand()


def visible_below(node: ModuleNode) -> list[ModuleNode]:
    """The lines under an expanded ``node``: its children and, under each expanded child,
    that child's lines, in order."""
    lines: list[ModuleNode] = []
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        lines.append(child)
        if child._expanded and child.children:
            stack.extend(reversed(child.children))
    return lines


def guides(node: ModuleNode) -> str:
    """The guide cells before ``node``'s icon (none for the root)."""
    if node.parent is None:
        return ""
    parts = [GUIDE_LAST if node.is_last else GUIDE_MIDDLE]
    ancestor = node.parent
    while ancestor is not None and ancestor.parent is not None:
        parts.append(GUIDE_NONE if ancestor.is_last else GUIDE_PASS)
        ancestor = ancestor.parent
    return "".join(reversed(parts))


def cut_middle(text: Text, room: int) -> Text:
    """``text`` cut to ``room`` cells with ``…`` in the middle (the start of a name and its
    scheme both stay readable); at the end when the room is small or cells are wide."""
    if text.cell_len <= room:
        return text
    if room <= 0:
        return Text()
    plain = text.plain
    if room < MIN_LABEL or len(plain) != text.cell_len:
        cut = text.copy()
        cut.truncate(room, overflow="ellipsis")
        return cut
    head = (room - 1 + 1) // 2
    tail = room - 1 - head
    cut = text[:head]
    cut.append(ELLIPSIS, style="dim")
    if tail:
        cut.append_text(text[len(plain) - tail :])
    return cut


def line_text(
    node: ModuleNode,
    width: int,
    count_width: int,
    guide_style: Style,
    cursor_style: Style | None,
) -> Text:
    """One line of the tree, exactly ``width`` cells: guides, icon, label cut to the room,
    marker, and the count right-aligned in a column ``count_width`` wide."""
    text = Text(no_wrap=True, end="")
    text.append(guides(node), style=guide_style)
    body = Text(no_wrap=True, end="")
    if node.allow_expand:
        body.append(ICON_EXPANDED if node._expanded else ICON_COLLAPSED)
    marker = node._marker
    column = count_width + 1 if count_width else 0
    room = width - text.cell_len - body.cell_len - marker.cell_len - column
    body.append_text(cut_middle(node._label, room))
    body.append_text(marker)
    pad = width - text.cell_len - body.cell_len - column
    if pad > 0:
        body.append(" " * pad)
    if column:
        body.append(" " + node._count.rjust(count_width), style="dim")
    if cursor_style is not None:
        body.stylize(cursor_style)
    text.append_text(body)
    text.truncate(width, pad=True)
    return text
