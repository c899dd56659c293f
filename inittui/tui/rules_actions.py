"""The rules pane's actions (a mixin of :class:`~inittui.tui.app.InitApp`): ``r`` shows
and hides it, its enter edits a rule, J/K move one, and the key bar asks which keys matter
now. Every plan change goes through the app's one path (``resolve_and_commit``: resolved in
a worker, one undo step)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inittui.tui.jobs import WORK_GROUPS
from inittui.tui.session import Session, rules_set_on
from inittui.tui.widgets.rules_pane import RulesPane, moved_rule, rule_node

if TYPE_CHECKING:
    from textual.app import App

    _Base = App[int]
else:
    _Base = object


class RulesActions(_Base):
    """The rules pane's side of the app."""

    session: Session | None
    running: dict[str, str]
    rules_highlight: int | None = None  # where the pane's cursor goes after a change

    def refresh_rules(self) -> None:
        """List the rules again (after a plan change) when the pane is shown."""
        rules = self.query_one("#rules", RulesPane)
        if rules.display and self.session is not None:
            rules.show_rules(self.session.resolved, self.rules_highlight)
            self.rules_highlight = None

    def action_rules(self) -> None:
        """Show the rules pane in the detail's place and focus it; hide it when focused."""
        session = self.require_session()
        if session is None:
            return
        rules = self.query_one("#rules", RulesPane)
        if rules.display and rules.has_focus:
            self.close_rules()
            return
        rules.show_rules(session.resolved)
        rules.display = True
        self.query_one("#detail-pane").display = False
        rules.focus()

    def close_rules(self) -> None:
        """The pane's esc: cancel running work first (as esc does everywhere), else hide."""
        if any(group in self.running for group in WORK_GROUPS):
            self.action_escape()
            return
        rules = self.query_one("#rules", RulesPane)
        if rules.display:
            rules.display = False
            self.query_one("#detail-pane").display = True
            self.tree_widget.focus()

    def edit_rule(self, index: int) -> None:
        """The rules pane's enter: the assign dialog for rule ``index``."""
        session = self.require_session()
        if session is None or index >= len(session.plan.rules):
            return
        # The dialog on the node the rule selects, prefilled with the rule; confirming
        # replaces rule ``index`` in place (one undoable plan change).
        self.tree_widget.reveal(rule_node(session, index))
        self.action_assign(edit=(index, session.plan.rules[index]))

    def move_rule(self, index: int, delta: int) -> None:
        """The rules pane's J/K: rule ``index`` one place down (+1) or up (-1)."""
        session = self.require_session()
        plan = None if session is None else moved_rule(session.plan, index, delta)
        if plan is None:
            return
        self.rules_highlight = index + delta
        where = "down" if delta > 0 else "up"
        self.resolve_and_commit(plan, f"moved rule {index + 1} {where} to {index + delta + 1}")

    def key_matters(self, when: str) -> bool:
        """Whether a key whose row says ``when`` matters now (the key bar asks)."""
        session = self.session
        if session is None:
            return False
        if when == "node_rules":
            return bool(rules_set_on(session.plan, self.selected_path or ""))
        if when == "can_undo":
            return session.history.can_undo
        if when == "can_redo":
            return session.history.can_redo
        if when == "preview":
            return session.preview is not None
        return True
