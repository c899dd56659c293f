"""The rules pane (``r``): every rule of the working plan in order, with its selector,
params glob, scheme, arguments (expressions as written), split and how many parameters it
decides; a rule that decides nothing says so in words. ``enter`` opens the assign dialog
for the highlighted rule, ``J``/``K`` move it, ``delete`` removes it; every change goes
through the app's plan path (resolved in a worker, one undo step each)."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from inittui.core.plan import Plan, ResolvedPlan, Rule
from inittui.core.plan.lints import rule_counts as core_rule_counts
from inittui.tui.keys import RULES_KEYS
from inittui.tui.session import Session

UNUSED = "(decides nothing)"


def rule_counts(resolved: ResolvedPlan) -> list[int]:
    """How many parameters each rule of ``resolved``'s plan decides (``keep`` included)."""
    return core_rule_counts(resolved.decided_by, len(resolved.plan.rules))


def moved_rule(plan: Plan, index: int, delta: int) -> Plan | None:
    """``plan`` with rule ``index`` moved ``delta`` places (-1 up, +1 down; later rules
    win); None when it cannot move that way."""
    target = index + delta
    if not (0 <= index < len(plan.rules) and 0 <= target < len(plan.rules)):
        return None
    rules = list(plan.rules)
    rules.insert(target, rules.pop(index))
    return dataclasses.replace(plan, rules=tuple(rules))


def rule_node(session: Session, index: int) -> str:
    """The module the assign dialog opens on for rule ``index``: its path when the rule
    names one, else the module of the first parameter it decides, else the root."""
    rule = session.plan.rules[index]
    if rule.select in session.index.modules:
        return rule.select
    subtree = rule.select.removesuffix(".**")
    if subtree in session.index.modules and rule.select.endswith(".**"):
        return subtree
    for name, decider in session.resolved.decided_by.items():
        if decider == index:
            return session.index.module_of_param(name) or ""
    return ""


def rule_arguments(rule: Rule) -> str:
    """The scheme's arguments and the extension keys, as written in the plan (an
    expression in quotes, a number as it prints)."""
    parts = [f"{name}={value!r}" for name, value in rule.args.items()]
    return ", ".join([*parts, *rule.options()])


def count_text(count: int) -> Text:
    if count:
        return Text(f"{count} param{'s' if count != 1 else ''}", style="green")
    return Text(f"0 params  {UNUSED}", style="bold yellow")


def rule_prompt(index: int, rule: Rule, count: int) -> Text:
    """One rule: ``N select [params]  · count`` then ``scheme  arguments``."""
    text = Text(no_wrap=False, overflow="fold")
    text.append(f"{index + 1:>2} ", style="bold")
    text.append(rule.select or "(root)", style="bold")
    if rule.params != "*":
        text.append(f" [{rule.params}]", style="cyan")
    text.append("  ")
    text.append_text(count_text(count))
    text.append("\n   ")
    text.append(rule.scheme, style="bold magenta")
    arguments = rule_arguments(rule)
    if arguments:
        text.append("  " + arguments)
    if rule.note:
        text.append(f"\n   # {rule.note}", style="dim")
    return text


class RulesPane(OptionList):
    """The working plan's rules, one option per rule (its index is the option's id)."""

    DEFAULT_CSS = """
    RulesPane {
        height: 1fr;
        border: round $primary 40%;
        border-title-color: $text-muted;
        background: transparent;
        scrollbar-size-vertical: 1;
    }
    RulesPane:focus {
        border: round $accent;
        border-title-color: $accent;
        border-title-style: bold;
    }
    """

    BINDINGS = [
        Binding("j", "cursor_down", "down", show=False),
        Binding("k", "cursor_up", "up", show=False),
        *(
            Binding(key, action, label, id=f"rules.{action.split('(')[0]}", show=True)
            for key, action, label, _help in RULES_KEYS
        ),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple | None = None
        self.border_title = "rules"

    def show_rules(self, resolved: ResolvedPlan, highlight: int | None = None) -> None:
        """List ``resolved``'s rules (again only when they changed); the highlight stays on
        its index or moves to ``highlight``."""
        counts = rule_counts(resolved)
        shown = (resolved.plan.rules, tuple(counts))
        unused = counts.count(0)
        self.border_title = f"rules · {len(counts)}" + (
            f" · {unused} decide nothing" if unused else ""
        )
        keep = self.highlighted if highlight is None else highlight
        keep = 0 if keep is None else keep
        if shown != self._shown:
            self._shown = shown
            self.clear_options()
            rules = resolved.plan.rules
            if rules:
                self.add_options(
                    [
                        Option(rule_prompt(i, rule, counts[i]), id=str(i))
                        for i, rule in enumerate(rules)
                    ]
                )
            else:
                self.add_option(
                    Option(Text("no rules yet: press a on a node to assign a scheme", "dim"),
                           id="none", disabled=True)
                )  # fmt: skip
        if self.option_count and keep is not None and self.get_option_at_index(0).id != "none":
            self.highlighted = min(max(keep, 0), self.option_count - 1)

    @property
    def rule_index(self) -> int | None:
        """The highlighted rule's index, None when there is none."""
        index = self.highlighted
        if index is None or not self.option_count:
            return None
        option = self.get_option_at_index(index)
        return None if option.id in (None, "none") else int(option.id)

    # The actions call the app: every plan change goes through its one path.

    def action_edit(self) -> None:
        index = self.rule_index
        if index is not None:
            self.app.edit_rule(index)  # type: ignore[attr-defined]

    def action_move(self, delta: int) -> None:
        index = self.rule_index
        if index is not None:
            self.app.move_rule(index, delta)  # type: ignore[attr-defined]

    def action_remove(self) -> None:
        index = self.rule_index
        if index is not None:
            self.app.remove_rule(index)  # type: ignore[attr-defined]

    def action_close(self) -> None:
        self.app.close_rules()  # type: ignore[attr-defined]
