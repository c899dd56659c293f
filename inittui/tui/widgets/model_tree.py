"""The module tree: a line list of our own on Textual's public ``ScrollView`` / Line API.

One :class:`~inittui.tui.widgets.tree_lines.ModuleNode` per module; a node's children are
made when it is first expanded, so a model with tens of thousands of modules opens at
once. The tree keeps the visible nodes as a flat list of lines: expanding a node splices
its visible descendants in after it, collapsing cuts them out, and ``render_line`` draws
only the lines on screen. Labels are computed lazily: a node's label (``label_for``) and
marker (``marker_for``) are worked out when its line is drawn or its ``label`` read, and
cached until the plan or the statistics change (``refresh_labels`` bumps a generation) or
the node is expanded or collapsed. The parameter count comes from the model index and is
drawn right-aligned in a column as wide as the model's widest count; labels are cut in the
middle to fit (see :mod:`inittui.tui.widgets.tree_lines`)."""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from inittui.tui.session import ModelIndex
from inittui.tui.widgets.text import count
from inittui.tui.widgets.tree_filter import FilterMixin
from inittui.tui.widgets.tree_lines import ModuleNode, line_text, visible_below

EXPAND_ALL_LIMIT = 200  # models with at most this many modules open fully expanded
FILTER_LIMIT = 1000  # at most this many matches are shown

__all__ = ["EXPAND_ALL_LIMIT", "FILTER_LIMIT", "ModuleNode", "ModuleTree"]


class ModuleTree(FilterMixin, ScrollView, can_focus=True):
    """The module tree; each node's ``data`` is the module path (``""`` for the root)."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("home,g", "first", "First line", show=False, id="tree.first"),
        Binding("end,G", "last", "Last line", show=False, id="tree.last"),
        Binding("pageup", "page_up", "Page up", show=False, id="tree.page-up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="tree.page-down"),
        Binding("enter", "select_cursor", "Select", show=False, id="tree.select"),
        Binding("space", "toggle_node", "Toggle", show=False, id="tree.toggle"),
        Binding("right,l", "expand_node", "Expand", show=False, id="tree.expand"),
        Binding("left,h", "collapse_node", "Collapse / parent", show=False, id="tree.collapse"),
        Binding("shift+left", "cursor_parent", "Parent", show=False, id="tree.parent"),
        Binding("shift+up", "sibling(-1)", "Previous sibling", show=False, id="tree.prev"),
        Binding("shift+down", "sibling(1)", "Next sibling", show=False, id="tree.next"),
    ]

    COMPONENT_CLASSES = {"module-tree--cursor", "module-tree--guides"}

    DEFAULT_CSS = """
    ModuleTree {
        background: $surface;
        color: $foreground;
        & > .module-tree--guides { color: $surface-lighten-2; }
        & > .module-tree--cursor {
            text-style: $block-cursor-blurred-text-style;
            background: $block-cursor-blurred-background;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .module-tree--cursor {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
            & > .module-tree--guides { color: $surface-lighten-3; }
        }
        &:light > .module-tree--guides { color: $surface-darken-1; }
    }
    """

    class NodeHighlighted(Message):
        """The cursor moved to ``node``."""

        def __init__(self, node: ModuleNode) -> None:
            super().__init__()
            self.node = node
            self.path = node.data

    class NodeSelected(Message):
        """``enter`` (or a click) on ``node``."""

        def __init__(self, node: ModuleNode) -> None:
            super().__init__()
            self.node = node
            self.path = node.data

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index: ModelIndex | None = None
        self.label_for: Callable[[str, bool], Text] = lambda path, expanded: Text(path)
        self.marker_for: Callable[[str, bool], Text] = lambda path, expanded: Text()
        # Called as the cursor lands on another node, before the frame that shows it is
        # drawn: what the app shows about the node arrives in the same frame.
        self.on_cursor: Callable[[], None] | None = None
        self.root = ModuleNode(self, None, "", True)
        self.nodes: dict[str, ModuleNode] = {"": self.root}
        self._lines: list[ModuleNode] = [self.root]
        self._cursor = 0
        self._populated: set[str] = set()
        self._gen = 0  # bumped when every label may have changed
        self._count_width = 0
        self._strips: LRUCache[tuple[object, ...], Strip] = LRUCache(1024)
        self.init_filter()

    # -- labels -----------------------------------------------------------------------

    def fresh_label(self, node: ModuleNode) -> Text:
        """``node``'s label, worked out again if the plan or its expansion changed."""
        key = (self._gen, node._expanded)
        if node._lkey != key:
            path = node.data
            node._label = self.label_for(path, node._expanded)
            node._marker = self.marker_for(path, node._expanded)
            node._count = self._count_of(path)
            node._lkey = key
        return node._label

    def _count_of(self, path: str) -> str:
        index = self.index
        if index is None or index.resolve_path(path) != path:
            return ""
        record = index.modules.get(path)
        return count(record.num_params) if record is not None and record.num_params else ""

    def refresh_labels(self) -> None:
        """Every label and marker is worked out again (when next drawn or read)."""
        self._gen += 1
        self.refresh()

    # -- drawing ----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        line = scroll_y + y
        base = self.rich_style
        if not 0 <= line < len(self._lines) or width <= 0:
            return Strip.blank(width, base)
        node = self._lines[line]
        self.fresh_label(node)
        is_cursor = line == self._cursor
        key = (node, self._gen, node._expanded, width, self._count_width, is_cursor)
        strip = self._strips.get(key)
        if strip is None:
            guide_style = self.get_component_rich_style("module-tree--guides", partial=True)
            cursor = self.get_component_rich_style("module-tree--cursor") if is_cursor else None
            text = line_text(node, width, self._count_width, guide_style, cursor)
            segments = [s for s in text.render(self.app.console) if s.text != "\n"]
            strip = Strip(Segment.apply_style(segments, base), width)
            self._strips[key] = strip
        return strip

    def notify_style_update(self) -> None:
        # Focus, theme and class changes restyle the lines: drop the drawn strips.
        super().notify_style_update()
        self._strips.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._sync_size()

    def _sync_size(self) -> None:
        self.virtual_size = Size(1, len(self._lines))

    def _refresh_line(self, line: int) -> None:
        self.refresh(Region(0, line - self.scroll_offset.y, self.size.width, 1))

    # -- building ---------------------------------------------------------------------

    def load(
        self,
        index: ModelIndex,
        label_for: Callable[[str, bool], Text],
        marker_for: Callable[[str, bool], Text] | None = None,
    ) -> None:
        """Show ``index``; ``label_for(path, expanded)`` is a node's label (its count is
        added from the index) and ``marker_for(path, expanded)`` a flag marker kept
        visible when the label is cut."""
        self.index = index
        self.label_for = label_for
        if marker_for is not None:
            self.marker_for = marker_for
        sizes = {m.num_params for m in index.modules.values() if m.num_params}
        self._count_width = max((len(count(n)) for n in sizes), default=0)
        self.filter_query = ""
        self.filter_count = 0
        self._rebuild_lazy()

    def _rebuild_lazy(self) -> None:
        assert self.index is not None
        self._saved = None
        self.root = ModuleNode(self, None, "", True)
        self.nodes = {"": self.root}
        self._populated = set()
        self._lines = [self.root]
        self._cursor = 0
        self.expand(self.root)
        if len(self.index.modules) <= EXPAND_ALL_LIMIT:
            for path in [m.path for m in self.index.tree.modules]:
                node = self.nodes.get(path)
                if node is not None and node.allow_expand:
                    self.expand(node)
        self.refresh_labels()
        self.goto(self.root)

    def _populate(self, node: ModuleNode) -> None:
        path = node.data
        if path in self._populated or self.index is None or self.filter_query:
            return
        self._populated.add(path)
        index = self.index
        modules = index.modules
        nodes = self.nodes
        children = index.child_paths(path)
        last = len(children) - 1
        for i, child in enumerate(children):
            canonical = index.resolve_path(child)
            record = modules.get(canonical)
            has_children = bool(record and record.children) and canonical == child
            new = ModuleNode(self, node, child, has_children, i == last)
            node.children.append(new)
            nodes.setdefault(child, new)

    def expand(self, node: ModuleNode) -> None:
        """Show ``node``'s children (made on its first expansion)."""
        if not node.allow_expand or node._expanded:
            return
        self._populate(node)
        node._expanded = True
        line = self.line_of(node)
        if line >= 0:
            below = visible_below(node)
            self._lines[line + 1 : line + 1] = below
            if self._cursor > line:
                self._cursor += len(below)
            self._lines_changed()

    def collapse(self, node: ModuleNode) -> None:
        """Hide ``node``'s children (the cursor goes to ``node`` if it was below it)."""
        if not node._expanded:
            return
        node._expanded = False
        line = self.line_of(node)
        if line < 0:
            return
        lines = self._lines
        end = line + 1
        while end < len(lines) and lines[end].depth > node.depth:
            end += 1
        del lines[line + 1 : end]
        if line < self._cursor < end:
            self._cursor = line
            self._cursor_moved()
        elif self._cursor >= end:
            self._cursor -= end - line - 1
        self._lines_changed()

    def _lines_changed(self) -> None:
        self._sync_size()
        self.refresh()

    def line_of(self, node: ModuleNode) -> int:
        """The line ``node`` is on (-1 while hidden)."""
        if self._cursor < len(self._lines) and self._lines[self._cursor] is node:
            return self._cursor
        try:
            return self._lines.index(node)
        except ValueError:
            return -1

    # -- cursor -----------------------------------------------------------------------

    @property
    def cursor_node(self) -> ModuleNode | None:
        return self._lines[self._cursor] if self._lines else None

    @property
    def cursor_path(self) -> str | None:
        node = self.cursor_node
        return None if node is None else node.data

    @property
    def cursor_line(self) -> int:
        return self._cursor

    @cursor_line.setter
    def cursor_line(self, line: int) -> None:
        self.move_to_line(line)

    @property
    def last_line(self) -> int:
        return len(self._lines) - 1

    def move_to_line(self, line: int, force: bool = False) -> None:
        """Put the cursor on ``line`` (clamped) and scroll it into view."""
        line = max(0, min(line, self.last_line))
        previous = self._cursor
        if line != previous or force:
            self._cursor = line
            self._refresh_line(previous)
            self._refresh_line(line)
            self._cursor_moved()
        self.scroll_to_region(
            Region(0, line, 1, 1), animate=False, force=True, x_axis=False, immediate=True
        )

    def _cursor_moved(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if self.on_cursor is not None:
            self.on_cursor()
        self.post_message(self.NodeHighlighted(node))

    def goto(self, node: ModuleNode) -> None:
        """Move the cursor to ``node`` (a visible one)."""
        line = self.line_of(node)
        if line >= 0:
            self.move_to_line(line, force=True)

    def reveal(self, path: str) -> bool:
        """Expand the ancestors of ``path`` and move the cursor to it."""
        if self.index is None:
            return False
        if path not in self.nodes and self.filter_query:
            self.clear_filter()
        for ancestor in self.index.ancestors(path):
            node = self.nodes.get(ancestor)
            if node is None:
                return False
            self.expand(node)
        node = self.nodes.get(path)
        if node is None:
            return False
        self.goto(node)
        return True

    # -- actions ----------------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self.move_to_line(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_to_line(self._cursor + 1)

    def action_first(self) -> None:
        self.move_to_line(0)

    def action_last(self) -> None:
        self.move_to_line(self.last_line)

    def action_page_up(self) -> None:
        self.move_to_line(self._cursor - max(1, self.scrollable_content_region.height - 1))

    def action_page_down(self) -> None:
        self.move_to_line(self._cursor + max(1, self.scrollable_content_region.height - 1))

    def action_toggle_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.toggle()

    def action_select_cursor(self) -> None:
        node = self.cursor_node
        if node is not None:
            self.action_toggle_node()
            self.post_message(self.NodeSelected(node))

    def action_expand_node(self) -> None:
        node = self.cursor_node
        if node is not None:
            self.expand(node)

    def action_collapse_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node._expanded and node.allow_expand:
            self.collapse(node)
        elif node.parent is not None:
            self.goto(node.parent)

    def action_cursor_parent(self) -> None:
        node = self.cursor_node
        if node is not None and node.parent is not None:
            self.goto(node.parent)

    def action_sibling(self, step: int) -> None:
        node = self.cursor_node
        if node is None or node.parent is None:
            return
        siblings = node.parent.children
        i = siblings.index(node) + step
        if 0 <= i < len(siblings):
            self.goto(siblings[i])

    def on_click(self, event: events.Click) -> None:
        line = event.y + self.scroll_offset.y
        if not 0 <= line < len(self._lines):
            return
        if line == self._cursor:
            self.action_select_cursor()
        else:
            self.move_to_line(line)
