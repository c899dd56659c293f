"""The inputs editor (``i``): the preview's input shapes (like ``--input-shape``, several
inputs), their dtypes (``--input-dtype``: one, or one per input) or an inputs file (like
``--inputs FILE``), checked as you type with the core's own parsers; the app keeps the
answer for the session and the next preview uses it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from inittui.core.errors import InittuiError
from inittui.tui.textual_private import PromptFrames
from inittui.tui.widgets.keybar import DialogKeys

FileCheck = Callable[[str], None]
"""Reads an inputs file for the model, raising :class:`InittuiError` when it cannot."""


@dataclass(frozen=True)
class ChosenInputs:
    """What the preview is fed: ``shapes`` (``"8,3,32,32"`` each), ``dtype`` (the
    ``--input-dtype`` text) and ``file``; all empty means "as at start": example_inputs or a
    guess from the first layer."""

    shapes: tuple[str, ...] = ()
    dtype: str | None = None
    file: str | None = None

    def describe(self) -> str:
        if self.file:
            return f"inputs from {self.file}" + (f" as {self.dtype}" if self.dtype else "")
        if self.shapes:
            text = " ".join(self.shapes)
            return f"input shape(s) {text}" + (f" as {self.dtype}" if self.dtype else "")
        return "inputs from example_inputs or guessed" + (f" as {self.dtype}" if self.dtype else "")


def split_shapes(text: str) -> list[str]:
    """``"4x3x32x32; 4,10"`` -> ``["4,3,32,32", "4,10"]``: inputs are separated by ``;`` or
    spaces, the sizes of one by ``,`` or ``x`` (``--input-shape``'s form is the comma)."""
    parts = [part for part in re.split(r"[;\s]+", text.strip()) if part]
    return [part.replace("x", ",").replace("X", ",") for part in parts]


def check_inputs(shapes: str, dtype: str, file: str, check_file: FileCheck | None) -> ChosenInputs:
    """The dialog's fields as :class:`ChosenInputs`; the first problem is an
    :class:`InittuiError` (one line, from the core's parsers where they have one)."""
    from inittui.core.probe.inputs import parse_input_dtypes, parse_input_shape

    given = split_shapes(shapes)
    for shape in given:
        parse_input_shape(shape)
    dtypes = parse_input_dtypes(dtype) if dtype.strip() else []
    path = file.strip()
    if path and given:
        raise InittuiError(
            "give an inputs file or shapes, not both (like --inputs / --input-shape)"
        )
    if given and len(dtypes) > 1 and len(dtypes) != len(given):
        raise InittuiError(
            f"{len(dtypes)} dtypes for {len(given)} input shape(s); give one dtype for all, "
            "or one per input in order"
        )
    if path:
        if not Path(path).expanduser().is_file():
            raise InittuiError(f"inputs file {path!r} not found; give a .pt or .safetensors file")
        if check_file is not None:
            check_file(str(Path(path).expanduser()))
    return ChosenInputs(tuple(given), dtype.strip() or None, path or None)


class InputsScreen(DialogKeys, PromptFrames, ModalScreen["ChosenInputs | None"]):
    """Edit the preview's inputs: enter (or ctrl+s) keeps them, esc cancels."""

    BINDINGS = [
        Binding("enter", "apply", "Use", id="inputs.enter"),
        Binding("ctrl+s", "apply", "Use", id="inputs.apply"),
        Binding("tab", "app.focus_next", "Next field", id="inputs.next-field"),
        Binding("escape", "cancel", "Cancel", id="inputs.cancel"),
    ]

    def __init__(self, current: ChosenInputs, check_file: FileCheck | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.current = current
        self.check_file = check_file
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog path-dialog inputs-dialog") as box:
            box.border_title = "preview inputs"
            yield Static(
                "Shapes like --input-shape, one per input (4x3x32x32 or 4,3,32,32; "
                "separate inputs with ; or spaces), or a .pt/.safetensors inputs file. "
                "All empty: example_inputs or a guess.",
                classes="hint",
            )
            with Horizontal(classes="row"):
                yield Label("shapes", classes="field-label")
                yield Input(" ".join(self.current.shapes), id="shapes", placeholder="4x3x32x32")
            with Horizontal(classes="row"):
                yield Label("dtype(s)", classes="field-label")
                yield Input(
                    self.current.dtype or "", id="dtype", placeholder="float32 or float32,int64"
                )
            with Horizontal(classes="row"):
                yield Label("inputs file", classes="field-label")
                yield Input(self.current.file or "", id="file", placeholder="batch.pt")
            yield Static("", id="inputs-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Use (enter)", variant="primary", id="ok", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#shapes", Input).focus()
        self.validate()

    def values(self) -> tuple[str, str, str]:
        return tuple(
            self.query_one(f"#{name}", Input).value for name in ("shapes", "dtype", "file")
        )  # type: ignore[return-value]

    def validate(self) -> ChosenInputs | None:
        """Check the fields; show the first problem in one line (and mark its field)."""
        shapes, dtype, file = self.values()
        try:
            chosen = check_inputs(shapes, dtype, file, self.check_file)
        except InittuiError as exc:
            self.error = str(exc).splitlines()[0]
        else:
            self.error = None
        self.query_one("#inputs-error", Static).update(
            Text(self.error or "", style="bold", no_wrap=True, overflow="ellipsis")
        )
        for name in ("shapes", "dtype", "file"):
            field = self.query_one(f"#{name}", Input)
            field.set_class(self.error is not None and self._blames(name), "-bad")
        return None if self.error is not None else chosen

    def _blames(self, name: str) -> bool:
        error = self.error or ""
        if name == "shapes":
            return "--input-shape" in error or "shape" in error
        if name == "dtype":
            return "dtype" in error
        return "file" in error or "--inputs" in error

    @on(Input.Changed)
    def changed(self) -> None:
        self.validate()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def action_apply(self) -> None:
        chosen = self.validate()
        if chosen is not None:
            self.dismiss(chosen)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
