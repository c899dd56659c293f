"""Every key of the app, in one table: the main screen's bindings, the filter keys, and the
keys of the tree, the preview table and the dialogs.

The main screen's ``BINDINGS`` are built here (:func:`main_bindings`), so the key bar (which
shows the bindings), the help screen (:func:`help_sections`), the command palette
(:data:`HELP_TEXT`) and the README's key table (:func:`markdown_table`) all read the same
rows. After changing a row, regenerate the README table::

    python -m inittui.tui.keys --markdown     # prints the table
    python docs/generate.py                   # writes it into README.md

(``tests/test_docs.py`` fails while the README's table differs from the generated one.)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding

from inittui.tui.legend import TREE_LEGEND


@dataclass(frozen=True)
class MainKey:
    """One binding of the main screen.

    ``label`` is what the command palette shows; ``help`` is the sentence the help screen,
    the palette and the README show; ``show`` lets the key bar show it, as ``bar`` (a short
    label); ``priority`` orders the bar (lower first: where the bar is short the last ones
    go); ``when`` names the state in which the key matters (the app's ``key_matters``:
    ``node_rules``, ``can_undo``, ``can_redo``, ``preview``); None: always."""

    key: str
    action: str
    label: str
    help: str
    id: str
    show: bool = True
    bar: str = ""
    priority: int = 50
    when: str | None = None

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.label, id=self.id, show=self.show)

    @property
    def bar_label(self) -> str:
        return self.bar or self.label.lower()


MAIN_KEYS: tuple[MainKey, ...] = (
    MainKey("f1", "help", "Help", "Help: this list of keys", "help", priority=95),
    MainKey(
        "question_mark",
        "legend",
        "Keys here",
        "The tree markers and the keys that matter where the focus is (? esc q close)",
        "legend",
        bar="keys",
        priority=90,
    ),
    MainKey(
        "slash",
        "filter",
        "Filter",
        "Filter the tree by name or type (esc clears)",
        "filter",
        priority=80,
    ),
    MainKey(
        "a",
        "assign",
        "Assign",
        "Assign a scheme to the selected node (this node, subtree or type)",
        "assign",
        priority=10,
    ),
    MainKey(
        "x",
        "clear_node",
        "Clear",
        "Clear the rules set on the selected node itself",
        "clear",
        priority=15,
        when="node_rules",
    ),
    MainKey(
        "p",
        "preview",
        "Preview",
        "Run the preview: per-layer output std, current vs planned",
        "preview",
        priority=20,
    ),  # fmt: skip
    MainKey(
        "b",
        "toggle_backward",
        "Backward",
        "Toggle the backward pass (gradient std) in the preview",
        "backward",
        bar="grad",
        priority=40,
        when="preview",
    ),
    MainKey(
        "r",
        "rules",
        "Rules",
        "Show the plan's rules: enter edits, J/K move, delete removes (r again hides)",
        "rules",
        priority=62,
    ),
    MainKey(
        "c",
        "compare",
        "Compare",
        "Compare the working plan with a plan file, a preset or a checkpoint, per parameter (p: preview)",
        "compare",
        priority=70,
    ),
    MainKey(
        "v",
        "toggle_plot",
        "Plot",
        "Preview pane: table / plot of std vs depth (log scale; gradients after b)",
        "plot",
        show=False,
    ),
    MainKey(
        "i",
        "inputs",
        "Inputs",
        "Set the preview's inputs: shapes, dtypes or an inputs file",
        "inputs",
        show=False,
    ),
    MainKey(
        "t",
        "toggle_traceback",
        "Traceback",
        "Show or hide the traceback of the last preview failure",
        "traceback",
        show=False,
    ),
    MainKey(
        "d",
        "device",
        "Device",
        "Choose the device the model and the preview run on",
        "device",
        bar="dev",
        priority=55,
    ),
    MainKey(
        "e",
        "export",
        "Export",
        "Export the init script, a checkpoint and/or the plan",
        "export",
        priority=30,
    ),
    MainKey(
        "s",
        "save",
        "Save",
        "Save the plan (TOML; asks for a path the first time)",
        "save",
        priority=32,
    ),
    MainKey(
        "o",
        "open_plan",
        "Open",
        "Open a plan file (replaces the current plan; u undoes)",
        "open",
        priority=50,
    ),
    MainKey("u", "undo", "Undo", "Undo the last plan change", "undo", priority=25, when="can_undo"),
    MainKey("U", "redo", "Redo", "Redo", "redo", priority=26, when="can_redo"),
    MainKey(
        "escape",
        "escape",
        "Cancel / clear",
        "Cancel running work (statistics, preview) or clear the filter",
        "cancel",
        show=False,
    ),
    MainKey(
        "tab",
        "app.focus_next",
        "Next pane",
        "Move the focus to the next pane",
        "focus-next",
        show=False,
    ),  # fmt: skip
    MainKey(
        "q",
        "quit_app",
        "Quit",
        "Quit (asks first when the plan has unsaved changes)",
        "quit",
        priority=58,  # every terminal app's way out: shown at 80 columns when room allows
    ),
)
# The command palette's key (Textual's own binding), listed with the main keys.
PALETTE_KEY = (
    "ctrl+p",
    "Command palette: every action, then Textual's; type a module path to go to it",
)
# What the key bar shows while a filter is typed: (key, shown as, what it does).
FILTER_KEYS: tuple[tuple[str, str, str], ...] = (
    ("enter", "enter", "Keep filter"),
    ("escape", "esc", "Clear filter"),
    ("backspace", "⌫", "Delete"),
    ("ctrl+u", "^u", "Clear text"),
    ("down", "↑↓", "Move"),
)
FILTER_START = ("/", "Type a filter (name, path or type); the tree keeps the focus")
TREE_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ j k", "Move"),
    ("g G / home end", "First / last line"),
    ("pgup pgdn", "Page up / down"),
    ("enter / space", "Expand or collapse"),
    ("→ l / ← h", "Expand / collapse or go to parent"),
    ("shift+↑ ↓", "Previous / next sibling"),
    ("shift+←", "Parent"),
)
# The rules pane's own keys: (key, action, bar label, help). Its widget binds them.
RULES_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("enter", "edit", "edit", "Open the assign dialog for the highlighted rule"),
    ("J", "move(1)", "down", "Move the rule down (later rules win)"),
    ("K", "move(-1)", "up", "Move the rule up"),
    ("delete", "remove", "remove", "Remove the rule"),
    ("escape", "close", "close", "Hide the rules pane (r too)"),
)
COMPARE_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ j k", "Move"),
    ("p", "Preview both sides: per-layer output std A vs B"),
    ("esc / q", "Close"),
)
PREVIEW_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ j k", "Move; the tree follows"),
    ("g G / Home End", "First / last row"),
    ("n / N", "Next / previous flagged layer (!! error, ! warning, ~ info)"),
    ("w", "Sort: worst first (largest |log plan/now|) / model order"),
    ("v", "Plot: std vs depth, now (o) vs plan (x) vs theory (+)"),
    ("enter", "Go to the module in the tree"),
)
DIALOG_KEYS: tuple[tuple[str, str], ...] = (
    ("Keys here (?)", "j k g G home end scroll; ?, esc or q close (q does not quit)"),
    ("Assign", "tab moves between fields; enter or ctrl+s assigns; space toggles; esc cancels"),
    ("Export", "enter exports; ctrl+y copies the script; esc cancels; the paths are kept"),
    ("Inputs", "enter (or ctrl+s) uses the inputs; esc cancels"),
    ("Confirm", "y yes; n / esc no"),
)
# The key bar reads a main binding's row by its action.
KEYS_BY_ACTION: dict[str, MainKey] = {key.action: key for key in MAIN_KEYS}
# The palette and the help screen describe a binding by its label.
HELP_TEXT: dict[str, str] = {key.label: key.help for key in MAIN_KEYS}

Sections = list[tuple[str, list[tuple[str, str]]]]


def main_bindings() -> list[Binding]:
    """The main screen's ``BINDINGS``."""
    return [key.binding() for key in MAIN_KEYS]


@functools.cache
def _plain_app() -> App:
    return App()


def key_display(binding: Binding) -> str:
    """How Textual shows a binding's key (``?`` for ``question_mark``, ``esc``) outside a
    running app; inside, the app's own ``get_key_display`` is passed instead."""
    return _plain_app().get_key_display(binding)


def pane_sections() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """The keys of each pane that has its own, by the pane's widget id: ``{id: (section
    title, rows)}`` (the help screen lists them all, the ``?`` overlay the focused one)."""
    return {
        "tree": ("Module tree", list(TREE_KEYS)),
        "preview": ("Preview table", list(PREVIEW_KEYS)),
        "rules": (
            "Rules pane",
            [("↑ ↓ j k", "Move"), *((k, what) for k, _a, _b, what in RULES_KEYS)],
        ),
    }


def help_sections(display: Callable[[Binding], str] = key_display) -> Sections:
    """The help screen: ``(section title, [(key, what it does), ...])``."""
    main = [(display(key.binding()), key.help) for key in MAIN_KEYS]
    main.append(PALETTE_KEY)
    filtering = [FILTER_START, *((shown, what) for _key, shown, what in FILTER_KEYS)]
    panes = pane_sections()
    return [
        ("Main", main),
        panes["tree"],
        ("Tree markers", list(TREE_LEGEND)),
        ("Filter", filtering),
        panes["preview"],
        panes["rules"],
        ("Compare", list(COMPARE_KEYS)),
        ("Dialogs", list(DIALOG_KEYS)),
    ]


def overlay_sections(
    focus: str | None,
    matters: Callable[[str], bool],
    display: Callable[[Binding], str] = key_display,
) -> Sections:
    """The ``?`` overlay: the focused pane's keys (``focus`` is its widget id), the tree
    markers, then the main keys that matter now (``matters(MainKey.when)``, as the key bar
    asks) in the key bar's order (shown keys by priority, then the others; the overlay's
    own ``?`` left out: its hint says how to close it)."""
    sections: Sections = []
    pane = pane_sections().get(focus or "")
    if pane is not None:
        sections.append((f"Here: {pane[0].lower()}", pane[1]))
    sections.append(("Tree markers", list(TREE_LEGEND)))
    rows = [key for key in MAIN_KEYS if key.action != "legend"]
    rows = [key for key in rows if key.when is None or matters(key.when)]
    ranked = sorted(rows, key=lambda key: (not key.show, key.priority if key.show else 0))
    main = [(display(key.binding()), key.help) for key in ranked]
    main.append(PALETTE_KEY)
    sections.append(("Keys that matter now", main))
    return sections


def markdown_table() -> str:
    """The README's key table: every section of the help screen, in order."""
    lines = ["| key | action |", "|---|---|"]
    for title, rows in help_sections():
        lines.append(f"| **{title}** | |")
        for key, what in rows:
            cell = key if title == "Dialogs" else f"`{key}`"
            escaped = what.replace("|", "\\|")
            lines.append(f"| {cell} | {escaped} |")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- generated: keys (inittui/tui/keys.py; python docs/generate.py) -->\n"
README_END = "<!-- end: keys -->\n"


def readme_with_table(readme: str) -> str:
    """``readme`` with the text between the key-table markers replaced by the table."""
    start = readme.index(README_BEGIN) + len(README_BEGIN)
    end = readme.index(README_END, start)
    return readme[:start] + markdown_table() + readme[end:]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--markdown"]:
        print("usage: python -m inittui.tui.keys --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
