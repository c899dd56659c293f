"""The inittui terminal UI.

``run_app(target, ...)`` opens a model: the module tree on the left, the selected node's
parameters (statistics, expected vs measured std) and the per-layer preview on the right.
Every computation is a core call running in a worker thread; results come back as
messages, and failures become a visible one-line error while the session stays alive.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from inittui.core.errors import CancelledError, InittuiError
from inittui.tui.frames import PromptFrames
from inittui.tui.keys import FILTER_KEYS, HELP_TEXT, main_bindings
from inittui.tui.keys import help_sections as key_help_sections
from inittui.tui.screens.assign import Assigned, AssignScreen
from inittui.tui.screens.dialogs import ConfirmScreen, DeviceScreen, HelpScreen, PathScreen
from inittui.tui.screens.export import Exported, ExportProgress, ExportScreen
from inittui.tui.session import (
    History,
    ModelIndex,
    PlanState,
    Preview,
    Session,
    rules_set_on,
    run_preview,
    without_rules,
)
from inittui.tui.widgets.describe import detail_text, header_text, node_label, node_marker
from inittui.tui.widgets.filter_line import FilterLine
from inittui.tui.widgets.keybar import KeyBar
from inittui.tui.widgets.model_tree import FILTER_LIMIT, ModuleTree
from inittui.tui.widgets.preview import PreviewTable
from inittui.tui.widgets.text import error_text

DEFAULT_PLAN_FILE = "init_plan.toml"
WORK_GROUPS = ("stats", "planned", "preview", "resolve", "device")
MAIN_SCREEN_ACTIONS = {
    "filter",
    "assign",
    "clear_node",
    "preview",
    "toggle_backward",
    "device",
    "export",
    "save",
    "open_plan",
    "undo",
    "redo",
    "escape",
    "quit_app",
}


# --------------------------------------------------------------------------- messages


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's reach.

    A 10,000-module model leaves over half a million long-lived objects (modules,
    parameters, tree nodes, statistics); each full collection walked all of them, 100-200 ms
    in the middle of a keypress. Frozen, they are skipped (they live as long as the app;
    ``InitApp.on_unmount`` hands them back to the collector)."""
    gc.freeze()


class ModelLoaded(Message):
    def __init__(
        self, loaded: object, tree: object, state: PlanState, plan_error: str | None
    ) -> None:
        super().__init__()
        self.loaded, self.tree, self.state, self.plan_error = loaded, tree, state, plan_error


class StatsReady(Message):
    def __init__(self, stats: dict) -> None:
        super().__init__()
        self.stats = stats


class PlannedStatsReady(Message):
    def __init__(self, state: PlanState, stats: dict) -> None:
        super().__init__()
        self.state, self.stats = state, stats


class PlanResolved(Message):
    def __init__(self, state: PlanState) -> None:
        super().__init__()
        self.state = state


class PreviewReady(Message):
    def __init__(self, preview: Preview, state: PlanState) -> None:
        super().__init__()
        self.preview, self.state = preview, state


class DeviceMoved(Message):
    def __init__(self, loaded: object, tree: object) -> None:
        super().__init__()
        self.loaded, self.tree = loaded, tree


class Progress(Message):
    """Progress of a worker; a queued one is replaced by the next of the same job."""

    def __init__(self, job: str, done: int, total: int) -> None:
        super().__init__()
        self.job, self.done, self.total = job, done, total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress) and message.job == self.job


# --------------------------------------------------------------------------- widgets


class MainScreen(PromptFrames):
    """The main screen (the app composes its widgets)."""


class InitCommands(Provider):
    """Every action of the app, and one command per plan rule to remove it."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, InitApp)
        return app.palette_commands()

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


# --------------------------------------------------------------------------- the app


class InitApp(App[int]):
    """Inspect, plan, preview and export the weight initialization of a PyTorch model."""

    CSS_PATH = "app.tcss"
    TITLE = "inittui"
    COMMANDS = App.COMMANDS | {InitCommands}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = main_bindings()  # every key: inittui/tui/keys.py

    def __init__(
        self,
        target: str,
        kwargs: Mapping[str, object] | None = None,
        device: str | None = "cpu",
        dtype: str | None = None,
        checkpoint: str | None = None,
        plan_path: str | None = None,
        input_shapes: Sequence[str] | None = None,
        input_dtype: str | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.model_kwargs = dict(kwargs or {})
        self.device_name = device or "cpu"
        self.dtype = dtype
        self.checkpoint = checkpoint
        self.plan_path: str | None = plan_path
        self.save_confirmed = False
        self.input_shapes = list(input_shapes or [])
        self.input_dtype = input_dtype
        self.seed = seed
        self.session: Session | None = None
        self.saved_plan = None
        self.load_error: str | None = None
        self.backward = False
        self.cancel_events: dict[str, threading.Event] = {g: threading.Event() for g in WORK_GROUPS}
        self.running: dict[str, str] = {}
        self.ready = False
        self.assign_screen: AssignScreen | None = None  # kept between opens

    # -- layout -----------------------------------------------------------------------

    def on_unmount(self) -> None:
        gc.unfreeze()  # see freeze_heap

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble((f" {self.target}", "bold"), " · loading…"), id="header")
        with Horizontal(id="body"):
            with Vertical(id="left") as left:
                left.border_title = "modules"
                yield ModuleTree(id="tree")
                yield Static("", id="load-error")
                yield FilterLine(id="filter")
            with Vertical(id="right"):
                with VerticalScroll(id="detail-pane") as detail:
                    detail.border_title = "detail"
                    yield Static("loading the model…", id="detail")
                with Vertical(id="preview-pane") as preview:
                    preview.border_title = "preview"
                    yield Static(
                        Text(
                            "p runs it: output std per layer, now vs plan",
                            style="dim",
                            no_wrap=True,
                            overflow="ellipsis",
                        ),
                        id="preview-info",
                    )
                    yield PreviewTable(id="preview")
        with Horizontal(id="status"):
            yield Static("", id="status-text")
            yield ProgressBar(id="progress", show_eta=False, total=100)
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self.screen.set_class(self.size.width >= 120, "-wide")
        self.query_one("#load-error").display = False
        self.query_one("#progress").display = False
        self.tree_widget.on_cursor = self.update_detail
        self.tree_widget.on_filter_text = self.filter_changed
        self.query_one("#preview").display = False
        self.set_status("loading the model…")
        self.running["load"] = "loading the model"
        self.load_model()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The main screen's keys do nothing while a dialog is open (typing ``a`` in the
        assign dialog must not open another one)."""
        if action in MAIN_SCREEN_ACTIONS and len(self.screen_stack) > 1:
            return False
        return True

    def on_resize(self, event: events.Resize) -> None:
        self.screen.set_class(event.size.width >= 120, "-wide")
        if self.session is not None:
            self.update_header()

    # -- helpers ----------------------------------------------------------------------

    @property
    def tree_widget(self) -> ModuleTree:
        return self.query_one("#tree", ModuleTree)

    @property
    def dirty(self) -> bool:
        return self.session is not None and self.session.plan != self.saved_plan

    @property
    def selected_path(self) -> str | None:
        if self.session is None:
            return None
        return self.tree_widget.cursor_path

    def set_status(self, text: str | Text, style: str = "") -> None:
        widget = self.query_one("#status-text", Static)
        widget.update(text if isinstance(text, Text) else Text(text, style=style))

    def update_header(self) -> None:
        self.query_one("#header", Static).update(
            header_text(
                self.session,
                self.target,
                self.plan_path,
                self.dirty,
                self.device_name,
                self.size.width,
            )
        )

    def update_detail(self) -> None:
        if self.session is None:
            return
        path = self.selected_path
        pane = self.query_one("#detail-pane")
        self.query_one("#detail", Static).update(
            detail_text(self.session, path or "", (pane.content_size.width or 40) - 1)
        )
        self.query_one("#detail-pane").border_title = f"detail · {path or '(root)'}"

    def refresh_views(self) -> None:
        """Everything that depends on the plan, the statistics or the preview."""
        if self.session is None:
            return
        self.session.refresh_flags()
        self.tree_widget.refresh_labels()
        self.update_detail()
        self.update_header()

    def require_session(self) -> Session | None:
        if self.session is None:
            self.notify(
                self.load_error or "the model is still loading",
                severity="error" if self.load_error else "warning",
            )
        return self.session

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

    # -- loading ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_model(self) -> None:
        from inittui.core.loading import load_model
        from inittui.core.plan import Plan, load_plan, resolve_plan
        from inittui.core.tree import build_tree

        loaded = load_model(
            self.target,
            self.model_kwargs,
            device=self.device_name,
            dtype=self.dtype,
            checkpoint=self.checkpoint,
            seed=self.seed or 0,
        )
        freeze_heap()  # the model lives as long as the app (see freeze_heap)
        tree = build_tree(loaded.model)
        plan = Plan(seed=self.seed or 0)
        plan_error = None
        resolved = None
        if self.plan_path:
            try:
                plan = load_plan(self.plan_path)
                if self.seed is not None:
                    plan = plan.with_seed(self.seed)
                resolved = resolve_plan(plan, loaded.model, tree)
            except InittuiError as exc:
                plan_error = str(exc)
                plan = Plan(seed=self.seed or 0)
        if resolved is None:
            resolved = resolve_plan(plan, loaded.model, tree)
        label = (
            f"open {Path(self.plan_path).name}" if self.plan_path and not plan_error else "start"
        )
        self.post_message(ModelLoaded(loaded, tree, PlanState(plan, resolved, label), plan_error))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.running.pop("load", None)
        tree = message.tree
        index = ModelIndex(tree)  # type: ignore[arg-type]
        self.session = Session(message.loaded, tree, index, History(message.state))  # type: ignore
        self.device_name = str(getattr(message.loaded, "device", self.device_name))
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

    # -- statistics -------------------------------------------------------------------

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
        if not state.resolved.steps or getattr(session.loaded, "on_meta", False):
            state.planned_stats = {}
            return
        self.start_job("planned", "applying the plan to a copy")
        self.planned_worker(session, state)

    @work(thread=True, exclusive=True, exit_on_error=False, group="planned")
    def planned_worker(self, session: Session, state: PlanState) -> None:
        from inittui.core.apply import apply_plan
        from inittui.core.stats import compute_stats

        cancel = self._cancelled("planned")
        model = copy.deepcopy(session.loaded.model)  # type: ignore[attr-defined]
        apply_plan(model, state.resolved, progress=self._progress("planned"), cancel=cancel)
        named = dict(model.named_parameters(remove_duplicate=False))
        tensors = [
            (step.param, named[step.param].detach())
            for step in state.resolved.steps
            if step.param in named
        ]
        stats = compute_stats(tensors, progress=self._progress("planned"), cancel=cancel)
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

    # -- plan changes -----------------------------------------------------------------

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

    def resolve_and_commit(self, plan: object, label: str) -> None:
        self.start_job("resolve", "resolving the plan")
        self.resolve_worker(plan, label)

    @work(thread=True, exclusive=True, exit_on_error=False, group="resolve")
    def resolve_worker(self, plan: object, label: str) -> None:
        from inittui.core.plan import resolve_plan

        session = self.session
        assert session is not None
        resolved = resolve_plan(plan, session.loaded.model, session.tree)  # type: ignore
        self.post_message(PlanResolved(PlanState(plan, resolved, label)))  # type: ignore

    def on_plan_resolved(self, message: PlanResolved) -> None:
        self.finish_job("resolve")
        self.commit(message.state)
        self.notify(message.state.label, timeout=3)

    # -- worker failures --------------------------------------------------------------

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
        cancelled = isinstance(error, CancelledError) or type(error).__name__ == "StatsCancelled"
        text = error_text(error)
        if group == "load":
            self.show_load_error(text)
            return
        self.finish_job(group)
        what = {
            "stats": "statistics",
            "planned": "planned statistics",
            "preview": "preview",
            "resolve": "plan change rejected",
            "device": "device change",
        }.get(group, group)
        if cancelled:
            self.set_status(Text(f"{what}: cancelled", style="yellow"))
            self.notify(f"{what} cancelled", severity="warning", timeout=3)
            return
        self.set_status(Text(f"{what}: {text}", style="bold red"))
        self.notify(text, title=what, severity="error", timeout=8)
        if group == "preview":
            self.query_one("#preview-info", Static).update(
                Text(f"preview failed: {text}", style="bold red")
            )

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

    # -- tree and preview events ------------------------------------------------------

    @on(DataTable.RowHighlighted, "#preview")
    def preview_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one("#preview", PreviewTable)
        if not table.has_focus:
            return
        path = table.path_of(event.row_key)
        if path is not None and self.session is not None:
            self.tree_widget.reveal(self.session.index.resolve_path(path))

    @on(DataTable.RowSelected, "#preview")
    def preview_row_selected(self, event: DataTable.RowSelected) -> None:
        path = self.query_one("#preview", PreviewTable).path_of(event.row_key)
        if path is not None and self.session is not None:
            self.tree_widget.reveal(self.session.index.resolve_path(path))
            self.tree_widget.focus()

    # -- actions: navigation ----------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return key_help_sections(self.get_key_display)

    def action_filter(self) -> None:
        """Type a filter: the tree keeps the focus and turns keys into filter text."""
        if self.require_session() is None:
            return
        tree = self.tree_widget
        if not tree.has_focus:
            tree.focus()
        tree.start_typing()  # tells filter_changed

    def show_filter(self) -> None:
        tree = self.tree_widget
        self.query_one("#filter", FilterLine).show(tree.filter_text, tree.typing)
        self.query_one("#keys", KeyBar).override(FILTER_KEYS if tree.typing else None)

    def filter_changed(self, value: str) -> None:
        tree = self.tree_widget
        if value.strip() != tree.filter_query:
            count = tree.apply_filter(value)
            query = value.strip()
            title = "modules"
            if query:
                title = f"modules · {count} match '{query}'"
                if count > FILTER_LIMIT:
                    title += f" (first {FILTER_LIMIT})"
            self.query_one("#left").border_title = title
        self.show_filter()

    def action_clear_filter(self) -> None:
        tree = self.tree_widget
        tree.typing = False
        tree.filter_text = ""
        tree.clear_filter()
        self.show_filter()
        self.query_one("#left").border_title = "modules"
        if not tree.has_focus:
            tree.focus()

    def action_escape(self) -> None:
        busy = [g for g in self.running if g in WORK_GROUPS]
        if busy:
            self.action_cancel_work()
        elif self.tree_widget.filter_query or self.tree_widget.typing:
            self.action_clear_filter()

    def action_cancel_work(self) -> None:
        for group in WORK_GROUPS:
            if group in self.running:
                self.cancel_events[group].set()
                self.workers.cancel_group(self, group)

    # -- actions: the plan ------------------------------------------------------------

    def action_assign(self) -> None:
        session = self.require_session()
        if session is None:
            return
        path = self.selected_path or ""
        screen = self.assign_screen
        if screen is not None and screen.session is session and screen.is_mounted:
            screen.reopen(path)
        else:
            screen = self.new_assign_screen(session, path)
        self.push_screen(screen, self.assigned)

    def new_assign_screen(self, session: Session, path: str) -> AssignScreen:
        """A new assign dialog, installed: it outlives its closing and later opens reuse it."""
        self.drop_assign_screen()
        screen = self.assign_screen = AssignScreen(session, path)
        self.install_screen(screen, "assign")
        return screen

    def prepare_assign_screen(self) -> None:
        """Compose the assign dialog while the user reads the tree, so that even its first
        ``a`` only fills and shows it."""
        session = self.session
        if session is None or self.assign_screen is not None or not self.is_running:
            return
        screen = self.new_assign_screen(session, self.selected_path or "")
        self._load_screen_css(screen)
        _screen, mounted = self._get_screen(screen)  # registers and mounts it, off the stack

        async def draw() -> None:
            await mounted
            screen.draw_off_screen()

        self.call_later(draw)

    def drop_assign_screen(self) -> None:
        """Forget the kept assign dialog (the next open composes a new one)."""
        screen, self.assign_screen = self.assign_screen, None
        if screen is not None and self.is_screen_installed(screen):
            self.uninstall_screen(screen)
            if screen.is_attached:
                screen.remove()

    def assigned(self, result: Assigned | None) -> None:
        if result is None or self.session is None:
            return
        rule = result.rule
        label = f"assigned {rule.scheme} to {rule.select or '(root)'}" + (
            f" [{rule.params}]" if rule.params != "*" else ""
        )
        self.commit(PlanState(result.plan, result.resolved, label))
        self.notify(label, timeout=3)

    def action_clear_node(self) -> None:
        session = self.require_session()
        if session is None:
            return
        path = self.selected_path or ""
        indexes = rules_set_on(session.plan, path)
        if not indexes:
            self.notify(
                f"no rule is set on {path or '(root)'} itself; its scheme (if any) "
                "comes from a type or ancestor rule (ctrl+p lists rules to remove)",
                severity="warning",
                timeout=5,
            )
            return
        plan = without_rules(session.plan, indexes)
        self.resolve_and_commit(plan, f"cleared {len(indexes)} rule(s) on {path or '(root)'}")

    def remove_rule(self, index: int) -> None:
        session = self.require_session()
        if session is None or index >= len(session.plan.rules):
            return
        rule = session.plan.rules[index]
        self.resolve_and_commit(
            session.plan.without_rule(index), f"removed rule {index + 1}: {rule.describe()}"
        )

    def action_undo(self) -> None:
        self.walk_history("undo", "undid")

    def action_redo(self) -> None:
        self.walk_history("redo", "redid")

    def walk_history(self, direction: str, past: str) -> None:
        """One step back (undo) or forward (redo) through the plan history."""
        session = self.require_session()
        if session is None:
            return
        state = getattr(session.history, direction)()
        if state is None:
            self.notify(f"nothing to {direction}", timeout=2)
            return
        self.after_plan_change()
        self.notify(f"{past}: {state.label}", timeout=3)

    # -- actions: preview and device --------------------------------------------------

    def action_preview(self) -> None:
        session = self.require_session()
        if session is None:
            return
        if "device" in self.running:
            self.notify("wait: the model is moving to another device", severity="warning")
            return
        self.start_job("preview", "running the preview" + (" (backward)" if self.backward else ""))
        self.query_one("#preview-info", Static).update(
            Text("running the preview… (esc cancels)", style="italic")
        )
        self.preview_worker(session, session.history.current, self.backward)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def preview_worker(self, session: Session, state: PlanState, backward: bool) -> None:
        cancel = self._cancelled("preview")
        preview = run_preview(
            session.loaded,
            state.resolved,
            self.input_shapes,
            self.input_dtype,
            self.seed or 0,
            backward,
            cancel,
            self._progress("preview"),
        )
        if cancel():
            raise CancelledError("preview cancelled")
        self.post_message(PreviewReady(preview, state))

    def on_preview_ready(self, message: PreviewReady) -> None:
        session = self.session
        self.finish_job("preview")
        if session is None:
            return
        session.preview = message.preview
        session.preview_stale = message.state is not session.history.current
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

    def action_toggle_backward(self) -> None:
        self.backward = not self.backward
        self.notify(f"backward pass {'on' if self.backward else 'off'}", timeout=2)
        if self.session is not None and self.session.preview is not None:
            self.action_preview()
        else:
            self.set_status(self.idle_status())

    def action_device(self) -> None:
        from inittui.core.loading import available_devices

        session = self.require_session()
        if session is None:
            return
        self.push_screen(DeviceScreen(available_devices(), self.device_name), self.device_chosen)

    def device_chosen(self, device: str | None) -> None:
        session = self.session
        if device is None or session is None or device == self.device_name:
            return
        for group in ("stats", "planned", "preview"):
            if group in self.running:
                self.cancel_events[group].set()
                self.workers.cancel_group(self, group)
        self.start_job("device", f"moving the model to {device}")
        self.device_worker(session, device)

    @work(thread=True, exclusive=True, exit_on_error=False, group="device")
    def device_worker(self, session: Session, device: str) -> None:
        from inittui.core.loading import parse_device
        from inittui.core.tree import build_tree

        target = parse_device(device)
        loaded = session.loaded
        try:
            model = loaded.model.to(target)  # type: ignore[attr-defined]
        except (RuntimeError, NotImplementedError) as exc:
            raise InittuiError(
                f"cannot move the model to {device}: {str(exc).splitlines()[0]}"
            ) from exc
        moved = dataclasses.replace(loaded, model=model, device=target)  # type: ignore
        self.post_message(DeviceMoved(moved, build_tree(model)))

    def on_device_moved(self, message: DeviceMoved) -> None:
        session = self.session
        self.finish_job("device")
        if session is None:
            return
        session.loaded = message.loaded
        session.tree = message.tree  # type: ignore[assignment]
        session.index = ModelIndex(message.tree)  # type: ignore[arg-type]
        self.device_name = str(getattr(message.loaded, "device", self.device_name))
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

    # -- actions: files ---------------------------------------------------------------

    def action_export(self) -> None:
        session = self.require_session()
        if session is None:
            return
        self.push_screen(ExportScreen(session, self.target, self.plan_path), self.exported)

    def exported(self, result: Exported | None) -> None:
        if result is None:
            return
        self.notify("wrote " + ", ".join(result.paths), title="export", timeout=6)
        self.set_status(Text("wrote " + ", ".join(result.paths), style="green"))

    def action_save(self) -> None:
        session = self.require_session()
        if session is None:
            return
        if self.plan_path and self.save_confirmed:
            self.write_plan(self.plan_path, force=True)
            return

        def check(path: str) -> tuple[str, bool]:
            from inittui.core.export import check_destination

            dest = check_destination(path, True, (".toml",), "plan")
            return path, dest.exists()

        self.push_screen(
            PathScreen(
                "Save the plan",
                self.plan_path or DEFAULT_PLAN_FILE,
                "Save",
                check,
                hint="a TOML plan file (version 1); written atomically",
            ),
            self.save_path_chosen,
        )

    def save_path_chosen(self, result: object) -> None:
        if not result:
            return
        path, exists = result  # type: ignore[misc]
        if exists:
            self.push_screen(
                ConfirmScreen(f"{path} already exists. Overwrite it?", yes="Overwrite"),
                lambda yes: (
                    self.write_plan(path, force=True)
                    if yes
                    else self.notify("plan not saved", severity="warning", timeout=3)
                ),
            )
        else:
            self.write_plan(path, force=False)

    def write_plan(self, path: str, force: bool) -> bool:
        from inittui.core.export import write_text
        from inittui.core.plan import plan_to_toml

        session = self.session
        if session is None:
            return False
        try:
            write_text(path, plan_to_toml(session.plan), force=force)
        except InittuiError as exc:
            self.notify(str(exc), title="plan not saved", severity="error", timeout=8)
            return False
        self.plan_path = path
        self.save_confirmed = True
        self.saved_plan = session.plan
        self.update_header()
        self.notify(f"saved the plan to {path}", timeout=3)
        return True

    def action_open_plan(self) -> None:
        session = self.require_session()
        if session is None:
            return

        def load(path: str) -> tuple[str, PlanState]:
            from inittui.core.plan import load_plan, resolve_plan

            plan = load_plan(path)
            if self.seed is not None:
                plan = plan.with_seed(self.seed)
            resolved = resolve_plan(plan, session.loaded.model, session.tree)  # type: ignore
            return path, PlanState(plan, resolved, f"opened {Path(path).name}")

        self.push_screen(
            PathScreen(
                "Open a plan",
                self.plan_path or DEFAULT_PLAN_FILE,
                "Open",
                load,
                hint="a TOML plan; it replaces the current plan (u undoes)",
            ),
            self.plan_opened,
        )

    def plan_opened(self, result: object) -> None:
        if not result or self.session is None:
            return
        path, state = result  # type: ignore[misc]
        self.plan_path = path
        self.save_confirmed = False
        self.saved_plan = state.plan
        self.commit(state)
        self.notify(f"opened {path}: {len(state.plan.rules)} rule(s)", timeout=3)

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit ask too when the plan is unsaved."""
        self.action_quit_app()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command

    def action_quit_app(self) -> None:
        if not self.dirty:
            self.exit(0)
            return
        rules = len(self.session.plan.rules) if self.session else 0

        def answered(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.exit(0)

        self.push_screen(
            ConfirmScreen(
                f"The plan has unsaved changes. Quit without saving?\n"
                f"({rules} rule(s); cancel and press s to save them)",
                yes="Quit",
            ),
            answered,
        )

    # -- command palette --------------------------------------------------------------

    def palette_commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        commands: list[tuple[str, str, Callable[[], object]]] = []
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or binding.id in ("focus-next",):
                continue
            key = self.get_key_display(binding)
            help_text = HELP_TEXT.get(binding.description, binding.description)
            commands.append(
                (
                    binding.description,
                    f"{help_text} (key {key})",
                    partial(self.run_action, binding.action),
                )
            )
        if self.session is not None:
            for i, rule in enumerate(self.session.plan.rules):
                commands.append(
                    (
                        f"Remove rule {i + 1}: {rule.describe()}",
                        "remove this rule from the plan (u undoes)",
                        partial(self.remove_rule, i),
                    )
                )
        return commands


def run_app(
    target: str,
    kwargs: Mapping[str, object] | None = None,
    device: str | None = "cpu",
    dtype: str | None = None,
    checkpoint: str | None = None,
    plan_path: str | None = None,
    input_shapes: Sequence[str] | None = None,
    input_dtype: str | None = None,
    seed: int | None = None,
) -> int:
    """Open the TUI on ``target``; returns the exit status (0)."""
    app = InitApp(
        target,
        kwargs=kwargs,
        device=device,
        dtype=dtype,
        checkpoint=checkpoint,
        plan_path=plan_path,
        input_shapes=input_shapes,
        input_dtype=input_dtype,
        seed=seed,
    )
    result = app.run()
    return 0 if result is None else int(result)
