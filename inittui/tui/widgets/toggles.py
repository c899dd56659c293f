"""The assign dialog's toggles and choices, readable without colour and leaving ``enter``
to the dialog: radio buttons draw ``(•)``/``( )``, checkboxes ``[x]``/``[ ]`` (also in a
plain text capture), and ``space`` (not ``enter``) toggles them or opens a select, so that
``enter`` assigns from every field. An open select's list still takes ``enter`` (its
overlay has bindings of its own)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Checkbox, RadioButton, RadioSet, Select


class _Marked:
    """Draws ``ON``/``OFF`` (the state in text) before the label."""

    ON: ClassVar[str]
    OFF: ClassVar[str]

    def render(self) -> Content:
        mark_style = self.get_visual_style("toggle--button")  # type: ignore[attr-defined]
        label_style = self.get_visual_style("toggle--label")  # type: ignore[attr-defined]
        mark = self.ON if self.value else self.OFF  # type: ignore[attr-defined]
        label = self.label.pad(1, 1).stylize_before(label_style)  # type: ignore[attr-defined]
        return Content.assemble((mark, mark_style), label)


class MarkedRadio(_Marked, RadioButton, inherit_bindings=False):
    ON = "(•)"
    OFF = "( )"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_button", "Toggle", show=False)
    ]
    DEFAULT_CSS = """
    MarkedRadio > .toggle--button, MarkedRadio.-on > .toggle--button {
        color: $text; background: transparent;
    }
    MarkedRadio.-on > .toggle--button { text-style: bold; }
    """


class MarkedCheckbox(_Marked, Checkbox, inherit_bindings=False):
    ON = "[x]"
    OFF = "[ ]"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_button", "Toggle", show=False)
    ]
    DEFAULT_CSS = """
    MarkedCheckbox > .toggle--button, MarkedCheckbox.-on > .toggle--button {
        color: $text; background: transparent;
    }
    MarkedCheckbox.-on > .toggle--button { text-style: bold; }
    MarkedCheckbox:focus > .toggle--label { text-style: reverse; }
    """


class ScopeSet(RadioSet, inherit_bindings=False):
    """A radio set whose ``enter`` is left to the screen (``space`` picks)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,right", "next_button", "Next option", show=False),
        Binding("space", "toggle_button", "Toggle", show=False),
        Binding("up,left", "previous_button", "Previous option", show=False),
    ]


class ChoiceSelect(Select, inherit_bindings=False):  # type: ignore[type-arg]
    """A select whose ``enter`` is left to the screen (``space``/arrows open the list)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,space,up", "show_overlay", "Show menu", show=False)
    ]
