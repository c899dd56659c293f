"""Compare (``c``): the working plan against a saved plan, a preset or a checkpoint, per
parameter (:func:`inittui.core.diff.diff_states`, as ``inittui diff`` does): both sides'
std, their ratio, the Kolmogorov-Smirnov distance and the flags. The other side is asked
for with the path dialog, whose worker computes the diff (plans are applied to copies).
``p`` in the comparison runs the preview with each side's values
(:func:`inittui.core.diff.diff_preview`, as ``inittui diff --preview``) and shows both
per-layer output stds side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from inittui.core.diff import SIDE_FORMS, DiffResult, diff_preview, diff_states, parse_side
from inittui.core.errors import InittuiError
from inittui.core.formatting import number, short
from inittui.tui.session import Session
from inittui.tui.textual_private import PromptFrames
from inittui.tui.widgets.keybar import DialogKeys

FLAG_STYLES = {"differs": "bold red", "identical": "green", "no_data": "yellow"}
COMPARE_HINT = (
    "the working plan (A) against B: a plan file (.toml), preset:NAME, a checkpoint "
    "(.pt, .pth, .safetensors) or current"
)


def compare_action(session: Session, seed: int | None) -> Callable[[str], DiffResult]:
    """What the path dialog runs in its worker: the diff of the working plan with ``spec``."""
    resolved = session.resolved

    def run(spec: str) -> DiffResult:
        parse_side(spec, "B")  # a typo is one line before any copy is made
        if session.loaded.on_meta:
            raise InittuiError("compare needs values: the model is on meta (d moves it)")
        return diff_states(session.loaded, resolved, spec, tree=session.tree, seed=seed)

    return run


def flags_text(flags: list[str]) -> Text:
    text = Text()
    for flag in flags:
        if text:
            text.append(" ")
        text.append(flag, style=FLAG_STYLES.get(flag, "dim"))
    return text


class CompareScreen(DialogKeys, PromptFrames, ModalScreen[None]):
    """The per-parameter table of one comparison; esc closes."""

    DEFAULT_CSS = """
    CompareScreen .compare-dialog {
        height: 90%;
        max-width: 120;
    }
    CompareScreen #compare-table, CompareScreen #compare-preview {
        height: 1fr;
        background: transparent;
    }
    """

    BINDINGS = [
        Binding("p", "preview", "Preview both", id="compare.preview"),
        Binding("escape,q", "close", "Close", id="compare.close"),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    def __init__(
        self,
        result: DiffResult,
        spec: str,
        loaded: object = None,
        preview_options: Mapping[str, Any] | None = None,
    ) -> None:
        """``loaded`` and ``preview_options`` (run_preview's keywords: the app's inputs and
        seed) let ``p`` preview both sides; without ``loaded`` it says it cannot."""
        super().__init__(classes="dialog-screen")
        self.result = result
        self.spec = spec
        self.loaded = loaded
        self.preview_options = dict(preview_options or {})

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog compare-dialog") as box:
            box.border_title = f"Compare: working plan (A) vs {self.spec} (B)"
            yield Static(self.summary(), id="compare-summary")
            yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="compare-preview-info")
            yield DataTable(id="compare-preview", cursor_type="row", zebra_stripes=True)
            yield Static("p previews both sides · esc closes · ratio = std B / std A · "
                         "KS: distribution distance", classes="hint")  # fmt: skip

    def summary(self) -> Text:
        s = self.result.summary()
        style = "bold red" if s["differ"] else "bold green"
        return Text(self.result.summary_line(), style=style)

    def on_mount(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.add_columns("parameter", "std A", "std B", "B/A", "KS", "flags")
        for param in self.result.params:
            table.add_row(
                param.name,
                short(param.a_std),
                short(param.b_std),
                number(param.std_ratio, 3),
                number(param.ks, 2),
                flags_text(param.flags),
                key=param.name,
            )
        table.focus()
        self.query_one("#compare-preview").display = False

    def action_preview(self) -> None:
        """Both sides' per-layer output std (a worker: it runs the model twice)."""
        if self.loaded is None:
            self.notify("no model to preview here", severity="warning", timeout=3)
            return
        info = self.query_one("#compare-preview-info", Static)
        info.update(Text("previewing both sides…", style="dim"))
        self.run_worker(self._preview, thread=True, exclusive=True, group="compare-preview")

    def _preview(self) -> None:
        try:
            paired = diff_preview(self.loaded, self.result, self.preview_options)  # type: ignore[arg-type]
        except InittuiError as exc:
            self.app.call_from_thread(self.show_preview_error, str(exc))
            return
        self.app.call_from_thread(self.show_preview, paired)

    def show_preview_error(self, message: str) -> None:
        self.query_one("#compare-preview-info", Static).update(
            Text(f"preview failed: {message}", style="bold red")
        )

    def show_preview(self, paired: dict) -> None:
        """The paired preview: per leaf layer, the output std with A's and B's values."""
        self.query_one("#compare-preview-info", Static).update(
            Text(
                f"preview: output std per layer, inputs {paired.get('inputs_source') or '-'}",
                style="bold",
            )  # fmt: skip
        )
        table = self.query_one("#compare-preview", DataTable)
        table.clear(columns=True)
        table.add_columns("layer", "std A", "std B", "B/A")
        for layer in paired["layers"]:
            table.add_row(
                layer["path"] or "(root)",
                short(layer["a_std"]),
                short(layer["b_std"]),
                number(layer["ratio"], 3),
            )
        table.display = True

    def action_down(self) -> None:
        self.query_one("#compare-table", DataTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#compare-table", DataTable).action_cursor_up()

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["COMPARE_HINT", "SIDE_FORMS", "CompareScreen", "compare_action"]
