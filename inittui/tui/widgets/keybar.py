"""The key bar at the bottom of the main screen: the keys that matter where you are.

A one-line replacement for Textual's ``Footer``. ``Footer`` recomposes a widget per key
whenever the bindings change (every focus change, every dialog), which costs two or three
frames; on a 10,000-module model that alone pushed ``/`` and ``enter`` past 100 ms. Here
the bindings become one ``Text`` rendered in the same frame as the change that caused it.
Clicking a key presses it, as with ``Footer``. The bindings (and the keys shown while a
filter is typed) come from ``inittui.tui.keys``, as do the help screen and the README table:
the focused widget's own keys first, then the main keys that matter now in priority order,
short labels; where the bar is too narrow the lowest-priority keys go first.

A dialog (a ``ModalScreen`` with :class:`DialogKeys`) gets a bar of its own on the same
bottom line, over the main screen's: the focused field's shown keys, then the dialog's own
``BINDINGS`` (``show=True``) in the order written, the keys of one action joined
(``enter/^s Assign``), also where a field takes the key itself (an ``Input``'s enter).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from inittui.tui.keys import KEYS_BY_ACTION

Entry = tuple[str, str, str, bool, bool, int]
"""``(key, key display, label, enabled, is the palette key, priority)``."""
SPARE = 70  # keys from this priority on go before the palette key's label


class KeyBar(Static, can_focus=False):
    """``key description`` for every shown binding, the command palette key on the right."""

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) for clicks
        self._shown: tuple | None = None
        self._override: tuple[Entry, ...] | None = None

    def override(self, keys: Sequence[tuple[str, str, str]] | None) -> None:
        """Show ``(key, shown as, description)`` instead of the bindings (a mode in which
        the focused widget reads the keys itself, as the tree does while a filter is
        typed); None goes back to the bindings."""
        entries = None if keys is None else tuple((k, d, t, True, False, 0) for k, d, t in keys)
        if entries != self._override:
            self._override = entries
            self.bindings_changed(self.screen)

    def refresh_keys(self) -> None:
        """Show the keys again: what matters changed (the plan, the node under the cursor)
        while the bindings stayed the same."""
        self.bindings_changed(self.screen)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.call_after_refresh(self.bindings_changed, self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def on_resize(self) -> None:
        self._shown = None
        self.bindings_changed(self.screen)

    def bindings_changed(self, screen: Screen) -> None:
        # Under a dialog the bar keeps the keys of its own screen (Textual reports a
        # partial set for a screen that is not the current one).
        if not self.is_attached or screen is not self.screen or not screen.is_current:
            return
        entries = self._override if self._override is not None else self._entries()
        shown = (entries, self.size.width)
        if shown == self._shown:
            return
        self._shown = shown
        self.update(self._render_entries(entries))

    def _entries(self) -> tuple[Entry, ...]:
        if isinstance(self.screen, ModalScreen):
            return self._dialog_entries()
        return self._main_entries()

    def _dialog_entries(self) -> tuple[Entry, ...]:
        """A dialog's keys: the focused widget's shown bindings, then the dialog's own
        shown ``BINDINGS`` in the order written; one entry per action, its keys joined
        with ``/``. A dialog key that a field takes itself (an ``Input``'s enter, which
        submits the dialog too) is still listed; one its ``check_action`` turns off is not."""
        app, screen = self.app, self.screen
        active = screen.active_bindings
        keys: dict[str, list[str]] = {}  # action -> key displays
        first: dict[str, tuple[str, str, bool]] = {}  # action -> (key, label, enabled)

        def add(binding: Binding, enabled: bool) -> None:
            display = app.get_key_display(binding)
            shown = keys.setdefault(binding.action, [])
            if display not in shown:
                shown.append(display)
            first.setdefault(binding.action, (binding.key, binding.description, enabled))

        for node, binding, enabled, _tooltip in active.values():
            if node is not screen and binding.show:
                add(binding, enabled)
        for binding in Binding.make_bindings(type(screen).BINDINGS):
            current = active.get(binding.key)
            if not binding.show or current is None:
                continue  # hidden, or turned off by the dialog's check_action
            mine = current.node is screen and current.binding.action == binding.action
            add(binding, current.enabled if mine else True)
        return tuple(
            (key, "/".join(keys[action]), label, enabled, False, 0)
            for action, (key, label, enabled) in first.items()
        )

    def _main_entries(self) -> tuple[Entry, ...]:
        """``(key, key display, label, enabled, palette, priority)``, one per action (the first key
        bound to it): the focused widget's own keys first (they matter where you are),
        then the main keys that matter now (``MainKey.when``) by priority, with their short
        labels; the palette key last."""
        app = self.app
        matters = getattr(app, "key_matters", None)
        seen: set[str] = set()
        ranked = []
        palette = None
        for key, (_node, binding, enabled, _tooltip) in self.screen.active_bindings.items():
            if app.ENABLE_COMMAND_PALETTE and key == app.COMMAND_PALETTE_BINDING:
                palette = (binding.key, app.get_key_display(binding), "palette", enabled, True, 0)
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            row = KEYS_BY_ACTION.get(binding.action)
            if row is not None and row.when and matters is not None and not matters(row.when):
                continue
            label = binding.description if row is None else row.bar_label
            priority = 0 if row is None else row.priority
            entry = (binding.key, app.get_key_display(binding), label, enabled, False, priority)
            ranked.append((priority, len(ranked), entry))
        entries = [entry for *_rank, entry in sorted(ranked)]
        if palette is not None:
            entries.append(palette)
        return tuple(entries)

    def _fitting(self, entries: Sequence[Entry]) -> list[Entry]:
        """``entries`` that fit the width: the lowest-priority keys go first; before a key
        that matters (priority under ``SPARE``) goes, the palette key loses its label."""
        width = max(1, self.size.width)
        kept = list(entries)

        def length(entry: Entry) -> int:
            _key, display, label, _enabled, palette, _priority = entry
            return len(display) + (len(label) + 1 if label else 0) + (2 if palette else 1)

        while kept and sum(map(length, kept)) > width + 1:  # the last key's space is the gap
            left = [e for e in kept if not e[4]]
            palette = next((e for e in kept if e[4] and e[2]), None)
            if palette is not None and (not left or left[-1][5] < SPARE):
                kept[kept.index(palette)] = (*palette[:2], "", *palette[3:])
                continue
            kept.remove(left[-1] if left else kept[-1])
        return kept

    def _render_entries(self, entries) -> Text:
        key_style = self.app.get_css_variables()  # resolved theme colours
        key_colour = key_style.get("footer-key-foreground", "")
        text = Text(no_wrap=True, overflow="crop")
        spans: list[tuple[int, int, str]] = []
        width = max(1, self.size.width)
        entries = self._fitting(entries)
        right = [e for e in entries if e[4]]
        left = [e for e in entries if not e[4]]
        for key, display, description, enabled, *_ in left:
            start = len(text)
            dim = "" if enabled else " dim"
            text.append(display, style=f"bold {key_colour}{dim}".strip())
            if description:
                text.append(" " + description, style="dim" if not enabled else "")
            spans.append((start, len(text), key))
            text.append(" ")
        for key, display, description, *_ in right:
            label = Text()
            label.append("▏")
            label.append(display, style=f"bold {key_colour}".strip())
            if description:
                label.append(" " + description)
            gap = width - len(text) - len(label)  # the last key's space separates
            if gap < 0:
                break
            text.append(" " * gap)
            start = len(text)
            text.append_text(label)
            spans.append((start, len(text), key))
        self._spans = spans
        return text

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return


class DialogKeys:
    """A mixin for a ``ModalScreen``: the dialog's own key bar on the bottom line (its
    ``BINDINGS`` with ``show=True`` and their descriptions). Textual calls the handlers of
    every class along the MRO, so a dialog's own ``on_mount`` runs as well."""

    def on_mount(self) -> None:
        self.mount(KeyBar(id="dialog-keys"))  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        for bar in self.query(KeyBar):  # type: ignore[attr-defined]
            bar.refresh_keys()
