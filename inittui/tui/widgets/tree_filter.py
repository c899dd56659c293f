"""Typing and applying a filter in the module tree (mixed into
:class:`~inittui.tui.widgets.model_tree.ModuleTree`).

While ``typing``, printable keys, backspace and ctrl+u edit ``filter_text`` (and
``on_filter_text`` is told) instead of being commands; enter stops typing. A filter shows a
tree of its own: the matches with their ancestors, every node expanded; the unfiltered
tree is kept aside and comes back when the filter is cleared."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import events

from inittui.tui.widgets.tree_lines import ModuleNode, visible_below

if TYPE_CHECKING:
    from inittui.tui.widgets.model_tree import ModuleTree

    _Base = ModuleTree
else:
    _Base = object


class FilterMixin(_Base):
    """The filter half of the module tree."""

    def init_filter(self) -> None:
        self.typing = False
        self.filter_text = ""
        self.on_filter_text: Callable[[str], None] | None = None
        self.filter_query = ""
        self.filter_count = 0
        # The unfiltered tree (root, nodes, populated) while a filter is shown.
        self._saved: tuple[ModuleNode, dict[str, ModuleNode], set[str]] | None = None

    # -- typing -----------------------------------------------------------------------

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

    def on_key(self, event: events.Key) -> None:
        # A key reaches the focused widget before the (non-priority) bindings, which are
        # checked as it bubbles up: stopping it here makes it text.
        if self.type_key(event):
            event.stop()
            event.prevent_default()

    def on_paste(self, event: events.Paste) -> None:
        if self.typing:
            event.stop()
            line = event.text.splitlines()[0] if event.text.strip() else ""
            self.filter_text += line
            if self.on_filter_text is not None:
                self.on_filter_text(self.filter_text)

    # -- filtering --------------------------------------------------------------------

    def _show_root(self, root: ModuleNode, nodes: dict[str, ModuleNode]) -> None:
        self.root = root
        self.nodes = nodes
        self._lines = [root, *self._visible(root)]
        self._cursor = 0
        self._lines_changed()

    @staticmethod
    def _visible(root: ModuleNode) -> list[ModuleNode]:
        return visible_below(root) if root._expanded else []

    def apply_filter(self, query: str) -> int:
        """Show the modules whose path or type contains ``query``, with their ancestors;
        returns the number of matches. An empty query restores the full tree."""
        from inittui.tui.widgets.model_tree import FILTER_LIMIT

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
        self.filter_query = query
        self.filter_count = total
        root = ModuleNode(self, None, "", self._saved[0].allow_expand)
        root._expanded = True
        nodes: dict[str, ModuleNode] = {"": root}
        shown.discard("")
        parents = {path.rpartition(".")[0] for path in shown}
        for path in sorted(shown, key=index.order.__getitem__):  # in the model's order
            parent = nodes.get(path.rpartition(".")[0], root)
            node = ModuleNode(self, parent, path, path in parents)
            node._expanded = node.allow_expand
            if parent.children:
                parent.children[-1].is_last = False
            parent.children.append(node)
            nodes[path] = node
        self._populated = set()
        self._show_root(root, nodes)
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
            from inittui.tui.widgets.model_tree import EXPAND_ALL_LIMIT

            root, nodes, self._populated = saved
            expand_all = len(self.index.modules) <= EXPAND_ALL_LIMIT
            for node in nodes.values():
                node._expanded = node is root or (expand_all and node.allow_expand)
            self._show_root(root, nodes)
            self.goto(root)
        self.reveal(keep)
