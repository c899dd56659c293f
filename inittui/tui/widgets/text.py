"""The TUI's text helpers: the value formatters of :mod:`inittui.core.formatting` (the CLI
tables use the same, so a value prints the same everywhere) and a worker error's one line."""

from __future__ import annotations

from inittui.core.formatting import count, log_bar, short, sparkline
from inittui.core.formatting import short as num  # the panes' numbers: 3 significant digits

__all__ = ["count", "error_text", "log_bar", "num", "short", "sparkline"]


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
