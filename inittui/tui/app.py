"""The inittui terminal UI.

``run_app(target, ...)`` opens a model: the module tree on the left, the selected node's
parameters (statistics, expected vs measured std) and the per-layer preview on the right.
Every computation is a core call running in a worker thread; results come back as
messages, and failures become a visible one-line error while the session stays alive.

This module holds the layout and the key actions; the workers and their messages are in
:mod:`inittui.tui.jobs` and :mod:`inittui.tui.messages`, export/save/open in
:mod:`inittui.tui.plan_files`, the command palette in :mod:`inittui.tui.palette`.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Mapping, Sequence

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import ProgressBar, Static

from inittui.core.plan import Rule
from inittui.tui.jobs import WORK_GROUPS, Jobs, end_process
from inittui.tui.keys import FILTER_KEYS, main_bindings, overlay_sections
from inittui.tui.keys import help_sections as key_help_sections
from inittui.tui.palette import InitCommands, ModuleCommands
from inittui.tui.plan_files import PlanFiles
from inittui.tui.preview_pane import PreviewPane
from inittui.tui.rules_actions import RulesActions
from inittui.tui.screens.assign import Assigned, AssignScreen
from inittui.tui.screens.dialogs import ConfirmScreen, DeviceScreen, HelpScreen
from inittui.tui.screens.overlay import KeysOverlay
from inittui.tui.session import (
    PlanState,
    Session,
    rules_set_on,
    without_rules,
)
from inittui.tui.textual_private import PromptFrames, mount_off_screen
from inittui.tui.widgets.describe import DetailView, detail_text, header_text
from inittui.tui.widgets.error_panel import ErrorPanel
from inittui.tui.widgets.filter_line import FilterLine
from inittui.tui.widgets.keybar import KeyBar
from inittui.tui.widgets.model_tree import FILTER_LIMIT, ModuleTree
from inittui.tui.widgets.preview import PreviewTable
from inittui.tui.widgets.preview_plot import PreviewPlot
from inittui.tui.widgets.rules_pane import RulesPane

MAIN_SCREEN_ACTIONS = {
    "legend",
    "filter",
    "assign",
    "clear_node",
    "preview",
    "toggle_backward",
    "toggle_plot",
    "inputs",
    "toggle_traceback",
    "device",
    "export",
    "save",
    "open_plan",
    "rules",
    "compare",
    "undo",
    "redo",
    "escape",
    "quit_app",
}


# --------------------------------------------------------------------------- widgets


class MainScreen(PromptFrames):
    """The main screen (the app composes its widgets)."""


# --------------------------------------------------------------------------- the app


class InitApp(Jobs, PlanFiles, RulesActions, PreviewPane, App[int]):
    """Inspect, plan, preview and export the weight initialization of a PyTorch model."""

    CSS_PATH = "app.tcss"
    TITLE = "inittui"
    COMMANDS = {InitCommands, ModuleCommands}  # the app's actions, then Textual's generic ones
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
        self.export_memory: dict[str, tuple[str, bool]] = {}  # the export dialog's paths
        self.compare_spec: str | None = None  # what c compared with last time

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
                yield RulesPane(id="rules")
                with VerticalScroll(id="detail-pane") as detail:
                    detail.border_title = "detail"
                    yield DetailView("loading the model…", id="detail")
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
                    yield PreviewPlot(id="preview-plot")
                    yield ErrorPanel(id="preview-error")
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
        self.query_one("#detail", DetailView).refit = self.update_detail
        self.query_one("#preview").display = False
        self.query_one("#preview-plot").display = False
        self.preview_view = "table"  # or "forward" / "backward": the plot (v)
        self.query_one("#rules").display = False
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
        self.fit_preview_pane(event.size.width)
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
        self.query_one("#keys", KeyBar).refresh_keys()  # x matters on a node with a rule

    def refresh_views(self) -> None:
        """Everything that depends on the plan, the statistics or the preview."""
        if self.session is None:
            return
        self.session.refresh_flags()
        self.tree_widget.refresh_labels()
        self.update_detail()
        self.update_header()
        self.refresh_rules()

    def require_session(self) -> Session | None:
        if self.session is None:
            self.notify(
                self.load_error or "the model is still loading",
                severity="error" if self.load_error else "warning",
            )
        return self.session

    # -- tree and preview events ------------------------------------------------------

    @on(PreviewTable.Highlighted, "#preview")
    def preview_row_highlighted(self, event: PreviewTable.Highlighted) -> None:
        if event.table.has_focus and self.session is not None:
            self.tree_widget.reveal(self.session.index.resolve_path(event.path))

    @on(PreviewTable.Shown, "#preview")
    def preview_shown(self, event: PreviewTable.Shown) -> None:
        """New preview rows: the plot draws them too, and the pane keeps its view."""
        if self.preview_view == "backward" and not event.preview.backward:
            self.preview_view = "forward"
        self.show_preview_view()

    @on(PreviewTable.Selected, "#preview")
    def preview_row_selected(self, event: PreviewTable.Selected) -> None:
        if self.session is not None:
            self.tree_widget.reveal(self.session.index.resolve_path(event.path))
            self.tree_widget.focus()

    # -- actions: navigation ----------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return key_help_sections(self.get_key_display)

    def action_legend(self) -> None:
        """``?``: the tree markers and the keys that matter where the focus is."""
        focus = self.focused.id if self.focused is not None else None
        sections = overlay_sections(focus, self.key_matters, self.get_key_display)
        self.push_screen(KeysOverlay(sections))

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

    def action_assign(self, edit: tuple[int, Rule] | None = None) -> None:
        """The assign dialog on the selected node; ``edit=(rule_index, rule)`` opens it on
        that rule, and confirming replaces it in place."""
        session = self.require_session()
        if session is None:
            return
        path = self.selected_path or ""
        screen = self.assign_screen
        if screen is not None and screen.session is session and screen.is_mounted:
            screen.reopen(path, edit)
        else:
            screen = self.new_assign_screen(session, path, edit)
        self.push_screen(screen, self.assigned)

    def new_assign_screen(
        self, session: Session, path: str, edit: tuple[int, Rule] | None = None
    ) -> AssignScreen:
        """A new assign dialog, installed: it outlives its closing and later opens reuse it."""
        self.drop_assign_screen()
        screen = self.assign_screen = AssignScreen(session, path, edit)
        self.install_screen(screen, "assign")
        return screen

    def prepare_assign_screen(self) -> None:
        """Compose the assign dialog while the user reads the tree, so that even its first
        ``a`` only fills and shows it."""
        session = self.session
        if session is None or self.assign_screen is not None or not self.is_running:
            return
        screen = self.new_assign_screen(session, self.selected_path or "")
        mounted = mount_off_screen(self, screen)

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
        if result.replace is not None:
            label = f"rule {result.replace + 1} edited: " + label.removeprefix("assigned ")
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
        if state.files is not None:  # the change opened a file: undo/redo restore the file
            self.restore_file_state(state.files[0 if direction == "undo" else 1])
        self.after_plan_change()
        self.notify(f"{past}: {state.label}", timeout=3)

    # -- actions: preview and device --------------------------------------------------

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

    # -- actions: files ---------------------------------------------------------------

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit ask too when the plan is unsaved."""
        self.action_quit_app()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command

    def action_quit_app(self) -> None:
        if not self.dirty:
            self.quit_now()
            return
        rules = len(self.session.plan.rules) if self.session else 0

        def answered(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.quit_now()

        self.push_screen(
            ConfirmScreen(
                f"The plan has unsaved changes. Quit without saving?\n"
                f"({rules} rule(s); cancel and press s to save them)",
                yes="Quit",
            ),
            answered,
        )


def run_app(
    target: str,
    kwargs: Mapping[str, object] | None = None,
    *,
    exit_process: bool = False,
    **options: object,
) -> int:
    """Open the TUI on ``target`` (``options`` as :class:`InitApp` takes them); returns the
    exit status (0). With ``exit_process`` (the CLI) the process ends as soon as the
    terminal is restored: tearing down torch and a big model's objects one by one took
    seconds after the screen was already gone (see :func:`inittui.tui.jobs.end_process`)."""
    result = InitApp(target, kwargs, **options).run()  # type: ignore[arg-type]
    code = 0 if result is None else int(result)
    if exit_process:
        end_process(code)
    return code
