"""Small modal dialogs: confirm, a path input, the device list, the help screen."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from inittui.tui.textual_private import PromptFrames
from inittui.tui.widgets.keybar import DialogKeys
from inittui.tui.widgets.text import error_text


class ConfirmScreen(DialogKeys, PromptFrames, ModalScreen[bool]):
    """A yes/no question. ``y``/``enter`` on the first button says yes; ``n``/``escape`` no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Static(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes_label} (y)", variant="primary", id="yes", compact=True)
                yield Button(f"{self.no_label} (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PathScreen(DialogKeys, PromptFrames, ModalScreen[object]):
    """Ask for a path. ``action(path)`` runs in a worker thread; its result closes the
    dialog; an :class:`InittuiError` it raises is shown inline and the dialog stays."""

    BINDINGS = [
        Binding("enter", "submit", "OK", id="path.ok"),
        Binding("escape", "cancel", "Cancel", id="path.cancel"),
    ]

    class Done(Message):
        def __init__(self, result: object) -> None:
            super().__init__()
            self.result = result

    def __init__(
        self, title: str, default: str, button: str, action: Callable[[str], object], hint: str = ""
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.default = default
        self.button = button
        self.action = action
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog path-dialog") as box:
            box.border_title = self.title_text
            if self.hint:
                yield Static(self.hint, classes="hint")
            yield Input(self.default, id="path", placeholder="path")
            yield Static("", id="path-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.button} (enter)", variant="primary", id="ok", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "path")
        self.dismiss(None)

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if not path:
            self.query_one("#path-error", Static).update("give a path")
            return
        self.query_one("#path-error", Static).update(Text("working…", style="dim"))
        self.run_action_in_thread(path)

    def action_submit(self) -> None:
        self.submit()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()

    @work(thread=True, exclusive=True, exit_on_error=False, group="path")
    def run_action_in_thread(self, path: str) -> None:
        self.post_message(self.Done(self.action(path)))

    def on_path_screen_done(self, message: PathScreen.Done) -> None:
        self.dismiss(message.result)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            text = error_text(event.worker.error)
            self.query_one("#path-error", Static).update(Text(text, style="bold red"))


class DeviceScreen(DialogKeys, PromptFrames, ModalScreen[str | None]):
    """Pick a device from :func:`inittui.core.loading.available_devices`."""

    BINDINGS = [
        Binding("enter", "choose", "Use device", id="device.use"),
        Binding("escape", "cancel", "Cancel", id="device.cancel"),
    ]

    def __init__(self, devices: Sequence[str], current: str) -> None:
        super().__init__(classes="dialog-screen")
        self.devices = list(devices)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog device-dialog") as box:
            box.border_title = "Device"
            yield OptionList(
                *[Option(f"{'● ' if d == self.current else '  '}{d}", id=d) for d in self.devices],
                id="devices",
            )
            yield Static("enter: use this device · esc: cancel", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one("#devices", OptionList)
        options.focus()
        if self.current in self.devices:
            options.highlighted = self.devices.index(self.current)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_choose(self) -> None:
        self.query_one("#devices", OptionList).action_select()

    @on(OptionList.OptionSelected, "#devices")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class HelpScreen(DialogKeys, PromptFrames, ModalScreen[None]):
    """Every key of the app and the tree's legend: the sections of
    ``inittui.tui.keys.help_sections``. ``j``/``k``, ``g``/``G`` scroll like the arrows,
    ``home``/``end``."""

    BINDINGS = [
        Binding("escape,q,f1,question_mark", "close", "Close", id="help.close"),
        Binding("j", "scroll(1)", "Down", id="help.down"),
        Binding("k", "scroll(-1)", "Up", id="help.up"),
        Binding("g", "scroll_to(0)", "Top", id="help.top"),
        Binding("G", "scroll_to(-1)", "Bottom", id="help.bottom"),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for title, keys in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            for key, description in keys:
                table.add_row(key, description)
            table.add_row("", "")
        with Vertical(classes="dialog help-dialog") as box:
            box.border_title = "Keys"
            with VerticalScroll(id="help-scroll"):
                yield Static(table)
            yield Label("j k ↑ ↓ scroll · esc / q / F1 close", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, lines: int) -> None:
        self.query_one("#help-scroll").scroll_relative(y=lines, animate=False)

    def action_scroll_to(self, where: int) -> None:
        scroll = self.query_one("#help-scroll")
        scroll.scroll_to(y=scroll.max_scroll_y if where < 0 else 0, animate=False)
