"""The app's file actions: export (script, checkpoint, plan), save and open a plan.

:class:`PlanFiles` is a mixin of :class:`~inittui.tui.app.InitApp`; every write goes
through :mod:`inittui.core.export` (atomic, never over a file without a confirmation).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from inittui.core.errors import InittuiError
from inittui.core.plan import resolve_plan
from inittui.core.plan.expr_context import constructor_arguments
from inittui.core.workspace import read_plan
from inittui.tui.screens.dialogs import ConfirmScreen, PathScreen
from inittui.tui.screens.export import Exported, ExportScreen
from inittui.tui.session import PlanState, Session

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
        self.push_screen(ExportScreen(session, self.target, plan_file), self.exported)

    def exported(self, result: Exported | None) -> None:
        if result is None:
            return
        self.notify("wrote " + ", ".join(result.paths), title="export", timeout=6)
        self.set_status(Text("wrote " + ", ".join(result.paths), style="green"))

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
        self.plan_path = path
        self.save_confirmed = False
        self.saved_plan = state.plan
        self.commit(state)
        self.notify(f"opened {path}: {len(state.plan.rules)} rule(s)", timeout=3)
