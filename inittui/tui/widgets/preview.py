"""Per-layer output std, current vs planned, as two log-scale bars per leaf layer."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from inittui.core.probe import Preview, PreviewRow
from inittui.tui.widgets.text import log_bar, short

NOW_STYLE = "blue"
PLAN_STYLE = "magenta"


def _cell(value: float | None, style: str, flagged: str | None, bar: int) -> Text:
    """`` ███▏  0.613``: a log-scale bar and the value (cells carry their own spacing)."""
    text = Text(no_wrap=True)
    text.append(" ")
    text.append(log_bar(value, bar), style="red" if flagged == "error" else style)
    text.append(" ")
    text.append(
        f"{short(value):>7}",
        style="bold red" if flagged == "error" else ("bold yellow" if flagged == "warning" else ""),
    )
    return text


def _level(row: PreviewRow, which: str) -> str | None:
    kinds = [flag.kind for flag in row.flags if flag.which == which]
    if any(kind in ("nan", "exploding") for kind in kinds):
        return "error"
    if kinds:
        return "warning"
    return None


class PreviewTable(DataTable):
    """One row per leaf layer call. Highlighting a row selects the module in the tree."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="preview.down"),
        Binding("k", "cursor_up", "Up", show=False, id="preview.up"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=0)
        self.row_paths: dict[str, str] = {}

    def show(self, preview: Preview) -> None:
        self.clear(columns=True)
        self.row_paths = {}
        parent = self.parent
        available = parent.content_size.width if parent is not None else self.size.width
        available = available or self.size.width or 40
        narrow = available < 56
        bar = 3 if narrow else 6
        self.add_column(" layer", key="layer")
        self.add_column(Text(" now std", style=NOW_STYLE), key="now")
        show_ratio = preview.planned and not narrow  # narrow: the detail pane has it
        if preview.planned:
            self.add_column(Text(" plan std", style=PLAN_STYLE), key="plan")
        if show_ratio:
            self.add_column("  ×", key="ratio")
        if preview.backward:
            self.add_column(Text(" now grad", style=NOW_STYLE), key="now_grad")
            if preview.planned:
                self.add_column(Text(" plan grad", style=PLAN_STYLE), key="plan_grad")
        cell = bar + 9
        width = max(10, available - 1 - cell * (2 if preview.planned else 1))
        for i, row in enumerate(preview.rows):
            name = row.path + (f"#{row.call}" if row.call else "")
            if len(name) > width - 1:
                name = "…" + name[-(width - 2) :]
            label = Text(" " + name, no_wrap=True)
            if row.flags:
                label.stylize(
                    "bold red"
                    if _level(row, "now") == "error" or _level(row, "planned") == "error"
                    else "bold yellow"
                )
            cells: list[Text | str] = [
                label,
                _cell(row.now_std, NOW_STYLE, _level(row, "now"), bar),
            ]
            if preview.planned:
                cells.append(_cell(row.plan_std, PLAN_STYLE, _level(row, "planned"), bar))
            if show_ratio:
                ratio = row.ratio
                cells.append(Text("  -" if ratio is None else f"  {short(ratio)}", style="dim"))
            if preview.backward:
                cells.append(_cell(row.now_grad, NOW_STYLE, None, bar))
                if preview.planned:
                    cells.append(_cell(row.plan_grad, PLAN_STYLE, None, bar))
            key = f"{i}:{row.path}"
            self.row_paths[key] = row.path
            self.add_row(*cells, key=key)

    def path_of(self, row_key: object) -> str | None:
        value = getattr(row_key, "value", row_key)
        return self.row_paths.get(str(value))
