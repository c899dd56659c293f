"""The preview's jobs (a mixin of the app, through :class:`~inittui.tui.jobs.Jobs`): where
it runs (on big models a child process: the standby child started once the model is open,
see :mod:`inittui.tui.standby`, else one of its own, see :mod:`inittui.tui.job_process`;
a worker thread otherwise), its result and its failure (kept in the error panel, traceback on
``t``), and the inputs it is fed (the inputs editor, ``i``). :func:`end_process` ends the
process once the app has quit (``q`` reaches the shell prompt at once)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from rich.text import Text
from textual import work
from textual.widgets import Static

from inittui.core.errors import Cancelled, CancelledError, InittuiError
from inittui.tui.job_process import (
    ChildProcess,
    ModelSpec,
    PreviewChild,
    PreviewFailed,
    PreviewRequest,
    failure_of,
)
from inittui.tui.messages import PreviewReady
from inittui.tui.screens.inputs import ChosenInputs, InputsScreen
from inittui.tui.session import PlanState, Session, run_preview
from inittui.tui.standby import StandbyChild, StandbyUnavailable
from inittui.tui.widgets.error_panel import ErrorPanel
from inittui.tui.widgets.preview import PreviewTable

if TYPE_CHECKING:
    from textual.app import App

    _Base = App[int]
else:
    _Base = object

PREVIEW_CHILD_MIN_MODULES = 1000
"""From this many modules on, the preview runs in a child process (its per-call hooks are
Python: in a thread they would hold the interpreter's lock from the keys for seconds).
Below it the preview takes well under a second in a thread, less than a child needs to
start (import torch, rebuild the model): BERT-base (~230 modules) stays in process."""


def end_process(code: int) -> NoReturn:
    """End the process now with ``code`` (the terminal is restored already): flushed
    output and logs, no interpreter teardown. On a small model that teardown (torch's and
    the model's objects, freed one by one) was most of the time between ``q`` and the
    shell prompt; on a big one, seconds."""
    import logging
    import os
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class PreviewJobs(_Base):
    """The preview's worker, its result and failure handlers, the inputs editor."""

    session: Session | None
    preview_in_child: bool | None = None
    """True: always in a child process; False: never; None: from
    ``PREVIEW_CHILD_MIN_MODULES`` modules on."""
    preview_standby: bool | None = None
    """Whether a standby child builds the model for the previews before they are asked
    for (only where they run in a child): True always, False never, None from
    ``PREVIEW_CHILD_MIN_MODULES`` modules on."""
    preview_child: ChildProcess | None = None  # the last one a preview ran in
    standby: StandbyChild | None = None
    standby_lock = threading.Lock()  # starting one against ending them all (q)
    standby_closed = False  # the app quits: no standby from now on
    standby_refused: ModelSpec | None = None  # a standby could not build this one
    preview_where = ""  # where the last preview ran, when it matters (the status line)
    inputs_file: str | None = None  # set by the inputs editor (i), like --inputs FILE

    def model_spec(self) -> ModelSpec:
        return ModelSpec(
            self.target, dict(self.model_kwargs), self.device_name, self.dtype,
            self.checkpoint, self.seed,
        )  # fmt: skip

    def preview_request(self, state: PlanState, backward: bool) -> PreviewRequest | None:
        """What a child process needs to run this preview, or ``None`` where the preview
        runs in this process (see :attr:`preview_in_child`; ``preview_where`` says why)."""
        session = self.session
        assert session is not None
        mode = self.preview_in_child
        modules = len(session.tree.modules)
        if not isinstance(self.target, str) or not self.target:
            self.preview_where = "in this process: the model cannot be rebuilt in a child"
            return None
        if mode is False or (mode is None and modules < PREVIEW_CHILD_MIN_MODULES):
            self.preview_where = ""  # small: the hooks hold the lock only briefly
            return None
        self.preview_where = "in a child process"
        spec = self.model_spec()
        return PreviewRequest(
            spec.target,
            spec.kwargs,
            spec.device,
            spec.dtype,
            spec.checkpoint,
            spec.seed,
            state.resolved,
            list(self.input_shapes),
            self.input_dtype,
            self.inputs_file,
            backward,
        )

    def wants_standby(self) -> bool:
        """Whether the previews run in a child (a big model) and a standby may build it."""
        session = self.session
        if session is None or self.preview_standby is False or self.preview_in_child is False:
            return False
        if not isinstance(self.target, str) or not self.target or session.loaded.on_meta:
            return False
        modules = len(session.tree.modules)
        big = modules >= PREVIEW_CHILD_MIN_MODULES
        return self.preview_standby is True and self.preview_in_child is True or big

    def ensure_standby(self) -> None:
        """Start the standby child unless one runs (or builds) for the model as it is now
        (after the load, a device move, a preview that ended it). Any thread."""
        with self.standby_lock:
            if self.standby_closed or not self.wants_standby():
                return
            spec = self.model_spec()
            current = self.standby
            if spec == self.standby_refused:
                return
            if current is not None and current.is_alive() and current.spec == spec:
                return
            if current is not None:
                current.kill()
            try:
                self.standby = StandbyChild(spec)
            except OSError:  # no child to be had: previews start one (or run here)
                self.standby = None

    def end_standby(self) -> None:
        """The app quits: kill the standby child (not waited for) and start no other."""
        with self.standby_lock:
            self.standby_closed = True
            standby, self.standby = self.standby, None
        if standby is not None:
            standby.kill()

    def on_unmount(self) -> None:
        self.end_standby()  # also where the app ends without q (a test, serve's tab)

    def start_preview(self, session: Session, backward: bool) -> None:
        """Run the preview of the current plan (in a child process where it pays)."""
        state = session.history.current
        request = self.preview_request(state, backward)
        label = "running the preview" + (" (backward)" if backward else "")
        self.start_job("preview", f"{label} {self.preview_where}".strip())
        self.query_one("#preview-info", Static).update(
            Text("running the preview… (esc cancels)", style="italic")
        )
        self.preview_worker(session, state, backward, request)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def preview_worker(
        self, session: Session, state: PlanState, backward: bool, request: PreviewRequest | None
    ) -> None:
        cancel = self._cancelled("preview")
        progress = self._progress("preview")
        preview = None if request is None else self.preview_in_standby(request, cancel, progress)
        if request is not None and preview is None:
            try:
                child = self.preview_child = PreviewChild(request)
            except OSError as exc:  # no child to be had: run here, and say so
                self.preview_where = f"in this process: no child process ({exc})"
                request = None
            else:
                preview = child.wait(cancel, progress)
        if request is None:
            try:
                preview = run_preview(
                    session.loaded,
                    state.resolved,
                    self.input_shapes,
                    self.input_dtype,
                    self.seed or 0,
                    backward,
                    cancel,
                    progress,
                    inputs_file=self.inputs_file,
                )
            except Cancelled:
                raise
            except InittuiError as exc:
                raise failure_of(exc, session.loaded) from exc
        if cancel():
            raise CancelledError("preview cancelled")
        self.post_message(PreviewReady(preview, state))

    def preview_in_standby(
        self,
        request: PreviewRequest,
        cancel: Callable[[], bool],
        progress: Callable[[int, int], None],
    ) -> Any | None:
        """The preview in the standby child, or ``None`` where it cannot serve (the
        caller starts a child of its own, as without a standby). A standby that ended
        is started again, in the background, for the next preview."""
        standby = self.standby
        if standby is None:
            return None
        self.preview_child = standby
        try:
            return standby.run(request, cancel, progress)
        except StandbyUnavailable as exc:
            standby.kill()
            if exc.unbuildable:
                self.standby_refused = standby.spec
            return None
        finally:
            if not standby.is_alive():
                self.ensure_standby()

    def on_preview_ready(self, message: PreviewReady) -> None:
        session = self.session
        self.finish_job("preview")
        if session is None:
            return
        session.preview = message.preview
        session.preview_stale = message.state is not session.history.current
        self.query_one("#preview-error", ErrorPanel).clear()
        table = self.query_one("#preview", PreviewTable)
        table.display = True
        self.query_one("#preview-pane").add_class("-shown")
        table.show(message.preview)
        info = Text(no_wrap=True, overflow="ellipsis")
        preview = message.preview
        if preview.flags:
            info.append(f"{len(preview.flags)} flag(s) · ", style="bold red")
        info.append(f"{len(preview.rows)} layers", style="bold")
        if not preview.planned:
            info.append(" · no plan yet", style="dim")
        if preview.description:
            info.append(f" · {preview.description}", style="dim")
        self.query_one("#preview-info", Static).update(info)
        self.query_one("#preview-pane").border_title = f"preview on {preview.device} · " + (
            "forward+backward" if preview.backward else "forward"
        )
        self.refresh_views()
        self.set_status(self.idle_status())

    # -- the inputs editor (i) and the failure's traceback (t) --------------------------

    def chosen_inputs(self) -> ChosenInputs:
        return ChosenInputs(tuple(self.input_shapes), self.input_dtype, self.inputs_file)

    def action_inputs(self) -> None:
        session = self.session
        if session is None:
            self.push_screen(InputsScreen(self.chosen_inputs()), self.inputs_chosen)
            return
        model = session.loaded.model

        def check_file(path: str) -> None:
            from inittui.core.probe.input_files import read_inputs_file

            read_inputs_file(path, model)

        self.push_screen(InputsScreen(self.chosen_inputs(), check_file), self.inputs_chosen)

    def inputs_chosen(self, chosen: ChosenInputs | None) -> None:
        if chosen is None or chosen == self.chosen_inputs():
            return
        self.input_shapes = list(chosen.shapes)
        self.input_dtype = chosen.dtype
        self.inputs_file = chosen.file
        if self.session is not None and self.session.preview is not None:
            self.session.preview_stale = True
            self.set_status(self.idle_status())
        self.notify(f"{chosen.describe()}; p runs the preview", title="inputs", timeout=4)

    def action_toggle_traceback(self) -> None:
        if not self.query_one("#preview-error", ErrorPanel).toggle_traceback():
            self.notify("no preview failure to show", timeout=2)

    def show_preview_failure(self, error: BaseException | None, text: str) -> None:
        """Keep the failure in the preview pane (the notice fades; the panel stays)."""
        self.query_one("#preview-info", Static).update(
            Text(f"preview failed: {text}", style="bold red")
        )
        if not isinstance(error, PreviewFailed):
            error = failure_of(error or InittuiError(text))
        self.query_one("#preview-pane").add_class("-shown")
        self.query_one("#preview", PreviewTable).display = False
        self.query_one("#preview-error", ErrorPanel).show(error.failure)
