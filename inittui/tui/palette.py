"""The command palette: every key's action, and one command per plan rule to remove it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from inittui.tui.keys import HELP_TEXT

if TYPE_CHECKING:
    from inittui.tui.app import InitApp

Command = tuple[str, str, Callable[[], object]]


def palette_commands(app: InitApp) -> list[Command]:
    """The palette's commands: ``(name, help, callback)``."""

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


class InitCommands(Provider):
    """Every action of the app, and one command per plan rule to remove it."""

    def _commands(self) -> list[Command]:
        return palette_commands(self.app)  # type: ignore[arg-type]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
