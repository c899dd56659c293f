"""Assign a scheme to a node: scope, parameter glob, scheme, its arguments (validated as
you type) and the expected std per parameter. Confirming resolves the new plan in a worker;
an error keeps the dialog open with the message."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    Label,
    OptionList,
    RadioButton,
    RadioSet,
    Select,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from inittui.core.errors import InittuiError
from inittui.core.plan import Plan, ResolvedPlan, Rule, RuleVerdict, resolve_plan
from inittui.core.plan.expr_context import constructor_arguments
from inittui.core.schemes import ROWS, Scheme, SchemeError, get_scheme
from inittui.tui.session import (
    Coverage,
    Session,
    rules_set_on,
    subtree_select,
    with_assignment,
)
from inittui.tui.textual_private import PromptFrames, draw_off_screen
from inittui.tui.widgets.arg_form import ArgForm
from inittui.tui.widgets.describe import expected_piece
from inittui.tui.widgets.text import error_text

SCOPES = ("node", "subtree", "type")
FIRST_ROW = next(iter(ROWS))  # what a node without a rule of its own starts on


@dataclass(frozen=True)
class Assigned:
    """What the dialog returns: the rule, the new plan and its resolution."""

    rule: Rule
    plan: Plan
    resolved: ResolvedPlan


def _number_text(value: float | None) -> str:
    return "" if value is None else str(value)


class AssignScreen(PromptFrames, ModalScreen[Assigned | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="assign.cancel"),
        Binding("ctrl+s", "confirm", "Assign", id="assign.confirm"),
    ]

    class Checked(Message):
        def __init__(self, result: Assigned) -> None:
            super().__init__()
            self.result = result

    def __init__(self, session: Session, path: str) -> None:
        super().__init__(classes="dialog-screen")
        self.session = session
        self.valid_args: dict[str, object] | None = None
        self._form_scheme: str | None = None
        self._styled_for: str | None = None  # the theme its styles were last worked out for
        self._aim(path)

    def _aim(self, path: str) -> None:
        """What the dialog is about: the node at ``path`` and the rule set on it, if any."""
        session = self.session
        self.path = path
        self.record = session.index.modules[session.index.resolve_path(path)]
        self.module = session.tree.module_objects.get(self.record.path)
        self.scheme_name = FIRST_ROW
        self.scope = "node" if self.record.param_names else "subtree"
        self.prefill: dict[str, object] = {}
        existing = rules_set_on(session.plan, path)
        if existing:
            rule = session.plan.rules[existing[-1]]
            self.scope = "node" if rule.select == path else "subtree"
            self.scheme_name = rule.scheme
            self.prefill = dict(rule.args)
            self.initial_params = rule.params
            self.initial_per_gate = rule.per_gate
            self.initial_forget = rule.forget_bias
            self.initial_scale = rule.scale
        else:
            self.initial_params = "*"
            self.initial_per_gate = False
            self.initial_forget = None
            self.initial_scale = None
        self.valid_args = None

    def _title(self) -> str:
        return f"Assign a scheme: {self.path or '(root)'} ({self.record.type})"

    def reopen(self, path: str) -> None:
        """Point this dialog, mounted by an earlier open, at ``path``: every field as a new
        dialog would show it. The app keeps one dialog per session, because composing its
        forty widgets and their styles anew took most of a 100 ms keypress."""
        self._aim(path)
        quiet = (Input.Changed, Checkbox.Changed, Select.Changed, OptionList.OptionHighlighted)
        with self.prevent(*quiet):
            self.query_one(".assign-dialog").border_title = self._title()
            type_button = self.query_one("#scope-type", RadioButton)
            type_button.label = f"every {self.record.type}"
            # The RadioSet turns the other buttons off; its Changed finds the scope set.
            self.query_one(f"#scope-{self.scope}", RadioButton).value = True
            self.query_one("#params", Input).value = self.initial_params
            self.query_one("#scale", Input).value = _number_text(self.initial_scale)
            self.query_one("#per-gate", Checkbox).value = self.initial_per_gate
            self.query_one("#forget-bias", Input).value = _number_text(self.initial_forget)
            self.query_one("#assign-error", Static).update("")
            for form in self.query(ArgForm):
                form.fill(self.prefill if form.scheme.name == self.scheme_name else {})
            self.refresh_scope()
        self.query_one("#schemes", OptionList).focus()

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Everything the first frame shows is computed here, so that the dialog is laid
        # out and rendered once (mounting the form or resizing afterwards costs a frame).
        covered = self.covered(self.initial_params.strip() or "*")
        recurrent, lstm_bias = covered.recurrent, covered.lstm_bias
        options = self._scope_options(covered, self.initial_per_gate and bool(recurrent))
        self._form_scheme = self.scheme_name
        with Vertical(classes="dialog assign-dialog") as box:
            box.border_title = self._title()
            with Horizontal(classes="row"):
                yield Label("scope", classes="field-label")
                with RadioSet(id="scope", compact=True):
                    yield RadioButton("this node", value=self.scope == "node", id="scope-node")
                    yield RadioButton(
                        "+ subtree", value=self.scope == "subtree", id="scope-subtree"
                    )
                    yield RadioButton(
                        f"every {self.record.type}", value=self.scope == "type", id="scope-type"
                    )
            with Horizontal(classes="row"):
                yield Label("params", classes="field-label")
                yield Input(
                    self.initial_params,
                    id="params",
                    compact=True,
                    placeholder="* or weight or bias …",
                )
                yield Label("scale", classes="field-label short")
                yield Input(
                    _number_text(self.initial_scale),
                    id="scale",
                    compact=True,
                    placeholder="none",
                )
            with Horizontal(classes="row", id="recurrent-row") as row:
                row.display = bool(recurrent)
                yield Checkbox("per gate", self.initial_per_gate, id="per-gate", compact=True)
                forget_label = Label("forget bias", classes="field-label", id="forget-label")
                forget_label.display = bool(lstm_bias)
                yield forget_label
                forget = Input(
                    _number_text(self.initial_forget),
                    id="forget-bias",
                    compact=True,
                    placeholder="none",
                )
                forget.display = bool(lstm_bias)
                yield forget
            with Horizontal(id="assign-body") as body:
                body.styles.height = self._body_height(bool(recurrent))
                yield OptionList(*options, id="schemes")
                with VerticalScroll(id="args"):
                    yield Static(self._summary_text(), id="scheme-summary")
                    with Vertical(id="arg-fields"):
                        yield self._arg_form()
            yield Static("", id="expected")
            yield Static("", id="assign-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Assign (enter)", variant="primary", id="assign", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        if not self.query("#schemes"):  # the app quit while the dialog was being composed
            return
        self._highlight_scheme()
        self.query_one("#schemes", OptionList).focus()
        self.validate_form()

    def on_resize(self) -> None:
        self.fit_body()

    def draw_off_screen(self) -> None:
        """Lay out and draw the mounted dialog while another screen is shown (widgets
        sized, lists measured, lines cached), so that its first showing only shows it."""
        if self.is_attached and not self.is_current:
            draw_off_screen(self)
            self._styled_for = self.app.theme

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # Shown again (see reopen): its widgets kept their styles, and every class reopen
        # changed restyled its own widget; restyling all forty costs a tenth of a keypress.
        # A new theme still restyles everything.
        theme = self.app.theme
        if self._styled_for == theme:
            event.refresh_styles = False
        self._styled_for = theme
        super()._on_screen_resume(event)

    def fit_body(self) -> None:
        """The scheme list takes the rows the terminal has left (all 20 when it can)."""
        height = self._body_height(bool(self.query_one("#recurrent-row").display))
        body = self.query_one("#assign-body")
        if body.styles.height is None or body.styles.height.cells != height:
            body.styles.height = height

    def _body_height(self, recurrent: bool) -> int:
        rows = self.app.size.height - 15 - (2 if recurrent else 0)
        return max(4, min(len(ROWS), rows))

    # -- scope and scheme list --------------------------------------------------------

    @property
    def select(self) -> str:
        if self.scope == "type":
            return f"type:{self.record.type}"
        if self.scope == "subtree":
            return subtree_select(self.path)
        return self.path

    def covered(self, glob: str | None = None) -> Coverage:
        """The parameters the scope and glob reach (remembered: big models ask often)."""
        if glob is None:
            glob = self.query_one("#params", Input).value.strip() or "*"
        return self.session.index.covered(self.select, glob)

    def _scope_options(self, covered: Coverage, per_gate: bool) -> list[Option]:
        """The scheme list for ``covered`` (✗ where a row does not apply, as the resolver
        judges it with the row's sample arguments); sets ``reasons`` and ``covered_now``."""
        options: list[Option] = []
        self.reasons: dict[str, str | None] = {}
        for row in ROWS.values():
            verdict = self._try_row(covered, row, per_gate)
            self.reasons[row.name] = verdict.why
            style = "bold" if row.per_module else ""
            if verdict.ok:
                options.append(Option(Text(row.name, style=style), id=row.name))
            else:
                options.append(Option(Text(f"✗ {row.name}", style="dim"), id=row.name))
        self.covered_now = covered
        return options

    def _try_row(self, covered: Coverage, row: Scheme, per_gate: bool) -> RuleVerdict:
        """The verdict on ``row`` with its sample arguments for ``covered``."""
        rule = Rule(
            self.select, row.name, params=covered.glob, args=row.sample_args(), per_gate=per_gate
        )
        return covered.judge(rule, self._model())

    def _model(self):  # noqa: ANN202 - the session's torch model
        return self.session.loaded.model  # type: ignore[attr-defined]

    def _highlight_scheme(self) -> None:
        names = list(ROWS)
        if self.scheme_name in names:
            self.query_one("#schemes", OptionList).highlighted = names.index(self.scheme_name)

    def refresh_scope(self) -> None:
        covered = self.covered()
        recurrent, lstm_bias = covered.recurrent, covered.lstm_bias
        if self.query_one("#recurrent-row").display != bool(recurrent):
            self.query_one("#recurrent-row").display = bool(recurrent)
            self.fit_body()
        self.query_one("#forget-label").display = bool(lstm_bias)
        self.query_one("#forget-bias").display = bool(lstm_bias)
        per_gate = self.query_one("#per-gate", Checkbox).value and bool(recurrent)
        shown = self.reasons
        options = self._scope_options(covered, per_gate)
        if self.reasons != shown:  # the same ✗ marks: keep the list as it is
            self.query_one("#schemes", OptionList).set_options(options)
        self._highlight_scheme()
        self.refresh_form()

    @on(RadioSet.Changed, "#scope")
    def scope_changed(self, event: RadioSet.Changed) -> None:
        if self.scope != SCOPES[event.index]:
            self.scope = SCOPES[event.index]
            self.refresh_scope()

    @on(Input.Changed, "#params")
    @on(Checkbox.Changed, "#per-gate")
    def params_changed(self) -> None:
        self.refresh_scope()

    @on(OptionList.OptionHighlighted, "#schemes")
    def scheme_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.scheme_name:
            self.scheme_name = event.option.id
            self.prefill = {}
            self.refresh_form()

    @on(OptionList.OptionSelected, "#schemes")
    def scheme_selected(self) -> None:
        self.action_confirm()

    def choose(self, name: str) -> None:
        """Highlight scheme ``name`` (as the keyboard would)."""
        names = list(ROWS)
        self.query_one("#schemes", OptionList).highlighted = names.index(name)
        self.scheme_name = name
        self.prefill = {}
        self.refresh_form()

    # -- argument form ----------------------------------------------------------------

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

    def _optional_number(self, selector: str, what: str) -> float | None:
        text = self.query_one(selector, Input).value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise InittuiError(f"{what} must be a number, got {text!r}") from None

    def build_rule(self) -> Rule:
        """The rule the form describes; :class:`InittuiError` with what is wrong."""
        scheme = self._scheme()
        reason = self.reasons.get(self.scheme_name)
        if reason:
            raise InittuiError(f"{self.scheme_name} does not apply here{self._suggestion()}")
        args = scheme.validate(self.raw_args())
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
        )

    @on(Input.Changed)
    @on(Select.Changed)
    def field_changed(self, event: Message) -> None:
        if getattr(event, "input", None) is not None and event.input.id == "params":  # type: ignore
            return
        self.validate_form()

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
        index = len(with_assignment(self.session.plan, rule).rules) - 1
        return self.covered_now.judge(rule, self._model(), index)

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
        return text

    # -- confirm ----------------------------------------------------------------------

    @on(Input.Submitted)
    @on(Button.Pressed, "#assign")
    def action_confirm(self) -> None:
        if not self.validate_form():
            return
        if not self.covered_now:
            self.query_one("#assign-error", Static).update(
                Text(
                    "this scope covers no parameters; pick another scope or params glob",
                    style="bold red",
                )
            )
            return
        rule = self.build_rule()
        self.query_one("#assign-error", Static).update(Text("checking the plan…", style="dim"))
        self.check(rule)

    @work(thread=True, exclusive=True, exit_on_error=False, group="assign-check")
    def check(self, rule: Rule) -> None:
        plan = with_assignment(self.session.plan, rule)
        args = constructor_arguments(self.session.loaded)  # type: ignore
        resolved = resolve_plan(
            plan,
            self.session.loaded.model,
            self.session.tree,
            constructor_args=args,  # type: ignore
        )
        self.post_message(self.Checked(Assigned(rule, plan, resolved)))

    def on_assign_screen_checked(self, message: AssignScreen.Checked) -> None:
        self.dismiss(message.result)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            text = error_text(event.worker.error)
            self.query_one("#assign-error", Static).update(Text(text, style="bold red"))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "assign-check")
        self.dismiss(None)
