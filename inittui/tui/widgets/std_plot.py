"""The std-versus-depth plot: pure text, drawn on a braille canvas (2x4 dots per cell).

:func:`plot_lines` draws series of per-layer values on a log10 y axis labelled in powers of
ten (``1e-2``), the layer index on x, each series as a braille line with its own marker
character at sampled points (so series read apart without colour), and a legend.
Flagged layers get a ``!`` on the x axis. No Textual here: the widget only colours cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

BRAILLE = 0x2800
# Dot bits by (column, row) in a cell: the Unicode braille pattern layout.
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
LABEL = 5  # y label cells ("1e-2 "), then the axis


class BrailleCanvas:
    """``width`` x ``height`` cells of 2x4 dots; ``set(x, y)`` with y down from the top."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[0] * width for _ in range(height)]

    def set(self, x: int, y: int) -> None:
        if 0 <= x < self.width * 2 and 0 <= y < self.height * 4:
            self.cells[y // 4][x // 2] |= DOT_BITS[x % 2][y % 4]

    def line(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """Bresenham's line between two dots, both ends included."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.set(x0, y0)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def char(self, column: int, row: int) -> str:
        bits = self.cells[row][column]
        return chr(BRAILLE + bits) if bits else " "


@dataclass(frozen=True)
class Series:
    name: str
    marker: str
    values: Sequence[float | None]


@dataclass
class Plot:
    """The plot's text: ``lines`` of equal width and, per cell, the index of the series that
    drew it (``owners``; None for axes, labels and blanks), for the widget to colour."""

    lines: list[str]
    owners: list[list[int | None]]


def _log(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return math.log10(value)


def decade_label(power: int) -> str:
    """``1e-2``, ``1e0``, ``1e3``: a power of ten in at most 4 cells."""
    return f"1e{power}"


def plot_lines(
    series: Sequence[Series],
    width: int,
    height: int,
    flagged: Sequence[int] = (),
    title: str = "",
) -> Plot:
    """The plot in ``width`` x ``height`` cells: a legend line, the canvas with its y axis,
    the x axis (``!`` under flagged layer indexes) and the x labels. Series drawn later lie
    on top. With no positive finite value, one line says so."""
    rows = max(1, height - 3)
    cols = max(2, width - LABEL - 1)
    logs = [[_log(v) for v in s.values] for s in series]
    known = [v for values in logs for v in values if v is not None]
    if not known:
        lines = [_legend(series, title, width), "no positive std to plot".ljust(width)[:width]]
        return Plot(lines, [[None] * width for _ in lines])
    top, bottom = math.ceil(max(known)), math.floor(min(known))
    if top - bottom < 1:
        top, bottom = bottom + 1, bottom
    count = max(len(s.values) for s in series)

    def dot_x(i: int) -> int:
        return 0 if count <= 1 else round(i * (cols * 2 - 1) / (count - 1))

    def dot_y(v: float) -> int:
        return round((top - v) * (rows * 4 - 1) / (top - bottom))

    chars = [[" "] * cols for _ in range(rows)]
    owners: list[list[int | None]] = [[None] * cols for _ in range(rows)]
    marker_step = max(1, math.ceil(count / max(1, cols // 4)))
    for number, values in enumerate(logs):
        canvas = BrailleCanvas(cols, rows)
        previous = None
        for i, v in enumerate(values):
            if v is None:
                previous = None
                continue
            point = (dot_x(i), dot_y(v))
            if previous is None:
                canvas.set(*point)
            else:
                canvas.line(*previous, *point)
            previous = point
        for r in range(rows):
            for c in range(cols):
                if canvas.cells[r][c]:
                    chars[r][c], owners[r][c] = canvas.char(c, r), number
    for number, values in enumerate(logs):  # markers over every line
        offset = number % marker_step  # markers of different series fall on different layers
        for i in range(offset, len(values), marker_step):
            if values[i] is not None:
                c, r = dot_x(i) // 2, dot_y(values[i]) // 4
                chars[r][c], owners[r][c] = series[number].marker, number
    labels = _y_labels(top, bottom, rows)
    lines = [_legend(series, title, width)]
    line_owners: list[list[int | None]] = [[None] * width]
    for r in range(rows):
        label = labels.get(r, "")
        axis = "┤" if r in labels else "│"
        lines.append(f"{label:>{LABEL - 1}} {axis}" + "".join(chars[r]))
        line_owners.append([None] * LABEL + owners[r])
    axis = ["─"] * cols
    for i in flagged:
        if 0 <= i < count:
            axis[dot_x(i) // 2] = "!"
    lines.append(" " * (LABEL - 1) + " └" + "".join(axis))
    line_owners.append([None] * (LABEL + 1 + cols))
    lines.append(" " * LABEL + _x_labels(count, cols))
    line_owners.append([None] * (LABEL + 1 + cols))
    lines = [line.ljust(width)[:width] for line in lines]
    line_owners = [(o + [None] * width)[:width] for o in line_owners]
    return Plot(lines[:height], line_owners[:height])


def _legend(series: Sequence[Series], title: str, width: int) -> str:
    parts = [f"{s.marker} {s.name}" for s in series]
    text = "  ".join(parts) + (f"   {title}" if title else "")
    return text.ljust(width)[:width]


def _y_labels(top: int, bottom: int, rows: int) -> dict[int, str]:
    """``{row: "1e-2"}`` for powers of ten, every ``step``-th decade so labels do not touch."""
    span = top - bottom
    step = 1
    while span / step > max(1, (rows + 1) // 2):
        step += 1
    labels: dict[int, str] = {}
    for power in range(top, bottom - 1, -1):
        if (top - power) % step:
            continue
        row = round((top - power) * (rows * 4 - 1) / span) // 4
        labels.setdefault(row, decade_label(power))
    return labels


def _x_labels(count: int, cols: int) -> str:
    """``0 ... layer ... N-1`` under the x axis."""
    last = str(max(count - 1, 0))
    line = [" "] * (cols + 1)
    line[0] = "0"
    line[cols + 1 - len(last) :] = list(last)
    caption = "layer"
    middle = (cols + 1 - len(caption)) // 2
    if middle > 2 and middle + len(caption) < cols + 1 - len(last):
        line[middle : middle + len(caption)] = list(caption)
    return "".join(line)
