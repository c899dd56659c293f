"""The app's file actions: export (script, checkpoint, plan), save and open a plan, and
compare the working plan with a plan file, a preset or a checkpoint.

:class:`PlanFiles` is a mixin of :class:`~inittui.tui.app.InitApp`; every write goes
through :mod:`inittui.core.export` (atomic, never over a file without a confirmation).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from inittui.core.diff import DiffResult
from inittui.core.errors import InittuiError
from inittui.core.plan import resolve_plan
from inittui.core.plan.expr_context import constructor_arguments
from inittui.core.workspace import read_plan
from inittui.tui.screens.compare import COMPARE_HINT, CompareScreen, compare_action
from inittui.tui.screens.dialogs import ConfirmScreen, PathScreen
from inittui.tui.screens.export import Exported, ExportMemory, ExportScreen
from inittui.tui.session import FileState, PlanState, Session

if TYPE_CHECKING:
    from textual.app import App

    _Base = App[int]
else:
    _Base = object

DEFAULT_PLAN_FILE = "init_plan.toml"


class PlanFiles(_Base):
    """Export, save and open (a mixin of the app)."""

    session: Session | None
    plan_path: str | None
    export_memory: ExportMemory  # the paths the export dialog had last time
    compare_spec: str | None  # what c compared with last time

    def file_path(self) -> str:
        """Where save and open start: the plan's file, or for a preset (``preset:gpt2``,
        not a file) ``gpt2.toml``."""
        path = self.plan_path or DEFAULT_PLAN_FILE
        return f"{path.removeprefix('preset:')}.toml" if path.startswith("preset:") else path

    def action_export(self) -> None:
        session = self.require_session()
        if session is None:
            return
        plan_file = self.file_path() if self.plan_path else None
        screen = ExportScreen(session, self.target, plan_file, self.export_memory)
        self.push_screen(screen, self.exported)

    def exported(self, result: Exported | None) -> None:
        if result is None:
            return
        session = self.session
        if result.plan_file and session is not None and result.plan == session.plan:
            # The plan file holds the working plan: it is saved there, as with s.
            self.plan_path = result.plan_file
            self.save_confirmed = True
            self.saved_plan = session.plan
            self.update_header()
        self.notify("wrote " + ", ".join(result.paths), title="export", timeout=6)
        self.set_status(Text("wrote " + ", ".join(result.paths), style="green"))

    # -- which file the plan belongs to (undo and redo of open restore it) -------------

    def file_state(self) -> FileState:
        return FileState(self.plan_path, self.saved_plan, self.save_confirmed)

    def restore_file_state(self, files: FileState) -> None:
        self.plan_path = files.path
        self.saved_plan = files.saved_plan
        self.save_confirmed = files.confirmed
        self.update_header()

    # -- compare -------------------------------------------------------------------------

    def action_compare(self) -> None:
        """Diff the working plan with a plan file, a preset or a checkpoint (the path
        dialog's worker computes it; its errors stay in the dialog)."""
        session = self.require_session()
        if session is None:
            return
        self.push_screen(
            PathScreen(
                "Compare the working plan with",
                self.compare_spec or self.plan_path or "preset:",
                "Compare",
                compare_action(session, self.seed),
                hint=COMPARE_HINT,
            ),
            self.compared,
        )

    def compared(self, result: object) -> None:
        if not isinstance(result, DiffResult):
            return
        spec = result.b.source
        self.compare_spec = spec
        session = self.session
        options = {  # the preview's inputs as the app's own preview takes them
            "input_shapes": list(getattr(self, "input_shapes", None) or ()) or None,
            "input_dtype": getattr(self, "input_dtype", None),
            "inputs_file": getattr(self, "inputs_file", None),
            "seed": self.seed if isinstance(self.seed, int) else 0,
        }
        loaded = None if session is None else session.loaded
        self.push_screen(CompareScreen(result, spec, loaded, options))

    def action_save(self) -> None:
        session = self.require_session()
        if session is None:
            return
        if self.plan_path and self.save_confirmed and not self.plan_path.startswith("preset:"):
            self.write_plan(self.plan_path, force=True)
            return

        def check(path: str) -> tuple[str, bool]:
            from inittui.core.export import check_destination

            dest = check_destination(path, True, (".toml",), "plan")
            return path, dest.exists()

        self.push_screen(
            PathScreen(
                "Save the plan",
                self.file_path(),
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
            plan = read_plan(path, self.seed)
            args = constructor_arguments(session.loaded)
            resolved = resolve_plan(plan, session.loaded.model, session.tree, constructor_args=args)
            return path, PlanState(plan, resolved, f"opened {Path(path).name}")

        self.push_screen(
            PathScreen(
                "Open a plan",
                self.file_path(),
                "Open",
                load,
                hint="a TOML plan or preset:NAME; it replaces the current plan (u undoes)",
            ),
            self.plan_opened,
        )

    def plan_opened(self, result: object) -> None:
        if not result or self.session is None:
            return
        path, state = result  # type: ignore[misc]
        state.files = (self.file_state(), FileState(path, state.plan, False))
        self.restore_file_state(state.files[1])
        self.commit(state)
        self.notify(f"opened {path}: {len(state.plan.rules)} rule(s)", timeout=3)
