"""The argument fields of one scheme, as the assign dialog shows them: an input per number
or string argument (its range as the placeholder; a float argument also takes an
expression such as ``0.02 / sqrt(2 * config.n_layer)``), a select per argument with
choices."""

from __future__ import annotations

import ast
from collections.abc import Mapping

from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, Select

from inittui.core.plan.expr import ExpressionError, parse_expression
from inittui.core.schemes import REQUIRED, Arg, Scheme, SchemeError
from inittui.tui.widgets.toggles import ChoiceSelect


def parse_value(arg: Arg, text: str) -> object:
    """The text of an argument field as the value ``Scheme.validate`` expects; a float
    argument that is not a literal keeps its text (an expression, checked by the core's
    ``validate_args``)."""
    text = text.strip()
    if arg.kind is str:
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if arg.kind is float:
            try:
                parse_expression(text)
            except ExpressionError as exc:
                raise SchemeError(
                    f'key "{arg.name}" must be a number or an expression, got {text!r} ({exc})',
                    arg.name,
                ) from None
            return text
        kind = "a number" if arg.kind is float else "an integer"
        raise SchemeError(f'key "{arg.name}" must be {kind}, got {text!r}', arg.name) from None
    return value


def field_text(arg: Arg, value: object) -> str:
    """What an argument's input field shows for ``value``."""
    if value is REQUIRED:
        return ""
    if isinstance(value, str):  # a str argument, or a float argument's expression
        return value
    return str(value) if arg.kind is str else repr(value)


def _arg_row(arg: Arg, value: object) -> Widget:
    label = Label(arg.name, classes="field-label")
    label.tooltip = arg.doc
    if arg.choices:
        field: Widget = ChoiceSelect(
            [(str(c), c) for c in arg.choices],
            value=value,
            allow_blank=False,
            name=arg.name,
            classes="arg",
            compact=True,
        )
    else:
        placeholder = "required" if arg.required else ""
        if arg.describe_range():
            placeholder = f"{placeholder} {arg.describe_range()}".strip()
        field = Input(
            field_text(arg, value),
            name=arg.name,
            classes="arg",
            compact=True,
            placeholder=placeholder,
        )
    return Horizontal(label, field, classes="row arg-row")


class ArgForm(Vertical):
    """The fields of ``scheme``'s arguments, filled with ``values`` (else the defaults)."""

    def __init__(self, scheme: Scheme, values: Mapping[str, object]) -> None:
        rows = [_arg_row(arg, values.get(arg.name, arg.default)) for arg in scheme.args]
        super().__init__(*rows, id=f"form-{scheme.name}", classes="arg-form")
        self.scheme = scheme

    def fill(self, values: Mapping[str, object]) -> None:
        """Set every field to ``values`` (else the default), clearing error marks."""
        fields = {w.name: w for w in self.query(".arg")}
        for arg in self.scheme.args:
            field = fields.get(arg.name)
            value = values.get(arg.name, arg.default)
            if isinstance(field, Select):
                field.value = value
            elif isinstance(field, Input):
                field.value = field_text(arg, value)
            if field is not None:
                field.remove_class("-bad")

    def raw_args(self) -> dict[str, object]:
        """The arguments typed or chosen (empty fields left out), parsed, not validated."""
        raw: dict[str, object] = {}
        fields = {w.name: w for w in self.query(".arg")}
        for arg in self.scheme.args:
            widget = fields.get(arg.name)
            if isinstance(widget, Select):
                if widget.value is not Select.NULL:
                    raw[arg.name] = widget.value
            elif isinstance(widget, Input):
                text = widget.value.strip()
                if text:
                    raw[arg.name] = parse_value(arg, text)
        return raw
