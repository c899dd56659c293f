"""Small text formatters shared by the widgets: counts, numbers, sparklines, log bars."""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = " ▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"
LOG_LOW, LOG_HIGH = -4.0, 2.0  # the log10 range the std bars cover: 1e-4 .. 1e2


def count(n: int) -> str:
    """``4160`` -> ``"4.2K"``; ``12_345_678`` -> ``"12.3M"``."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return str(n)


def num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.{max(digits - 1, 0)}e}"


def short(value: float | None) -> str:
    """At most 7 characters: ``0.318``, ``3.2e-05``, ``12.5``."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    if 1e-2 <= abs(value) < 1e3:
        return f"{value:.3g}"
    return f"{value:.1e}"


def sparkline(counts: Sequence[int], width: int = 16) -> str:
    """A histogram as block characters, ``width`` cells (bins merged in groups)."""
    values = list(counts)
    if not values:
        return ""
    if len(values) > width:
        group = math.ceil(len(values) / width)
        values = [sum(values[i : i + group]) for i in range(0, len(values), group)]
    top = max(values)
    if top <= 0:
        return BLOCKS[1] * len(values)
    out = []
    for value in values:
        level = 0 if value == 0 else max(1, round(value / top * (len(BLOCKS) - 1)))
        out.append(BLOCKS[level])
    return "".join(out)


def log_bar(value: float | None, width: int = 6) -> str:
    """A horizontal bar whose length is log10(value) on [1e-4, 1e2], in eighths."""
    if value is None or not math.isfinite(value) or value <= 0:
        return " " * width
    position = (math.log10(value) - LOG_LOW) / (LOG_HIGH - LOG_LOW)
    eighths = round(min(max(position, 0.0), 1.0) * width * 8)
    eighths = max(eighths, 1)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (EIGHTHS[part] if part else "")
    return bar.ljust(width)[:width]


def error_text(error: BaseException | None, fallback: str = "cancelled") -> str:
    """One line for a worker's failure: an InittuiError's own message (it already says what
    to do), else ``Type: message``."""
    from inittui.core.errors import InittuiError

    if error is None:
        return fallback
    if isinstance(error, InittuiError):
        return str(error)
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0]
