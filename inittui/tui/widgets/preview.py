"""The preview table: per-layer output std now, planned and predicted, fitted to the pane.

A line list of our own on ``ScrollView`` (the rows are drawn only where they show, so a
re-layout on every resize costs nothing on a 10,000-layer model). The columns are chosen
from the pane's width each time it changes (:func:`preview_layout`): the layer column (the
shortest unique suffix of each path, :func:`inittui.core.formatting.unique_suffixes`) never
scrolls away; then ``now``, ``plan``, ``plan/now`` and a flag column with text markers
(``!!`` error, ``!`` warning, ``~`` info, and a word when it fits); wider panes add the
theory's prediction, the gradient std (after a backward pass) and log-scale bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from inittui.core.formatting import fit_middle, unique_suffixes
from inittui.core.probe import Preview, PreviewRow
from inittui.tui.widgets.text import log_bar, short

NOW_STYLE = "blue"
PLAN_STYLE = "magenta"
THEORY_STYLE = "green"
LEVEL_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "cyan"}
MARKS = {"error": "!!", "warning": "!", "info": "~"}
FLAG_WORDS = {
    "nan": "nan",
    "exploding": "explode",
    "vanishing": "vanish",
    "exploding_grad": "g.explode",
    "vanishing_grad": "g.vanish",
}
FIELDS = {
    "now": "now_std",
    "plan": "plan_std",
    "theory": "theory_std",
    "now_grad": "now_grad",
    "plan_grad": "plan_grad",
}
THEORY_OFF = 2.0  # a measured std this far from the theory's, either way, is marked ``~ theory``
VALUE, RATIO, GRAD, MARK, WORD = 8, 9, 9, 3, 11  # column widths (a leading space each)
LAYER_MIN, LAYER_COMFORT, BAR_MAX = 8, 16, 6


# --------------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int
    style: str = ""


def row_flag(row: PreviewRow, planned: bool) -> tuple[str, str] | None:
    """``(level, word)`` for the flag column: the flags of the weights the table judges (the
    planned ones when a plan was compared); ``info`` for a flag the plan removes
    (``~ explode``) or a std more than :data:`THEORY_OFF` times off the theory's."""
    which = "planned" if planned else "now"
    judged = [f for f in row.flags if f.which == which]
    if judged:
        kinds = [f.kind for f in judged]
        level = "error" if any(k in ("nan", "exploding") for k in kinds) else "warning"
        worst = next((k for k in FLAG_WORDS if k in kinds), kinds[0])
        return level, FLAG_WORDS.get(worst, worst)
    before = [f for f in row.flags if f.which == "now"]
    if before:
        return "info", FLAG_WORDS.get(before[0].kind, before[0].kind)
    std = row.plan_std if planned else row.now_std
    theory = row.theory_std
    if std and theory and math.isfinite(std) and theory > 0:
        if abs(math.log(std / theory)) > math.log(THEORY_OFF):
            return "info", "theory"
    return None


def deviation(row: PreviewRow) -> float:
    """How far the plan moves the row: |log ratio| (the sort key of "worst first"); rows
    without a ratio (no plan) sort by how far their std is from 1."""
    ratio = row.ratio
    if ratio is not None and ratio > 0 and math.isfinite(ratio):
        return abs(math.log(ratio))
    std = row.plan_std if row.plan_std is not None else row.now_std
    if std is None or not math.isfinite(std):
        return math.inf
    return abs(math.log(std)) if std > 0 else math.inf


def preview_layout(
    width: int, planned: bool, backward: bool, longest: int
) -> tuple[list[Column], int]:
    """The columns for a pane ``width`` cells wide (the layer column first, its width
    included) and the bar width of the std cells (0: no bars). ``now`` (with a plan also
    ``plan`` and ``plan/now``) and the flag markers always show; the flag word, theory and
    gradient columns join while the layer column keeps ``min(longest, 16)`` cells; what is
    left widens the layer column up to ``longest``, then draws bars."""
    columns = [Column("now", "now", VALUE, NOW_STYLE)]
    if planned:
        columns += [Column("plan", "plan", VALUE, PLAN_STYLE), Column("ratio", "plan/now", RATIO)]
    columns.append(Column("flag", "", MARK))
    extras = [Column("flag", "flag", WORD), Column("theory", "theory", VALUE, THEORY_STYLE)]
    if backward:
        extras.append(Column("now_grad", "now grad", GRAD, NOW_STYLE))
        if planned:
            extras.append(Column("plan_grad", "plan grad", GRAD, PLAN_STYLE))
    comfort = min(max(longest, LAYER_MIN), LAYER_COMFORT)
    for extra in extras:
        used = sum(c.width for c in columns)
        grow = extra.width - (MARK if extra.key == "flag" else 0)
        if width - used - grow < comfort:
            break
        if extra.key == "flag":
            columns[columns.index(Column("flag", "", MARK))] = extra
        else:
            columns.append(extra)
    used = sum(c.width for c in columns)
    layer = max(LAYER_MIN, min(width - used, max(longest + 1, LAYER_MIN)))
    spare = width - used - layer
    barred = 2 if planned else 1
    bar = min(BAR_MAX, spare // barred - 1) if spare >= 4 * barred else 0
    if bar:
        columns = [
            Column(c.key, c.title, c.width + bar + 1, c.style) if c.key in ("now", "plan") else c
            for c in columns
        ]
    return [Column("layer", "layer", layer), *columns], bar


def _value(value: float | None, style: str, width: int, bar: int, level: str | None) -> Text:
    text = Text(no_wrap=True)
    if bar:
        text.append(" " + log_bar(value, bar), style="red" if level == "error" else style)
    shown = short(value)
    text.append(f"{shown:>{width - len(text)}}", style=LEVEL_STYLE.get(level or "", ""))
    return text


def _cell(value: float | None, style: str, flagged: str | None, bar: int) -> Text:
    """`` ███▏   0.613``: a std cell with a ``bar``-wide log bar (the CLI prints the same)."""
    return _value(value, style, bar + 9, bar, flagged)


def row_text(row: PreviewRow, label: str, columns: list[Column], bar: int, planned: bool) -> Text:
    """One row of the table, ``sum(widths)`` cells."""
    flag = row_flag(row, planned)
    level = flag[0] if flag else None
    text = Text(no_wrap=True)
    for column in columns:
        key, width = column.key, column.width
        if key == "layer":
            text.append(
                " " + fit_middle(label, width - 1).ljust(width - 1), style="bold" if flag else ""
            )
        elif key == "flag":
            cell = "" if flag is None else MARKS[flag[0]] + (" " + flag[1] if width > MARK else "")
            text.append(
                f" {cell[: width - 1]:<{width - 1}}", style=LEVEL_STYLE.get(level or "", "")
            )
        elif key == "ratio":
            text.append(f"{short(row.ratio):>{width}}", style="dim" if row.ratio is None else "")
        else:
            value = getattr(row, FIELDS[key])
            judged = level if key == ("plan" if planned else "now") else None
            text.append_text(
                _value(value, column.style, width, bar if key in ("now", "plan") else 0, judged)
            )
    return text


def header_text(columns: list[Column]) -> Text:
    text = Text(no_wrap=True)
    for column in columns:
        if column.key == "layer":
            text.append(f" {column.title:<{column.width - 1}}", style="bold")
        else:
            text.append(f"{column.title:>{column.width}}", style=f"bold {column.style}".strip())
    return text


# --------------------------------------------------------------------------- the widget


class PreviewTable(ScrollView, can_focus=True):
    """One row per leaf layer call, the header line fixed on top. Moving the cursor posts
    :class:`PreviewTable.Highlighted`; ``enter`` posts :class:`PreviewTable.Selected`."""

    COMPONENT_CLASSES = {"preview--cursor", "preview--header"}
    DEFAULT_CSS = """
    PreviewTable {
        overflow-x: hidden;
        overflow-y: auto;
    }
    PreviewTable > .preview--cursor { background: $surface-lighten-1; }
    PreviewTable:focus > .preview--cursor { background: $accent 40%; text-style: bold; }
    PreviewTable > .preview--header { background: $panel; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="preview.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="preview.down"),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First row", show=False, id="preview.first"),
        Binding("end,G", "last", "Last row", show=False, id="preview.last"),
        Binding("n", "flagged(1)", "Next flag", id="preview.next-flag"),
        Binding("N", "flagged(-1)", "Prev flag", show=False, id="preview.prev-flag"),
        Binding("w", "toggle_sort", "Worst first", id="preview.sort"),
        Binding("enter", "select", "Go to module", show=False, id="preview.select"),
    ]

    cursor = reactive(0, always_update=True)

    @dataclass
    class _TableMessage(Message):
        """A message about this table (``control`` is the table, for ``@on`` selectors)."""

        table: PreviewTable

        @property
        def control(self) -> PreviewTable:
            return self.table

    @dataclass
    class Highlighted(_TableMessage):
        """The cursor moved to the row of ``path``."""

        path: str

    @dataclass
    class Selected(_TableMessage):
        """``enter`` on the row of ``path``."""

        path: str

    @dataclass
    class Shown(_TableMessage):
        """New rows arrived (:meth:`show`)."""

        preview: Preview

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.preview: Preview | None = None
        self.worst_first = False
        self.order: list[int] = []  # the display order: indexes into preview.rows
        self.labels: list[str] = []
        self.columns: list[Column] = []
        self.bar = 0
        self._laid_out_width = -1

    # -- data -------------------------------------------------------------------------

    def show(self, preview: Preview) -> None:
        """Show ``preview``'s rows, keeping the cursor on the same layer when it is there."""
        keep = self.cursor_path
        self.preview = preview
        names = unique_suffixes([row.path for row in preview.rows])
        self.labels = [
            name + (f"#{row.call}" if row.call else "")
            for name, row in zip(names, preview.rows, strict=True)
        ]
        self._sort()
        self.relayout(force=True)
        # shown while hidden or before the pane's layout settled, the width may be stale:
        # check it again once the screen is laid out (a resize then re-lays it out too)
        self.call_after_refresh(self.relayout)
        if keep is not None:
            self.go_to_path(keep)
        self.post_message(self.Shown(self, preview))

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def rows(self) -> list[PreviewRow]:
        """The rows in display order."""
        return [] if self.preview is None else [self.preview.rows[i] for i in self.order]

    @property
    def cursor_path(self) -> str | None:
        if self.preview is None or not self.order:
            return None
        return self.preview.rows[self.order[min(self.cursor, len(self.order) - 1)]].path

    def label(self, position: int) -> str:
        """The layer column's text of the row at display ``position``, fitted."""
        return fit_middle(self.labels[self.order[position]], self.columns[0].width - 1)

    def go_to_path(self, path: str) -> bool:
        rows = self.rows
        for position, row in enumerate(rows):
            if row.path == path:
                self.cursor = position
                return True
        return False

    def _sort(self) -> None:
        rows = self.preview.rows if self.preview is not None else []
        self.order = list(range(len(rows)))
        if self.worst_first:
            self.order.sort(key=lambda i: -deviation(rows[i]))

    # -- layout -----------------------------------------------------------------------

    def relayout(self, force: bool = False) -> None:
        """Choose the columns for the current width (on every resize and new data)."""
        width = self.table_width()
        if self.preview is None or (width == self._laid_out_width and not force):
            return
        self._laid_out_width = width
        preview = self.preview
        longest = max((len(label) for label in self.labels), default=LAYER_MIN)
        self.columns, self.bar = preview_layout(width, preview.planned, preview.backward, longest)
        self.virtual_size = Size(width, len(self.order) + 1)
        self.refresh()

    def table_width(self) -> int:
        """The width the rows get: the widget's, less the vertical scrollbar when the rows
        do not fit its height."""
        width, height = self.size
        if len(self.order) + 1 > height:
            width -= self.styles.scrollbar_size_vertical
        return max(width, 1)

    def on_resize(self, event: events.Resize) -> None:
        self.relayout()

    def on_show(self, event: events.Show) -> None:
        self.call_after_refresh(self.relayout)

    # -- drawing ----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.table_width()
        base = self.rich_style
        if self.preview is None or not self.columns:
            return Strip.blank(width, base)
        if y == 0:
            style = base + self.get_component_rich_style("preview--header")
            return self._strip(header_text(self.columns), width, style)
        position = self.scroll_offset.y + y - 1
        if position >= len(self.order):
            return Strip.blank(width, base)
        row = self.preview.rows[self.order[position]]
        text = row_text(row, self.label(position), self.columns, self.bar, self.preview.planned)
        style = base
        if position == self.cursor:
            style = base + self.get_component_rich_style("preview--cursor")
        return self._strip(text, width, style)

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        segments = list(text.render(self.app.console))
        strip = Strip(segments).adjust_cell_length(width)
        return strip.apply_style(style) if style else strip

    # -- cursor -----------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.order) - 1)) if self.order else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self.scroll_to_cursor()
        self.refresh()
        path = self.cursor_path
        if path is not None:
            self.post_message(self.Highlighted(self, path))

    def scroll_to_cursor(self) -> None:
        rows = max(1, self.scrollable_content_region.height - 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, force=True)

    def action_cursor(self, step: int) -> None:
        self.cursor += step

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self.order) - 1

    def action_flagged(self, direction: int) -> None:
        """Jump to the next (1) or previous (-1) row with a flag marker, wrapping around."""
        if self.preview is None:
            return
        planned = self.preview.planned
        rows = self.rows
        count = len(rows)
        for step in range(1, count + 1):
            position = (self.cursor + direction * step) % count
            if row_flag(rows[position], planned) is not None:
                self.cursor = position
                return
        self.notify("no flagged layer in this preview", timeout=2)

    def action_toggle_sort(self) -> None:
        """Model order <-> worst first (largest |log plan/now|); the cursor stays on its row."""
        keep = self.cursor_path
        self.worst_first = not self.worst_first
        self._sort()
        self.refresh()
        if keep is not None:
            self.go_to_path(keep)
        self.notify("sorted: " + ("worst first" if self.worst_first else "model order"), timeout=2)

    def action_select(self) -> None:
        path = self.cursor_path
        if path is not None:
            self.post_message(self.Selected(self, path))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1 and self.order:
            self.cursor = self.scroll_offset.y + event.y - 1
