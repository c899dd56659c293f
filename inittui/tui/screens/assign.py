"""Assign a scheme to a node: scope, parameter glob, scheme, its arguments (validated as
you type; float arguments, scale and forget bias also take expressions), a split, and the
expected std and the expressions' values per parameter. Prefilled from the rule deciding
the node (or, to edit it in place, a given rule); ``enter`` or ``ctrl+s`` confirms from
every field. Confirming resolves the new plan in a worker; an error keeps the dialog open
with the message. Scopes and prefills: :mod:`.assign_scope`."""

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

from inittui.core.plan import Plan, ResolvedPlan, Rule, RuleVerdict, resolve_plan
from inittui.core.plan.expr_context import constructor_arguments
from inittui.core.schemes import ROWS, Scheme
from inittui.tui.screens.assign_form import FormMixin
from inittui.tui.screens.assign_scope import (
    SCOPES,
    Prefill,
    prefill_for,
    scope_select,
    split_text,
)
from inittui.tui.session import Coverage, Session
from inittui.tui.textual_private import PromptFrames, draw_off_screen
from inittui.tui.widgets.arg_form import ArgForm
from inittui.tui.widgets.keybar import DialogKeys
from inittui.tui.widgets.text import error_text
from inittui.tui.widgets.toggles import MarkedCheckbox, MarkedRadio, ScopeSet

FIRST_ROW = next(iter(ROWS))  # what a node without a rule of its own starts on


@dataclass(frozen=True)
class Assigned:
    """What the dialog returns: the rule, the new plan and its resolution; ``replace``
    is the index of the rule it replaced in place (a dialog opened with ``edit=``)."""

    rule: Rule
    plan: Plan
    resolved: ResolvedPlan
    replace: int | None = None


def _number_text(value: float | str | None) -> str:
    return "" if value is None else str(value)


class AssignScreen(FormMixin, DialogKeys, PromptFrames, ModalScreen[Assigned | None]):
    BINDINGS = [
        # enter from a field that does not take it (scope, per gate, a closed select); an
        # Input's own enter submits, which assigns too
        Binding("enter", "confirm", "Assign", id="assign.enter"),
        Binding("ctrl+s", "confirm", "Assign", id="assign.confirm"),
        Binding("tab", "app.focus_next", "Next field", id="assign.next-field"),
        Binding("escape", "cancel", "Cancel", id="assign.cancel"),
    ]

    class Checked(Message):
        def __init__(self, result: Assigned) -> None:
            super().__init__()
            self.result = result

    def __init__(self, session: Session, path: str, edit: tuple[int, Rule] | None = None) -> None:
        """The dialog on the node at ``path``; ``edit=(rule_index, rule)`` opens it on
        that rule (every field and its select as written) and confirming replaces rule
        ``rule_index`` in place (:attr:`Assigned.replace`)."""
        super().__init__(classes="dialog-screen")
        self.session = session
        self.valid_args: dict[str, object] | None = None
        self._form_scheme: str | None = None
        self._styled_for: str | None = None  # the theme its styles were last worked out for
        self._aim(path, edit)

    def _aim(self, path: str, edit: tuple[int, Rule] | None = None) -> None:
        """What the dialog is about: the node at ``path`` and the rule it starts from."""
        session = self.session
        self.path = path
        self.record = session.index.modules[session.index.resolve_path(path)]
        self.module = session.tree.module_objects.get(self.record.path)
        has_params = bool(self.record.param_names or session.index.tied_here(self.record.path))
        start = prefill_for(session, path, self.record.type, has_params, edit)
        self.start: Prefill = start
        self.scope = start.scope
        self.scheme_name = start.scheme if start.scheme in ROWS else FIRST_ROW
        self.prefill: dict[str, object] = dict(start.args)
        self.initial_params = start.params
        self.initial_per_gate = start.per_gate
        self.initial_forget = start.forget_bias
        self.initial_scale = start.scale
        self.valid_args = None

    def _title(self) -> str:
        where = f"{self.path or '(root)'} ({self.record.type})"
        if self.start.edit and self.start.rule_index is not None:
            return f"Edit rule {self.start.rule_index + 1}: {where}"
        return f"Assign a scheme: {where}"

    def _rule_label(self) -> str:
        start = self.start
        if start.rule_index is None:
            return "rule"
        return f"rule {start.rule_index + 1}: {start.rule_select or '(root)'}"

    def _show_rule_scope(self) -> bool:
        """The "rule N: SELECT" scope: offered when the rule's select is none of the
        node's own scopes."""
        start = self.start
        if start.rule_select is None:
            return False
        return scope_select(self.scope, self.path, self.record.type, None) != start.rule_select

    def reopen(self, path: str, edit: tuple[int, Rule] | None = None) -> None:
        """Point this dialog, mounted by an earlier open, at ``path`` (and ``edit``, as
        the constructor takes it): every field as a new dialog would show it. The app keeps
        one dialog per session, because composing its forty widgets and their styles anew
        took most of a 100 ms keypress."""
        self._aim(path, edit)
        quiet = (Input.Changed, Checkbox.Changed, Select.Changed, OptionList.OptionHighlighted)
        with self.prevent(*quiet):
            self.query_one(".assign-dialog").border_title = self._title()
            self._label_scopes()
            # The RadioSet turns the other buttons off; its Changed finds the scope set.
            self.query_one(f"#scope-{self.scope}", RadioButton).value = True
            self.query_one("#params", Input).value = self.initial_params
            self.query_one("#scale", Input).value = _number_text(self.initial_scale)
            self.query_one("#split", Input).value = split_text(self.start.split)
            self.query_one("#per-gate", Checkbox).value = self.initial_per_gate
            self.query_one("#forget-bias", Input).value = _number_text(self.initial_forget)
            self.query_one("#assign-error", Static).update("")
            for form in self.query(ArgForm):
                form.fill(self.prefill if form.scheme.name == self.scheme_name else {})
            self.refresh_scope()
        self.query_one("#schemes", OptionList).focus()

    def _label_scopes(self) -> None:
        kind = self.record.type
        self.query_one("#scope-type", RadioButton).label = f"every {kind}"
        self.query_one("#scope-type-subtree", RadioButton).label = f"{kind} in subtree"
        rule_button = self.query_one("#scope-rule", RadioButton)
        rule_button.label = self._rule_label()
        rule_button.display = self._show_rule_scope() or self.scope == "rule"

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
            with Horizontal(classes="row", id="scope-row"):
                yield Label("scope", classes="field-label")
                with ScopeSet(id="scope", compact=True):
                    kind = self.record.type
                    labels = ("this node", "+ subtree", f"every {kind}", f"{kind} in subtree")
                    for scope, label in zip(SCOPES, labels, strict=False):
                        yield MarkedRadio(label, value=self.scope == scope, id=f"scope-{scope}")
                    rule_button = MarkedRadio(
                        self._rule_label(), value=self.scope == "rule", id="scope-rule"
                    )
                    rule_button.display = self._show_rule_scope() or self.scope == "rule"
                    yield rule_button
            # The recurrent row comes before params, so that params is always two shift+tabs
            # back from the scheme list (on an LSTM, typing meant for params went to the
            # per-gate checkbox and was lost: the rule kept "*").
            with Horizontal(classes="row", id="recurrent-row") as row:
                row.display = bool(recurrent)
                yield MarkedCheckbox("per gate", self.initial_per_gate, id="per-gate", compact=True)
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
            with Horizontal(id="assign-body") as body:
                body.styles.height = self._body_height(bool(recurrent))
                yield OptionList(*options, id="schemes")
                with VerticalScroll(id="args", can_focus=False):
                    yield Static(self._summary_text(), id="scheme-summary")
                    with Vertical(id="arg-fields"):
                        yield self._arg_form()
                    with Horizontal(classes="row arg-row", id="split-row"):
                        yield Label("split", classes="field-label")
                        yield Input(
                            split_text(self.start.split),
                            id="split",
                            compact=True,
                            placeholder="none (N blocks, or sizes: 512, 128)",
                        )
            yield Static("", id="expected")
            yield Static("", id="assign-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Assign (enter, ctrl+s)", variant="primary", id="assign", compact=True)
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
        rule_row = self.scope == "rule" or self._show_rule_scope()
        rows = self.app.size.height - 16 - (2 if recurrent else 0) - (1 if rule_row else 0)
        return max(4, min(len(ROWS), rows))

    # -- scope and scheme list --------------------------------------------------------

    @property
    def select(self) -> str:
        return scope_select(self.scope, self.path, self.record.type, self.start.rule_select)

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
        scope = (event.pressed.id or "scope-node").removeprefix("scope-")
        if self.scope != scope:
            self.scope = scope
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

    @on(Input.Changed)
    @on(Select.Changed)
    def field_changed(self, event: Message) -> None:
        if getattr(event, "input", None) is not None and event.input.id == "params":  # type: ignore
            return
        self.validate_form()

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
        plan = self.new_plan(rule)
        args = constructor_arguments(self.session.loaded)  # type: ignore
        resolved = resolve_plan(
            plan,
            self.session.loaded.model,
            self.session.tree,
            constructor_args=args,  # type: ignore
        )
        edited = self.start.rule_index if self.start.edit else None
        self.post_message(self.Checked(Assigned(rule, plan, resolved, edited)))

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
