"""The module tree: one node per module, children added when a node is first expanded, so
a model with tens of thousands of modules opens at once."""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from inittui.tui.session import ModelIndex

EXPAND_ALL_LIMIT = 200  # models with at most this many modules open fully expanded
FILTER_LIMIT = 1000  # at most this many matches are shown


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
        self.nodes: dict[str, TreeNode[str]] = {}
        self._populated: set[str] = set()
        self.filter_query = ""
        self.filter_count = 0
        self.guide_depth = 2

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
        self._rebuild_lazy()

    def _rebuild_lazy(self) -> None:
        assert self.index is not None
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

    def _add_child(self, parent: TreeNode[str], path: str) -> TreeNode[str]:
        assert self.index is not None
        canonical = self.index.resolve_path(path)
        has_children = (
            bool(self.index.modules.get(canonical) and self.index.modules[canonical].children)
            and canonical == path
        )
        node = parent.add(path, data=path, allow_expand=has_children)
        self.nodes.setdefault(path, node)
        return node

    def _populate(self, node: TreeNode[str]) -> None:
        path = node.data or ""
        if path in self._populated or self.index is None or self.filter_query:
            return
        self._populated.add(path)
        for child in self.index.child_paths(path):
            self._add_child(node, child)
        for child in node.children:
            child.set_label(self.label_for(child.data or "", child.is_expanded))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        self._populate(event.node)
        event.node.set_label(self.label_for(event.node.data or "", True))

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[str]) -> None:
        event.node.set_label(self.label_for(event.node.data or "", False))

    def refresh_labels(self) -> None:
        for node in self.nodes.values():
            node.set_label(self.label_for(node.data or "", node.is_expanded))

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        """The label cut to the visible width (with an ellipsis), its marker kept."""
        text = super().render_label(node, base_style, style)
        marker = self.marker_for(node.data or "", node.is_expanded)
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        available = self.scrollable_content_region.width - depth * self.guide_depth
        room = available - marker.cell_len
        if room >= 8 and text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        text.append_text(marker)
        return text

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

    def goto(self, node: TreeNode[str]) -> None:
        """Move the cursor to ``node`` (the line numbers are rebuilt first)."""
        _ = self.last_line  # rebuilds the tree lines, so node.line is current
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)

    # -- filtering --------------------------------------------------------------------

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
        matches, total = self.index.search(query, FILTER_LIMIT)
        shown: set[str] = set(matches)
        for path in matches:
            shown.update(self.index.ancestors(path))
        self.filter_query = query
        self.filter_count = total
        self.clear()
        self.nodes = {"": self.root}
        self._populated = set()
        for module in self.index.tree.modules:
            if not module.path or module.path not in shown:
                continue
            parent_path = module.path.rpartition(".")[0]
            parent = self.nodes.get(parent_path, self.root)
            has_children = any(child in shown for child in self.index.child_paths(module.path))
            node = parent.add("", data=module.path, allow_expand=has_children)
            self.nodes[module.path] = node
            if has_children:
                node.expand()
        self.root.expand()
        self.refresh_labels()
        target = keep if keep in self.nodes and keep in matches else (matches[0] if matches else "")
        self.goto(self.nodes.get(target, self.root))
        return total

    def clear_filter(self) -> None:
        if not self.filter_query:
            return
        keep = self.cursor_path or ""
        self.filter_query = ""
        self.filter_count = 0
        self._rebuild_lazy()
        self.reveal(keep)
