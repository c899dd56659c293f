"""How a value prints, once for the CLI tables and the TUI: plain strings, no rich/textual.

One function per kind of value, so the same count, std, histogram or shape reads the same
in ``inittui inspect`` and in the TUI's panes:

* :func:`count` -- element counts with a K/M/B/T suffix: one decimal below 100 of a unit.
* :func:`number` -- a float with ``digits`` significant digits; :func:`short` is the
  three-digit form the tables use (7 characters at most for a std).
* :func:`shape` -- a tensor shape, as a tuple in prose or ``4×3`` in a table cell.
* :func:`sparkline` -- a histogram in block characters, empty bins blank.
* :func:`log_bar` -- a std as a bar on a log scale from 1e-3 to 1e3, in eighths of a cell.
* :func:`size` -- a size in bytes (``12.3 MB``).
* :func:`unique_suffixes` / :func:`fit_middle` -- dotted module paths shortened to the
  shortest suffix that still tells them apart, then to a width with a middle ellipsis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = " ▁▂▃▄▅▆▇█"  # sparkline levels: an empty bin is blank, any other shows
EIGHTHS = " ▏▎▍▌▋▊▉█"  # log bar: partial cells
LOG_LOW, LOG_HIGH = -3.0, 3.0  # the log10 range the std bars cover: 1e-3 .. 1e3
LOG_HEADER = "log10 std: -3 … 0 … +3"
_UNITS = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3))


def count(n: int) -> str:
    """``4160`` -> ``"4.2K"``, ``123_456`` -> ``"123K"``, ``7e10`` -> ``"70.0B"``: one
    decimal below 100 of a unit, none above (a value that rounds to 1000 takes the next unit)."""
    if n < 1000:
        return str(n)
    for i, (unit, size) in enumerate(_UNITS):
        if n < size:
            continue
        value = n / size
        text = f"{value:.1f}" if value < 99.95 else f"{value:.0f}"
        if text == "1000" and i:  # 999_950 -> "1.0M", not "1000K"
            return f"{value / 1000:.1f}{_UNITS[i - 1][0]}"
        return text + unit
    return str(n)  # pragma: no cover - n >= 1000 always meets "K"


def number(value: float | None, digits: int = 4) -> str:
    """A compact number: ``0.0442``, ``-1.2e-05``, ``3.1e+04``; ``-`` for None.

    ``digits`` significant digits between 1e-3 and ``10**digits``; outside that range the
    exponent form keeps ``digits - 1`` of them (at least 2), so both forms are about as
    wide. NaN and infinities print as ``nan``, ``inf``, ``-inf``.
    """
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    if abs(value) >= 1e-3:
        text = f"{value:.{digits}g}"
        if "e" not in text:
            return text
    return f"{value:.{max(digits - 2, 1)}e}"


def short(value: float | None) -> str:
    """A table's number: :func:`number` with 3 significant digits (``0.318``, ``3.2e-05``,
    ``0.00123``); at most 7 characters for 0 and values from 1e-99 to 9.9e99."""
    return number(value, 3)


def shape(dims: Sequence[int] | None, cell: bool = False) -> str:
    """A tensor shape. In prose, Python's tuple: ``(4, 3)``, ``(4,)``, ``()``,
    ``(uninitialized)``; as a table ``cell``: ``4×3``, ``scalar``, ``uninitialized``."""
    if dims is None:
        return "uninitialized" if cell else "(uninitialized)"
    if cell:
        return "×".join(map(str, dims)) or "scalar"
    return repr(tuple(dims))


def sparkline(counts: Sequence[int], width: int = 16) -> str:
    """A histogram as block characters, at most ``width`` cells.

    More bins than cells are merged in equal groups (a shorter last group is scaled up to
    the same bin width, so it does not look emptier than it is). A group's height is its
    share of the tallest, rounded to eighths: an empty group is a blank, any other at least
    the lowest block.
    """
    values = [float(c) for c in counts]
    if not values or width < 1:
        return ""
    if len(values) > width:
        group = math.ceil(len(values) / width)
        values = [
            sum(values[i : i + group]) * group / len(values[i : i + group])
            for i in range(0, len(values), group)
        ]
    top = max(values)
    if top <= 0:
        return BLOCKS[0] * len(values)
    top_level = len(BLOCKS) - 1
    return "".join(
        BLOCKS[0] if v <= 0 else BLOCKS[max(1, round(v / top * top_level))] for v in values
    )


def log_bar(value: float | None, width: int = 24) -> str:
    """``width`` cells: a bar whose length is log10(value) from 1e-3 (empty) to 1e3 (full),
    in eighths of a cell; half the width is std 1. A value at or below 1e-3 shows one
    eighth; None, NaN, infinities and values <= 0 show no bar (blanks)."""
    if value is None or not math.isfinite(value) or value <= 0 or width < 1:
        return " " * max(width, 0)
    position = (math.log10(value) - LOG_LOW) / (LOG_HIGH - LOG_LOW)
    eighths = max(1, round(min(max(position, 0.0), 1.0) * width * 8))
    full, part = divmod(eighths, 8)
    bar = "█" * full + (EIGHTHS[part] if part else "")
    return bar.ljust(width)[:width]


def size(nbytes: float) -> str:
    """``512`` -> ``"512 B"``, ``3 * 2**20`` -> ``"3.0 MB"`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1024:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PB"


def unique_suffixes(paths: Sequence[str]) -> list[str]:
    """For each dotted path, the shortest suffix of whole components that no other distinct
    path in ``paths`` ends with, widened while it starts with an index so that the index
    keeps its container's name: ``transformer.h.0.attn.c_attn`` beside
    ``transformer.h.1.attn.c_attn`` is ``h.0.attn.c_attn``, ``layers.0`` stays ``layers.0``,
    ``transformer.ln_f`` is ``ln_f``. Repeated paths share their suffix; the root (``""``)
    prints as ``(root)``."""
    distinct = sorted(set(paths))
    depth: dict[str, int] = {}
    counts: dict[str, int] = {}
    for path in distinct:
        parts = path.split(".")
        for k in range(1, len(parts) + 1):
            tail = ".".join(parts[-k:])
            counts[tail] = counts.get(tail, 0) + 1
    for path in distinct:
        parts = path.split(".")
        k = next((k for k in range(1, len(parts)) if counts[".".join(parts[-k:])] == 1), len(parts))
        while k < len(parts) and parts[-k].isdigit():
            k += 1
        depth[path] = k
    return [".".join(p.split(".")[-depth[p] :]) if p else "(root)" for p in paths]


def fit_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: a dotted name keeps its first component, with
    the index after it (the part that tells it apart, after :func:`unique_suffixes`), and as
    many whole last components as fit (``h.0.…c_attn``); otherwise the middle gives way to
    ``…``."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head, _, rest = text.partition(".")
    index, _, after = rest.partition(".")
    if index.isdigit() and after:
        head, rest = f"{head}.{index}", after
    if rest:
        room = width - len(head) - 2  # "head.…tail"
        parts = rest.split(".")
        for k in range(len(parts) - 1, 0, -1):
            tail = ".".join(parts[-k:])
            if len(tail) <= room:
                return f"{head}.…{tail}"
        if room >= 4:
            return f"{head}.…{rest[-room:]}"
    front = (width - 1 + 1) // 2
    back = width - 1 - front
    return text[:front] + "…" + (text[-back:] if back else "")
