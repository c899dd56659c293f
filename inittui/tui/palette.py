"""The command palette: the app's actions first (every key's action, one command per plan
rule to remove it), then Textual's generic commands (theme, screenshot, ...), and "Go to
module: PATH" commands that move the tree to a module (fuzzy over the module paths)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from inittui.tui.keys import HELP_TEXT

if TYPE_CHECKING:
    from inittui.tui.app import InitApp

Command = tuple[str, str, Callable[[], object]]

GENERIC_SCORE = 0.9  # Textual's commands rank just below the app's on an equal match
GOTO_PREFIX = "Go to module: "
GOTO_CANDIDATES = 300  # paths scored with the fuzzy matcher, at most (10k modules: instant)
GOTO_RESULTS = 20  # "Go to module" hits shown, at most


def palette_commands(app: InitApp) -> list[Command]:
    """The app's own commands: ``(name, help, callback)``."""

    commands: list[Command] = []
    for binding in app.BINDINGS:
        if not isinstance(binding, Binding) or binding.id in ("focus-next",):
            continue
        key = app.get_key_display(binding)
        help_text = HELP_TEXT.get(binding.description, binding.description)
        commands.append(
            (
                binding.description,
                f"{help_text} (key {key})",
                partial(app.run_action, binding.action),
            )
        )
    if app.session is not None:
        for i, rule in enumerate(app.session.plan.rules):
            commands.append(
                (
                    f"Remove rule {i + 1}: {rule.describe()}",
                    "remove this rule from the plan (u undoes)",
                    partial(app.remove_rule, i),
                )
            )
    return commands


def go_to_module(app: InitApp, path: str) -> None:
    """Move the tree's cursor to ``path`` (its ancestors expanded) and focus the tree."""
    tree = app.tree_widget
    if tree.reveal(path):
        tree.focus()


def module_candidates(paths: list[str], query: str, limit: int = GOTO_CANDIDATES) -> list[str]:
    """Up to ``limit`` of ``paths`` that hold the characters of ``query`` in order
    (case-insensitive): first those containing it whole, then the rest, each in the
    model's order. One compiled pattern per query, so 10,000 paths take a few ms."""
    needle = query.strip().lower()
    if not needle:
        return []
    pattern = re.compile(".*?".join(map(re.escape, needle)), re.IGNORECASE)
    whole: list[str] = []
    loose: list[str] = []
    for path in paths:
        if needle in path.lower():
            whole.append(path)
            if len(whole) >= limit:
                break
        elif len(loose) < limit and pattern.search(path):
            loose.append(path)
    return (whole + loose)[:limit]


def goto_query(query: str) -> str:
    """The module part of a palette query (``go to layers.0`` and ``layers.0`` alike)."""
    text = query.strip()
    low = text.lower()
    for prefix in ("go to module:", "go to module", "go to", "goto"):
        if low.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


class InitCommands(Provider):
    """The app's actions, then Textual's generic commands (the app's
    ``COMMANDS`` holds this provider instead of Textual's own, so the order is ours)."""

    def _commands(self) -> list[Command]:
        return palette_commands(self.app)  # type: ignore[arg-type]

    def _generic(self, discover: bool = False) -> list[Command]:
        return [
            (command.title, command.help, command.callback)
            for command in self.app.get_system_commands(self.screen)
            if command.discover or not discover
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in [*self._commands(), *self._generic(discover=True)]:
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for weight, commands in ((1.0, self._commands()), (GENERIC_SCORE, self._generic())):
            for name, help_text, callback in commands:
                score = matcher.match(name)
                if score > 0:
                    yield Hit(score * weight, matcher.highlight(name), callback, help=help_text)


class ModuleCommands(Provider):
    """``Go to module: PATH`` for the module paths that fuzzily match the query; the tree
    moves there. Only a bounded number of paths is scored (see :func:`module_candidates`)."""

    async def search(self, query: str) -> Hits:
        app: InitApp = self.app  # type: ignore[assignment]
        session = app.session
        needle = goto_query(query)
        if session is None or not needle:
            return
        paths = [m.path for m in session.index.tree.modules if m.path]
        matcher = self.matcher(needle)
        scored = []
        for path in module_candidates(paths, needle):
            score = matcher.match(path)
            if score > 0:
                scored.append((score, path))
        scored.sort(key=lambda hit: -hit[0])
        for score, path in scored[:GOTO_RESULTS]:
            display = Content(GOTO_PREFIX) + matcher.highlight(path)
            yield Hit(
                score * 0.95,  # an action named like the query comes first
                display,
                partial(go_to_module, app, path),
                text=GOTO_PREFIX + path,
                help="move the module tree to this module",
            )
