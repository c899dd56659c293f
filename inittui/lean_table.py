"""``LeanTable``: the command line's big tables laid out in one pass and printed as
segments (a 10,000-module ``inspect`` in 1.2 s where a ``rich.table.Table`` takes 10 s;
see benchmarks/bench_cli_tables.py). Names are cut keeping their end."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text


class LeanTable:
    """A table of one-line cells, laid out in one pass: rich's ``Table`` measures and wraps
    every cell and takes seconds for the 20,000 rows of a 10,000-module model; this takes
    a few tens of milliseconds. Columns keep their natural width; when the table is wider
    than the console, the columns that allow it (``shrink``) are cut with an ellipsis,
    widest first, down to ``min_width``."""

    def __init__(self) -> None:
        # header, justify, max width, min width when shrunk (0: never), shrink order, cut
        self.columns: list[tuple[str, str, int | None, int, int, str]] = []
        self.rows: list[Sequence[str | Text]] = []
        # column -> (draw(value, width) -> Text, header(width) -> str): cells drawn to fit
        self.fills: dict[int, tuple[Callable[[object, int], Text], Callable[[int], str]]] = {}

    def add_fill_column(
        self,
        draw: Callable[[object, int], Text],
        header: Callable[[int], str],
        min_width: int,
        max_width: int,
    ) -> None:
        """A column whose cells are values that ``draw`` turns into a ``Text`` of the width
        the column gets: ``max_width`` when there is room, at least ``min_width`` (it gives
        way first), else the column is left out."""
        self.fills[len(self.columns)] = (draw, header)
        self.columns.append((header(max_width), "left", max_width, min_width, -1, "right"))

    def add_column(
        self,
        header: str,
        justify: str = "left",
        max_width: int | None = None,
        shrink: int = 0,
        order: int = 0,
        cut: str = "right",
    ) -> None:
        """``shrink``: the width the column may be cut down to (0: never cut); columns are
        cut in ``order`` (lowest first); ``cut="left"`` keeps the end of a cell (the
        ``..._l0`` of a parameter name) and puts the ellipsis first."""
        self.columns.append((header, justify, max_width, shrink, order, cut))

    def add_row(self, *cells: str | Text | tuple[str, str]) -> None:
        """Cells: plain strings, ``(plain, style)`` pairs or ``Text`` (several styles)."""
        self.rows.append(cells)

    def widths(self, room: int) -> list[int]:
        """Each column's width; 0 for a fill column left out."""
        widths = [len(column[0]) for column in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                if i in self.fills:
                    continue
                if isinstance(cell, tuple):
                    cell = cell[0]
                width = cell.cell_len if isinstance(cell, Text) else cell_len(cell)
                if width > widths[i]:
                    widths[i] = width
        for i, column in enumerate(self.columns):
            if i in self.fills:
                widths[i] = column[2] or widths[i]  # as wide as allowed: it shrinks first
            elif column[2] is not None:
                widths[i] = min(widths[i], max(column[2], len(column[0])))
        overflow = 1 + sum(widths) + 2 * (len(widths) - 1) - room
        # Fill columns give way first (narrower, then left out), then the others in order.
        for i in self.fills:
            cut = min(max(overflow, 0), widths[i] - self.columns[i][3])
            widths[i] -= cut
            overflow -= cut
        for i in self.fills:
            if overflow > 0:
                overflow -= widths[i] + 2
                widths[i] = 0
        shrinkable = sorted(
            (c[4], i) for i, c in enumerate(self.columns) if c[3] and i not in self.fills
        )
        for _order, i in shrinkable:
            if overflow <= 0:
                break
            cut = min(overflow, max(0, widths[i] - self.columns[i][3]))
            widths[i] -= cut
            overflow -= cut
        return widths

    def render(self, console: Console) -> None:
        """Print the table, as segments built here: no ``Text`` per cell or line for rich
        to measure, wrap and split (the cost of a 20,000-row table)."""
        widths = self.widths(console.width)
        styles: dict[str, Style] = {}

        def style_of(name: str) -> Style | None:
            if not name:
                return None
            if name not in styles:
                styles[name] = console.get_style(name)
            return styles[name]

        segments: list[Segment] = []
        newline = Segment.line()

        def emit(cells: Sequence[object], style: str = "", head: bool = False) -> None:
            line: list[Segment] = [Segment(" ")]
            extra = style_of(style)
            for i, cell in enumerate(cells):
                if i in self.fills:
                    if not widths[i]:
                        continue
                    draw, header = self.fills[i]
                    cell = header(widths[i]) if head else draw(cell, widths[i])
                if i:
                    line.append(Segment("  "))
                if isinstance(cell, tuple):  # (plain, style)
                    plain, base = cell
                    cell = Text(plain, style=base) if cell_len(plain) > widths[i] else cell
                elif not isinstance(cell, Text) and cell_len(cell) > widths[i]:  # type: ignore
                    cell = Text(cell)  # type: ignore[arg-type]
                if isinstance(cell, Text) and cell.cell_len > widths[i]:
                    cell = _cut(cell, widths[i], self.columns[i][5])
                if isinstance(cell, Text):
                    pieces = [
                        Segment(
                            seg.text,
                            (seg.style + extra) if extra and seg.style else seg.style or extra,
                        )
                        for seg in cell.render(console)
                    ]
                    used = cell.cell_len
                elif isinstance(cell, tuple):
                    base_style = style_of(cell[1])
                    if extra:
                        base_style = base_style + extra if base_style else extra
                    pieces = [Segment(cell[0], base_style)]
                    used = cell_len(cell[0])
                else:
                    pieces = [Segment(cell, extra)]  # type: ignore[arg-type]
                    used = cell_len(cell)  # type: ignore[arg-type]
                gap = Segment(" " * (widths[i] - used))
                if self.columns[i][1] == "right":
                    line.append(gap)
                    line.extend(pieces)
                else:
                    line.extend(pieces)
                    line.append(gap)
            while line and not line[-1].text.strip():  # no trailing blanks
                line.pop()
            segments.extend(line)
            segments.append(newline)

        emit([header for header, *_ in self.columns], "bold", head=True)
        shown = [w for i, w in enumerate(widths) if w or i not in self.fills]
        segments.append(Segment(" " + "─" * (sum(shown) + 2 * (len(shown) - 1))))
        segments.append(newline)
        for row in self.rows:
            emit(row)
        console.print(_Segments(segments), soft_wrap=True)


class _Segments:
    """Prints ready-made segments as they are."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments

    def __rich_console__(self, console: Console, options: object) -> list[Segment]:
        return self.segments


def _cut(text: Text, width: int, side: str) -> Text:
    """``text`` cut to ``width`` cells with an ellipsis at the end (or, ``side="left"``,
    at the start, keeping the end)."""
    text = text.copy()
    if side == "left" and width > 1:
        keep = text.plain[-(width - 1) :]
        while cell_len(keep) > width - 1:
            keep = keep[1:]
        cut = Text("…")
        cut.append_text(text[len(text.plain) - len(keep) :])
        return cut
    text.truncate(width, overflow="ellipsis")
    return text
