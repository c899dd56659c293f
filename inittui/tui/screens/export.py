"""Export the plan: the init script (previewed here, copyable), a checkpoint of the model
with the plan applied (to a copy, in a worker), and the plan file. Every write is atomic;
an existing file is replaced only after a confirmation."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static
from textual.worker import Worker, WorkerState

from inittui.core.codegen import render_script
from inittui.core.errors import InittuiError
from inittui.core.export import OUTPUT_KINDS, ExportPaths, check_outputs, export_outputs
from inittui.core.plan import Plan
from inittui.tui.screens.dialogs import ConfirmScreen
from inittui.tui.serve_downloads import bundle, default_path
from inittui.tui.session import Session
from inittui.tui.textual_private import PromptFrames
from inittui.tui.widgets.keybar import DialogKeys
from inittui.tui.widgets.text import error_text

KINDS = OUTPUT_KINDS


@dataclass(frozen=True)
class Exported:
    paths: list[str]
    plan_file: str | None = None  # where the plan went, if it was exported
    plan: Plan | None = None  # the plan that was written there


ExportMemory = dict[str, tuple[str, bool]]
"""The paths typed last time and whether each was ticked, by kind (kept by the app)."""


def unplanned_count(session: Session) -> int:
    """Parameters no rule decides: the checkpoint stores them with their current values."""
    decided = session.resolved.decided_by
    return sum(1 for p in session.tree.parameters if p.name not in decided)


class ExportProgress(Message):
    """Posted to the app from the export worker (collapses while queued)."""

    def __init__(self, done: int, total: int, what: str) -> None:
        super().__init__()
        self.done, self.total, self.what = done, total, what

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ExportProgress)


class ExportScreen(DialogKeys, PromptFrames, ModalScreen[Exported | None]):
    BINDINGS = [
        Binding("enter", "export", "Export", id="export.enter"),
        Binding("ctrl+s", "export", "Export", id="export.write"),
        Binding("ctrl+y", "copy_script", "Copy script", id="export.copy"),
        Binding("tab", "app.focus_next", "Next field", id="export.next-field"),
        Binding("escape", "cancel", "Cancel", id="export.cancel"),
    ]

    class Written(Message):
        def __init__(self, paths: list[str], download: str | None = None) -> None:
            super().__init__()
            self.paths = paths
            self.download = download  # the one file the browser gets (inittui serve)

    def __init__(
        self,
        session: Session,
        target: str,
        plan_path: str | None,
        memory: ExportMemory | None = None,
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.session = session
        self.target = target
        self.plan_path = plan_path
        # The app's memory of this session's exports: read to prefill, written on close.
        self.memory: ExportMemory = {} if memory is None else memory
        self.cancel_event = threading.Event()
        resolved = session.resolved
        self.source = render_script(resolved, target, session.model_class, seed=resolved.plan.seed)
        self.busy = False

    def compose(self) -> ComposeResult:
        on_meta = bool(getattr(self.session.loaded, "on_meta", False))
        defaults = {  # under inittui serve: in this tab's own folder
            "script": (default_path("init_weights.py"), True),
            "checkpoint": (default_path("init_weights.pt"), not on_meta),
            "plan": (self.plan_path or default_path("init_plan.toml"), False),
        }
        defaults.update(self.memory)
        with Vertical(classes="dialog export-dialog") as box:
            steps = len(self.session.resolved.steps)
            box.border_title = f"Export: {steps} parameter(s) in the plan"
            unplanned = unplanned_count(self.session)
            if unplanned and steps:
                yield Static(
                    f"{unplanned} parameter(s) no rule decides are stored with their current "
                    "values (the script leaves them as they are)",
                    id="export-partial",
                    classes="hint",
                )
            for kind, (path, enabled) in defaults.items():
                with Horizontal(classes="row"):
                    yield Checkbox(kind, enabled, id=f"use-{kind}", compact=True)
                    yield Input(
                        path,
                        id=f"path-{kind}",
                        compact=True,
                        placeholder=f"{kind} path (empty: skip)",
                    )
            with ScrollableContainer(id="script-preview"):
                yield Static(
                    Syntax(
                        self.source, "python", theme="ansi_dark", line_numbers=True, word_wrap=False
                    ),
                    id="script-source",
                )
            yield Static("", id="export-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Export (enter)", variant="primary", id="export", compact=True)
                yield Button("Copy script (ctrl+y)", id="copy", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#export", Button).focus()
        if not self.session.resolved.steps:
            self.query_one("#export-error", Static).update(
                Text(
                    "the plan decides no parameter: the script and checkpoint change "
                    "nothing (press a on a node to assign a scheme)",
                    style="yellow",
                )
            )

    # -- actions ----------------------------------------------------------------------

    @on(Button.Pressed, "#copy")
    def action_copy_script(self) -> None:
        self.app.copy_to_clipboard(self.source)
        self.notify(f"copied the script ({len(self.source.splitlines())} lines) to the clipboard")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.busy:
            self.cancel_event.set()
            return
        self.remember()
        self.dismiss(None)

    def remember(self) -> None:
        """Keep the typed paths and ticks for the next export of this session."""
        for kind in KINDS:
            path = self.query_one(f"#path-{kind}", Input).value.strip()
            if path:
                self.memory[kind] = (path, self.query_one(f"#use-{kind}", Checkbox).value)

    def outputs(self) -> list[tuple[str, str]]:
        out = []
        for kind in KINDS:
            path = self.query_one(f"#path-{kind}", Input).value.strip()
            if self.query_one(f"#use-{kind}", Checkbox).value and path:
                out.append((kind, path))
        return out

    def _error(self, text: str) -> None:
        self.query_one("#export-error", Static).update(Text(text, style="bold red"))

    @on(Input.Submitted)
    @on(Button.Pressed, "#export")
    def action_export(self) -> None:
        if self.busy:
            return
        outputs = self.outputs()
        if not outputs:
            self._error("nothing to export: tick the script, checkpoint and/or plan")
            return
        try:
            check_outputs(ExportPaths(**dict(outputs)), force=True)
        except InittuiError as exc:
            self._error(str(exc))
            return
        existing = [path for _, path in outputs if Path(path).expanduser().exists()]
        if existing:
            names = ", ".join(existing)

            def answered(overwrite: bool | None) -> None:
                if overwrite:
                    self.start(outputs, force=True)
                else:
                    self._error(f"not written: {names} already exist(s)")

            self.app.push_screen(
                ConfirmScreen(f"{names} already exist(s). Overwrite?", yes="Overwrite"), answered
            )
            return
        self.start(outputs, force=False)

    def start(self, outputs: list[tuple[str, str]], force: bool) -> None:
        self.busy = True
        self.cancel_event.clear()
        self.query_one("#export-error", Static).update(
            Text("exporting… (esc cancels)", style="dim")
        )
        self.write_outputs(outputs, force)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def write_outputs(self, outputs: list[tuple[str, str]], force: bool) -> None:
        written = export_outputs(
            self.session.loaded.model,
            self.session.resolved,
            ExportPaths(**dict(outputs)),
            target=self.target,
            model_class=self.session.model_class,
            force=force,
            script=self.source,
            progress=lambda done, total: self.app.post_message(
                ExportProgress(done, total, "applying the plan")
            ),
            cancel=self.cancel_event.is_set,
        )
        paths = [str(p) for p in written]
        # Served in a browser (inittui serve): the files also reach the user, as one download
        # (a zip when there are several: browsers block every download but the first).
        download = bundle(paths) if self.app.is_web else None
        self.post_message(self.Written(paths, download))

    def on_export_screen_written(self, message: ExportScreen.Written) -> None:
        self.busy = False
        if message.download:
            self.app.deliver_binary(message.download, save_filename=Path(message.download).name)
        self.remember()
        plan_file = dict(self.outputs()).get("plan")
        plan = self.session.resolved.plan if plan_file else None
        self.dismiss(Exported(message.paths, plan_file, plan))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.busy = False
            error = event.worker.error
            text = error_text(error, "export cancelled; nothing was written")
            if not isinstance(error, InittuiError) and error is not None:
                text = f"export failed: {text}"
            self._error(text)
            self.app.post_message(ExportProgress(0, 0, ""))
