"""The app's background work: each job (load, statistics, planned statistics, plan
resolution, preview, device move) is a core call in a worker thread that reports back with
a message from :mod:`inittui.tui.messages`; one handler turns any failure into a visible
one-line error while the session stays alive.

The preview's own jobs (child process, error panel, inputs editor) are in
:mod:`inittui.tui.preview_jobs` (:class:`Jobs` extends its mixin).

:class:`Jobs` is a mixin of :class:`~inittui.tui.app.InitApp`: it reads the app's state
(``session``, ``running``, ``cancel_events``) and updates its widgets only from handlers,
which run on the app's thread.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.widgets import ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from inittui.core.errors import Cancelled
from inittui.core.plan import Plan
from inittui.core.workspace import move_model, open_model
from inittui.tui.job_process import (
    terminate_all,
)
from inittui.tui.messages import (
    DeviceMoved,
    ModelLoaded,
    PlannedStatsReady,
    PlanResolved,
    Progress,
    StatsReady,
)
from inittui.tui.preview_jobs import PREVIEW_CHILD_MIN_MODULES, PreviewJobs, end_process
from inittui.tui.screens.export import ExportProgress
from inittui.tui.session import History, ModelIndex, PlanState, Session
from inittui.tui.textual_private import stop_input_now
from inittui.tui.widgets.describe import node_label, node_marker
from inittui.tui.widgets.text import error_text

if TYPE_CHECKING:
    from textual.app import App

    _Base = App[int]
else:
    _Base = object

__all__ = ["JOB_TITLES", "PREVIEW_CHILD_MIN_MODULES", "WORK_GROUPS", "Jobs", "end_process"]

WORK_GROUPS = ("stats", "planned", "preview", "resolve", "device")
"""The jobs escape cancels (loading cannot be cancelled)."""
JOB_TITLES = {
    "stats": "statistics",
    "planned": "planned statistics",
    "preview": "preview",
    "resolve": "plan change rejected",
    "device": "device change",
}


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's reach.

    A 10,000-module model leaves over half a million long-lived objects (modules,
    parameters, tree nodes, statistics); each full collection walked all of them, 100-200 ms
    in the middle of a keypress. Frozen, they are skipped (they live as long as the app;
    ``InitApp.on_unmount`` hands them back to the collector)."""
    gc.freeze()


class Jobs(PreviewJobs):
    """Workers and their result handlers (a mixin of the app)."""

    session: Session | None
    running: dict[str, str]
    cancel_events: dict[str, threading.Event]

    def _cancelled(self, group: str) -> Callable[[], bool]:
        event = self.cancel_events[group]
        event.clear()
        worker = get_current_worker()
        return lambda: event.is_set() or worker.is_cancelled

    def _progress(self, job: str) -> Callable[[int, int], None]:
        return lambda done, total: self.post_message(Progress(job, done, total))

    def start_job(self, group: str, label: str) -> None:
        self.running[group] = label
        self.set_status(f"{label}… (esc cancels)", "italic")

    def finish_job(self, group: str) -> None:
        self.running.pop(group, None)
        if self.running:
            label = next(reversed(self.running.values()))
            self.set_status(f"{label}… (esc cancels)", "italic")
        else:
            self.query_one("#progress").display = False
            self.set_status(self.idle_status())

    def idle_status(self) -> Text:
        if self.session is None:
            return Text(self.load_error or "", style="bold red")
        text = Text()
        steps = len(self.session.resolved.steps)
        text.append(f"{steps} parameter(s) planned", style="green" if steps else "dim")
        warnings = [lint for lint in self.session.resolved.lints if lint.severity == "warning"]
        if warnings:
            text.append(f" · {len(warnings)} warning(s)", style="yellow")
        if self.session.preview is not None:
            flags = len(self.session.preview.flags)
            text.append(f" · preview: {flags} flag(s)", style="red" if flags else "dim")
            if self.session.preview_stale:
                text.append(" (stale, p reruns)", style="yellow")
        if self.backward:
            text.append(" · backward on", style="magenta")
        text.append("  ? keys", style="dim")
        return text

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_model(self) -> None:
        opened = open_model(
            self.target,
            self.model_kwargs,
            device=self.device_name,
            dtype=self.dtype,
            checkpoint=self.checkpoint,
            seed=self.seed,
            plan_path=self.plan_path,
            freeze_heap=True,  # the model lives as long as the app (see freeze_heap)
        )
        plan_error = opened.plan_error
        label = (
            f"open {Path(self.plan_path).name}" if self.plan_path and not plan_error else "start"
        )
        state = PlanState(opened.plan, opened.resolved, label)
        self.post_message(ModelLoaded(opened.loaded, opened.tree, state, plan_error))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.running.pop("load", None)
        tree = message.tree
        index = ModelIndex(tree)
        self.session = Session(message.loaded, tree, index, History(message.state))
        self.device_name = str(message.loaded.device)
        if message.plan_error:
            self.notify(message.plan_error, title="plan not loaded", severity="error", timeout=10)
            self.plan_path = None
        self.saved_plan = (
            message.state.plan if self.plan_path else dataclasses.replace(message.state.plan)
        )
        self.session.refresh_flags()
        session = self.session
        self.tree_widget.load(index, partial(node_label, session), partial(node_marker, session))
        self.tree_widget.focus()
        self.update_header()
        self.update_detail()
        self.set_status(self.idle_status())
        self.compute_stats()
        if message.state.resolved.steps:
            self.compute_planned(message.state)
        self.ready = True
        freeze_heap()
        self.call_after_refresh(self.prepare_assign_screen)
        self.call_after_refresh(self.ensure_standby)  # a big model: the previews' child

    def compute_stats(self) -> None:
        session = self.session
        if session is None:
            return
        self.start_job("stats", "computing statistics")
        self.stats_worker(session)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stats")
    def stats_worker(self, session: Session) -> None:
        from inittui.core.summary import model_stats

        stats = model_stats(
            session.tree, progress=self._progress("stats"), cancel=self._cancelled("stats")
        )
        self.post_message(StatsReady(stats))

    def on_stats_ready(self, message: StatsReady) -> None:
        if self.session is None:
            return
        self.session.stats = message.stats
        self.finish_job("stats")
        self.refresh_views()
        freeze_heap()

    def compute_planned(self, state: PlanState) -> None:
        session = self.session
        if session is None or state.planned_stats is not None:
            return
        if not state.resolved.steps or session.loaded.on_meta:
            state.planned_stats = {}
            return
        self.start_job("planned", "applying the plan to a copy")
        self.planned_worker(session, state)

    @work(thread=True, exclusive=True, exit_on_error=False, group="planned")
    def planned_worker(self, session: Session, state: PlanState) -> None:
        from inittui.core.stats import planned_stats

        progress, cancel = self._progress("planned"), self._cancelled("planned")
        stats = planned_stats(session.loaded.model, state.resolved, progress, cancel)
        self.post_message(PlannedStatsReady(state, stats))

    def on_planned_stats_ready(self, message: PlannedStatsReady) -> None:
        message.state.planned_stats = message.stats
        self.finish_job("planned")
        if self.session is not None and message.state is self.session.history.current:
            self.refresh_views()

    def on_progress(self, message: Progress) -> None:
        if message.job not in self.running or message.total <= 0:
            return
        bar = self.query_one("#progress", ProgressBar)
        bar.display = True
        bar.update(total=message.total, progress=message.done)

    def on_export_progress(self, message: ExportProgress) -> None:
        bar = self.query_one("#progress", ProgressBar)
        if message.total <= 0:
            bar.display = bool(self.running)
            self.set_status(self.idle_status())
            return
        bar.display = True
        bar.update(total=message.total, progress=message.done)
        self.set_status(f"{message.what}… (esc in the dialog cancels)", "italic")

    def commit(self, state: PlanState) -> None:
        """Make ``state`` the current plan (a new entry on the undo stack)."""
        if self.session is None:
            return
        self.session.history.push(state)
        self.after_plan_change()

    def after_plan_change(self) -> None:
        session = self.session
        if session is None:
            return
        if session.preview is not None:
            session.preview_stale = True
        self.refresh_views()
        self.compute_planned(session.history.current)
        if "planned" not in self.running:
            self.set_status(self.idle_status())

    def resolve_and_commit(self, plan: Plan, label: str) -> None:
        self.start_job("resolve", "resolving the plan")
        self.resolve_worker(plan, label)

    @work(thread=True, exclusive=True, exit_on_error=False, group="resolve")
    def resolve_worker(self, plan: Plan, label: str) -> None:
        from inittui.core.plan import resolve_plan
        from inittui.core.plan.expr_context import constructor_arguments

        session = self.session
        assert session is not None
        args = constructor_arguments(session.loaded)
        resolved = resolve_plan(plan, session.loaded.model, session.tree, constructor_args=args)
        self.post_message(PlanResolved(PlanState(plan, resolved, label)))

    def on_plan_resolved(self, message: PlanResolved) -> None:
        self.finish_job("resolve")
        self.commit(message.state)
        self.notify(message.state.label, timeout=3)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        group = worker.group
        if event.state == WorkerState.CANCELLED and group in self.running:
            replaced = any(
                w is not worker and w.group == group and not w.is_finished for w in self.workers
            )
            if not replaced:  # cancelled with escape, not replaced by a newer run
                self.finish_job(group)
                self.set_status(Text(f"{group}: cancelled", style="yellow"))
            return
        if event.state != WorkerState.ERROR:
            return
        error = worker.error
        cancelled = isinstance(error, Cancelled)
        text = error_text(error)
        if group == "load":
            self.show_load_error(text)
            return
        self.finish_job(group)
        what = JOB_TITLES.get(group, group)
        if cancelled:
            self.set_status(Text(f"{what}: cancelled", style="yellow"))
            self.notify(f"{what} cancelled", severity="warning", timeout=3)
            return
        self.set_status(Text(f"{what}: {text}", style="bold red"))
        self.notify(text, title=what, severity="error", timeout=8)
        if group == "preview":
            self.show_preview_failure(error, text)

    def show_load_error(self, text: str) -> None:
        self.running.pop("load", None)
        self.load_error = text
        error = self.query_one("#load-error", Static)
        error.update(
            Text.assemble(
                ("could not open the model\n\n", "bold"), (text, "bold red"), ("\n\nq quits", "dim")
            )
        )
        error.display = True
        self.tree_widget.display = False
        self.query_one("#detail", Static).update(
            Text("nothing to show: the model could not be loaded", style="dim")
        )
        self.query_one("#header", Static).update(
            Text.assemble((f" {self.target}", "bold"), " · ", ("not loaded", "bold red"))
        )
        self.set_status(Text(f"error: {text}", style="bold red"))
        self.notify(text, title="could not open the model", severity="error", timeout=10)
        self.ready = True

    def terminate_jobs(self) -> None:
        """Stop every job now (the app quits): cancel the workers, kill preview children
        (the standby first: no worker may start another)."""
        self.end_standby()
        for event in self.cancel_events.values():
            event.set()
        for group in WORK_GROUPS:
            self.workers.cancel_group(self, group)  # type: ignore[arg-type]
        terminate_all(wait=0)

    def quit_now(self) -> None:
        """Quit without waiting: jobs cancelled, preview children ended, the terminal's
        input thread told to stop (not joined), then Textual's exit."""
        self.terminate_jobs()
        stop_input_now(self)
        self.exit(0)

    @work(thread=True, exclusive=True, exit_on_error=False, group="device")
    def device_worker(self, session: Session, device: str) -> None:
        self.post_message(DeviceMoved(*move_model(session.loaded, device)))

    def on_device_moved(self, message: DeviceMoved) -> None:
        session = self.session
        self.finish_job("device")
        if session is None:
            return
        session.loaded = message.loaded
        session.tree = message.tree
        session.index = ModelIndex(message.tree)
        self.device_name = str(message.loaded.device)
        if session.preview is not None:
            session.preview_stale = True
        keep = self.selected_path or ""
        self.tree_widget.load(
            session.index, partial(node_label, session), partial(node_marker, session)
        )
        self.tree_widget.reveal(keep)
        self.refresh_views()
        self.notify(f"model moved to {self.device_name}", timeout=3)
        self.compute_stats()
        self.ensure_standby()  # the standby's model is on the old device
