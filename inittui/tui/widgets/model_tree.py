"""The module tree: one node per module, children added when a node is first expanded, so
a model with tens of thousands of modules opens at once.

Labels are computed lazily: a node's label (``label_for``) and marker (``marker_for``) are
worked out when the line is drawn or its ``label`` is read, and cached until the plan or
the statistics change (``refresh_labels`` bumps a generation) or the node is expanded or
collapsed. Line widths for lines not yet drawn are bounded by the visible width (labels
are cut to it), so expanding a node with thousands of children does not label them all."""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from inittui.tui.session import ModelIndex
from inittui.tui.textual_private import (
    attach_child,
    cursor_node,
    forget_line_cache,
    forget_nodes,
    invalidate,
    mark_changed,
    new_node,
    node_label,
    put_cursor,
    set_expanded,
    store_label,
)

EXPAND_ALL_LIMIT = 200  # models with at most this many modules open fully expanded
FILTER_LIMIT = 1000  # at most this many matches are shown

_NULL_STYLE = Style()
_BLANK = Text()


class ModuleNode(TreeNode[str]):
    """A tree node whose ``label`` is worked out on first use (see ``ModuleTree``)."""

    _lkey: tuple[int, bool] | None = None
    _marker: Text = _BLANK
    _wkey: tuple[int, bool, int] | None = None
    _width: int = 0

    @property
    def label(self) -> Text:  # type: ignore[override]
        tree = self.tree
        if isinstance(tree, ModuleTree):
            tree._fresh_label(self)
        return node_label(self)

    @label.setter
    def label(self, new_label) -> None:  # type: ignore[no-untyped-def]
        self.set_label(new_label)


class ModuleTree(Tree[str]):
    """``Tree`` whose node data is the module path (``""`` for the root)."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("k", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("right,l", "expand_node", "Expand", show=False, id="tree.expand"),
        Binding("left,h", "collapse_node", "Collapse / parent", show=False, id="tree.collapse"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("model", data="", id=id)
        self.index: ModelIndex | None = None
        self.label_for: Callable[[str, bool], Text] = lambda path, expanded: Text(path)
        self.marker_for: Callable[[str, bool], Text] = lambda path, expanded: Text()
        # Called as the cursor lands on another node, before the frame that shows it is
        # drawn: what the app shows about the node arrives in the same frame (through
        # ``NodeHighlighted`` it arrived a frame later, 17-33 ms at Textual's 60 fps).
        self.on_cursor: Callable[[], None] | None = None
        # While ``typing``, printable keys, backspace and ctrl+u edit ``filter_text`` (and
        # ``on_filter_text`` is told) instead of being commands; enter stops typing.
        self.typing = False
        self.filter_text = ""
        self.on_filter_text: Callable[[str], None] | None = None
        self.nodes: dict[str, TreeNode[str]] = {}
        self._populated: set[str] = set()
        self.filter_query = ""
        self.filter_count = 0
        self.guide_depth = 2
        self._gen = 0  # bumped when every label may have changed
        # The unfiltered tree (root, nodes, populated) while a filter is shown.
        self._saved: tuple[TreeNode[str], dict[str, TreeNode[str]], set[str]] | None = None

    # -- labels -----------------------------------------------------------------------

    def _add_node(
        self,
        parent: TreeNode[str] | None,
        label: Text,
        data: str | None,
        expand: bool = False,
    ) -> TreeNode[str]:
        return new_node(self, ModuleNode, parent, label, data, expanded=expand)

    def _fresh_label(self, node: TreeNode[str]) -> Text:
        """``node``'s label, worked out again if the plan or its expansion changed."""
        expanded = node.is_expanded
        key = (self._gen, expanded)
        if getattr(node, "_lkey", None) != key:
            path = node.data or ""
            store_label(node, self.process_label(self.label_for(path, expanded)))
            node._marker = self.marker_for(path, expanded)  # type: ignore[attr-defined]
            node._lkey = key  # type: ignore[attr-defined]
        return node_label(node)

    def refresh_labels(self) -> None:
        """Every label and marker is worked out again (when next drawn or read)."""
        self._gen += 1
        self._fresh_label(self.root)
        invalidate(self)

    @staticmethod
    def _depth(node: TreeNode[str]) -> int:
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        return depth

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        """The label cut to the visible width (with an ellipsis), its marker kept."""
        self._fresh_label(node)
        text = super().render_label(node, base_style, style)
        marker: Text = getattr(node, "_marker", _BLANK)
        available = self.scrollable_content_region.width - self._depth(node) * self.guide_depth
        room = available - marker.cell_len
        if room >= 8 and text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        text.append_text(marker)
        return text

    def process_label(self, label) -> Text:  # type: ignore[no-untyped-def]
        if label is _BLANK or (isinstance(label, Text) and "\n" not in label.plain):
            return label  # one line already (Tree would split it)
        return super().process_label(label)

    def _build(self) -> None:
        self._build_width: int | None = self.scrollable_content_region.width
        try:
            super()._build()
        finally:
            self._build_width = None

    def get_label_width(self, node: TreeNode[str]) -> int:
        width = getattr(self, "_build_width", None)
        if width is None:
            width = self.scrollable_content_region.width
        key = (self._gen, node.is_expanded, width)
        if getattr(node, "_wkey", None) == key:
            return node._width  # type: ignore[attr-defined]
        if getattr(node, "_lkey", None) != key[:2]:
            # Not labelled yet: a label is cut to the room left (markers take at most 2
            # cells), so the visible width bounds it without working it out.
            available = width - self._depth(node) * self.guide_depth
            if available >= 10:
                return available
        label_width = self.render_label(node, _NULL_STYLE, _NULL_STYLE).cell_len
        node._wkey, node._width = key, label_width  # type: ignore[attr-defined]
        return label_width

    # -- building ---------------------------------------------------------------------

    def load(
        self,
        index: ModelIndex,
        label_for: Callable[[str, bool], Text],
        marker_for: Callable[[str, bool], Text] | None = None,
    ) -> None:
        """Show ``index``; ``label_for(path, expanded)`` is a node's label and
        ``marker_for(path, expanded)`` a flag marker kept visible when the label is cut."""
        self.index = index
        self.label_for = label_for
        if marker_for is not None:
            self.marker_for = marker_for
        self.filter_query = ""
        self.filter_count = 0
        self._rebuild_lazy()

    def _rebuild_lazy(self) -> None:
        assert self.index is not None
        self._saved = None
        self.clear()
        self.nodes = {"": self.root}
        self._populated = set()
        self.root.data = ""
        self._populate(self.root)
        self.root.expand()
        if len(self.index.modules) <= EXPAND_ALL_LIMIT:
            for path in [m.path for m in self.index.tree.modules]:
                node = self.nodes.get(path)
                if node is not None and node.allow_expand:
                    self._populate(node)
                    node.expand()
        self.refresh_labels()
        self.goto(self.root)

    def _new_child(self, parent: TreeNode[str], path: str, allow_expand: bool) -> TreeNode[str]:
        """A child of ``parent`` labelled lazily; added without refreshing the tree (the
        caller invalidates it once)."""
        node = self._add_node(parent, _BLANK, path)
        attach_child(parent, node, allow_expand)
        return node

    def _populate(self, node: TreeNode[str]) -> None:
        path = node.data or ""
        if path in self._populated or self.index is None or self.filter_query:
            return
        self._populated.add(path)
        index = self.index
        modules = index.modules
        nodes = self.nodes
        for child in index.child_paths(path):
            canonical = index.resolve_path(child)
            record = modules.get(canonical)
            has_children = bool(record and record.children) and canonical == child
            new = self._new_child(node, child, has_children)
            nodes.setdefault(child, new)
        mark_changed(node)
        invalidate(self)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        self._populate(event.node)

    # -- navigation -------------------------------------------------------------------

    @property
    def cursor_path(self) -> str | None:
        node = self.cursor_node
        return None if node is None else (node.data or "")

    def action_expand_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand and not node.is_expanded:
            node.expand()

    def action_collapse_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.allow_expand:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

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
            self._populate(node)
            node.expand()
        node = self.nodes.get(path)
        if node is None:
            return False
        self.goto(node)
        return True

    def notify_style_update(self) -> None:
        # Tree rebuilds all its lines on any style change (the tree gaining or losing focus
        # is one: 10-20 ms for 10,000 lines, and a second layout). Lines depend on the nodes
        # and the size (a resize still rebuilds them); styles change only the drawn strips.
        super(Tree, self).notify_style_update()
        forget_line_cache(self)
        self.refresh()

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        # The scrollbar takes a cell from the width the labels are cut to.
        invalidate(self)

    def watch_cursor_line(self, previous_line: int, line: int) -> None:
        before = cursor_node(self)
        super().watch_cursor_line(previous_line, line)
        # The same line can hold another node (a new filter put it there).
        moved = previous_line != line or cursor_node(self) is not before
        if moved and self.on_cursor is not None:
            self.on_cursor()

    def goto(self, node: TreeNode[str]) -> None:
        """Move the cursor to ``node`` (the line numbers are rebuilt first)."""
        _ = self.last_line  # rebuilds the tree lines, so node.line is current
        self.move_cursor(node)
        if cursor_node(self) is not node:  # same line in a new tree: no cursor change seen
            put_cursor(self, node)
            self.post_message(self.NodeHighlighted(node))
            if self.on_cursor is not None:
                self.on_cursor()
        self.scroll_to_node(node, animate=False)

    # -- typing a filter --------------------------------------------------------------

    def type_key(self, event: events.Key) -> bool:
        """``/`` starts typing a filter; then printable keys, backspace and ctrl+u edit
        ``filter_text``, enter keeps the filter and escape clears it. False for the keys
        that keep their usual meaning (arrows move through the matches)."""
        if not self.typing:
            if event.character != "/" or self.index is None:
                return False
            # Here, not through the app's binding: the keys typed right after ``/`` are
            # already queued to the tree, and must be read as text.
            self.start_typing()
            return True
        text = self.filter_text
        if event.key == "enter":
            self.typing = False
        elif event.key == "escape":
            self.typing = False
            text = ""
        elif event.key == "backspace":
            text = text[:-1]
        elif event.key == "ctrl+u":
            text = ""
        elif event.is_printable and event.character:
            text += event.character
        else:
            return False
        self.filter_text = text
        if self.on_filter_text is not None:
            self.on_filter_text(text)
        return True

    def start_typing(self) -> None:
        """Keys type into the filter from now on, starting from the filter in force."""
        self.typing = True
        self.filter_text = self.filter_query
        if self.on_filter_text is not None:
            self.on_filter_text(self.filter_text)

    async def _on_key(self, event: events.Key) -> None:
        if self.type_key(event):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def _on_paste(self, event: events.Paste) -> None:
        if self.typing:
            event.stop()
            line = event.text.splitlines()[0] if event.text.strip() else ""
            self.filter_text += line
            if self.on_filter_text is not None:
                self.on_filter_text(self.filter_text)

    # -- filtering --------------------------------------------------------------------

    def _swap_root(self, root: TreeNode[str]) -> None:
        put_cursor(self, None)
        self.root = root
        invalidate(self)

    def _drop_filtered(self) -> None:
        """Forget the nodes of the filtered tree shown now."""
        forget_nodes(self, self.nodes.values())

    def apply_filter(self, query: str) -> int:
        """Show the modules whose path or type contains ``query``, with their ancestors;
        returns the number of matches. An empty query restores the full tree."""
        if self.index is None:
            return 0
        keep = self.cursor_path
        query = query.strip()
        if not query:
            self.clear_filter()
            return 0
        index = self.index
        matches, total = index.search(query, FILTER_LIMIT)
        shown: set[str] = set(matches)
        for path in matches:
            shown.update(index.ancestors(path))
        if self._saved is None:
            self._saved = (self.root, self.nodes, self._populated)
        else:
            self._drop_filtered()
        self.filter_query = query
        self.filter_count = total
        old_root = self._saved[0]
        root = self._add_node(None, node_label(old_root), "", expand=True)
        root.allow_expand = old_root.allow_expand
        nodes: dict[str, TreeNode[str]] = {"": root}
        shown.discard("")
        parents = {path.rpartition(".")[0] for path in shown}
        for path in sorted(shown, key=index.order.__getitem__):  # in the model's order
            parent = nodes.get(path.rpartition(".")[0], root)
            has_children = path in parents
            node = self._new_child(parent, path, has_children)
            set_expanded(node, has_children)
            nodes[path] = node
        self.nodes = nodes
        self._populated = set()
        self._swap_root(root)
        self._fresh_label(root)
        target = keep if keep in nodes and keep in matches else (matches[0] if matches else "")
        self.goto(nodes.get(target, root))
        return total

    def clear_filter(self) -> None:
        if not self.filter_query:
            return
        keep = self.cursor_path or ""
        self.filter_query = ""
        self.filter_count = 0
        saved, self._saved = self._saved, None
        if saved is None or self.index is None:
            self._rebuild_lazy()
        else:
            # The unfiltered tree as it opens (the root expanded, or every node of a small
            # model), its nodes kept.
            self._drop_filtered()
            root, self.nodes, self._populated = saved
            expand_all = len(self.index.modules) <= EXPAND_ALL_LIMIT
            for node in self.nodes.values():
                set_expanded(node, node is root or (expand_all and node.allow_expand))
            self._swap_root(root)
            self.goto(root)
        self.reveal(keep)
