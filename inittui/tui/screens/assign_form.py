"""The assign dialog's argument form and verdict, as a mixin of
:class:`~inittui.tui.screens.assign.AssignScreen`: the scheme's summary and fields, the rule
the fields describe (float arguments, scale and forget bias may be expressions, ``split`` N
or sizes), its validation as you type, the expected std and the values its expressions take
per parameter. The message handlers stay on the screen (Textual collects them there)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Static

from inittui.core.errors import InittuiError
from inittui.core.plan import Plan, Rule, RuleVerdict
from inittui.core.plan.expr_context import validate_args
from inittui.core.schemes import Scheme, SchemeError, get_scheme
from inittui.tui.screens.assign_scope import parse_split, replaced, values_text
from inittui.tui.session import with_assignment
from inittui.tui.widgets.arg_form import ArgForm
from inittui.tui.widgets.describe import expected_piece

if TYPE_CHECKING:
    from inittui.tui.screens.assign_scope import Prefill
    from inittui.tui.session import Coverage, Session


class FormMixin:
    """The argument form of the assign dialog (see the module docstring)."""

    session: Session
    start: Prefill
    scheme_name: str
    prefill: dict[str, object]
    reasons: dict[str, str | None]
    covered_now: Coverage
    valid_args: dict[str, object] | None
    _form_scheme: str | None

    def _scheme(self) -> Scheme:
        return get_scheme(self.scheme_name)

    def _summary_text(self) -> Text:
        scheme = self._scheme()
        reason = self.reasons.get(self.scheme_name)
        text = Text()
        text.append(self.scheme_name, style="bold green" if reason is None else "bold red")
        text.append(": " + scheme.summary)
        if reason:
            text.append(f"\ndoes not apply: {reason}", style="red")
        notes = self._notes()
        if notes:
            text.append("\n" + notes, style="italic cyan")
        return text

    def _arg_form(self) -> ArgForm:
        return ArgForm(self._scheme(), self.prefill)

    def raw_args(self) -> dict[str, object]:
        forms = self.query(f"#form-{self.scheme_name}")
        return forms.first(ArgForm).raw_args() if forms else {}

    def refresh_form(self) -> None:
        self.query_one("#scheme-summary", Static).update(self._summary_text())
        if self._form_scheme != self.scheme_name:
            self._form_scheme = self.scheme_name
            fields = self.query_one("#arg-fields", Vertical)
            form_id = f"form-{self.scheme_name}"
            for form in fields.children:
                form.display = form.id == form_id
            if not fields.query(f"#{form_id}"):
                fields.mount(self._arg_form())
                self.call_after_refresh(self.validate_form)  # once its fields exist
                return
        self.validate_form()

    def _suggestion(self) -> str:
        """``; set params to weight`` when the scheme applies to the weights alone."""
        scheme = self._scheme()
        glob = self.query_one("#params", Input).value.strip() or "*"
        if scheme.per_module or glob == "weight":
            return ""
        weights = self.covered("weight")
        if weights and self._try_row(weights, scheme, False).ok:
            return "; set params to weight (and give the biases their own rule)"
        return ""

    def _notes(self) -> str:
        covered = getattr(self, "covered_now", None)
        types = () if covered is None else covered.module_types
        notes = []
        if covered is not None and covered.padded_embedding:
            notes.append("Embedding: the padding row is kept at zero after any scheme.")
        scope_note = self._scheme().scope_note
        note = None if scope_note is None else scope_note(types)
        if note:
            notes.append(note)
        if not covered:
            notes.append("This scope covers no parameters.")
        elif covered.type_count > 1 or len(covered) > 2:
            notes.append(f"Covers {len(covered)} parameter(s) in {covered.module_count} module(s).")
        return " ".join(notes)

    def _optional_number(self, selector: str, what: str) -> float | str | None:
        """The field's number; its text when it is not one (an expression: the core
        checks it and says what is wrong)."""
        text = self.query_one(selector, Input).value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return text

    def build_rule(self) -> Rule:
        """The rule the form describes; :class:`InittuiError` with what is wrong."""
        scheme = self._scheme()
        reason = self.reasons.get(self.scheme_name)
        if reason:
            raise InittuiError(f"{self.scheme_name} does not apply here{self._suggestion()}")
        args = validate_args(scheme, self.raw_args(), self.scheme_name)
        recurrent = self.query_one("#recurrent-row").display
        per_gate = bool(recurrent and self.query_one("#per-gate", Checkbox).value)
        forget = (
            self._optional_number("#forget-bias", "forget bias")
            if self.query_one("#forget-bias").display
            else None
        )
        scale = self._optional_number("#scale", "scale")
        params = self.query_one("#params", Input).value.strip() or "*"
        return Rule(
            select=self.select,
            scheme=self.scheme_name,
            params=params,
            args=args,
            per_gate=per_gate,
            forget_bias=forget,
            scale=scale,
            split=parse_split(self.query_one("#split", Input).value),  # type: ignore[arg-type]
        )

    def validate_form(self) -> bool:
        error = self.query_one("#assign-error", Static)
        expected_line = self.query_one("#expected", Static)
        for widget in self.query(".arg"):
            widget.remove_class("-bad")
        try:
            rule = self.build_rule()
        except SchemeError as exc:
            error.update(Text(str(exc), style="bold red"))
            for widget in self.query(".arg"):
                if exc.key and widget.name == exc.key:
                    widget.add_class("-bad")
            expected_line.update("")
            self.valid_args = None
            return False
        except InittuiError as exc:
            error.update(Text(str(exc), style="bold red"))
            expected_line.update("")
            self.valid_args = None
            return False
        verdict = self.judge(rule)
        if not verdict.ok:
            error.update(Text(str(verdict.reason), style="bold red"))
            expected_line.update("")
            self.valid_args = None
            return False
        self.valid_args = dict(rule.args)
        error.update("")
        expected_line.update(self._expected_text(verdict))
        return True

    def judge(self, rule: Rule) -> RuleVerdict:
        """What resolving the plan with ``rule`` added would say about the parameters it
        covers (the resolver's own step builder, remembered per rule)."""
        return self.covered_now.judge(rule, self._model(), self._rule_index(rule))

    def _rule_index(self, rule: Rule) -> int:
        """The index ``rule`` will have in the new plan."""
        if self.start.edit and self.start.rule_index is not None:
            return self.start.rule_index
        return len(with_assignment(self.session.plan, rule).rules) - 1

    def new_plan(self, rule: Rule) -> Plan:
        """The session's plan with ``rule`` added (or, editing, put in its rule's place)."""
        if self.start.edit and self.start.rule_index is not None:
            return replaced(self.session.plan, self.start.rule_index, rule)
        return with_assignment(self.session.plan, rule)

    def _expected_text(self, verdict: RuleVerdict) -> Text:
        text = Text()
        text.append("expected ", style="bold")
        parts: dict[str, str] = {}  # what is shown (without the name) -> the piece
        for param_verdict in verdict.params:
            shown, name = expected_piece(param_verdict)
            parts.setdefault(shown, name + shown)
        pieces = list(parts.values())
        shown = pieces[:4]
        if len(pieces) > 4:
            shown.append(f"+{len(pieces) - 4} more shapes")
        text.append(" · ".join(shown) if shown else "nothing (no parameters in scope)")
        text.append_text(values_text(verdict))
        return text
