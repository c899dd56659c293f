"""The error types the core raises.

:class:`InittuiError` is bad input: every message is one line that says what is wrong and
what to do; the CLI prints it as ``error: <message>`` and exits with status 2, the TUI shows
it in a notification. :class:`Cancelled` is long work stopped at the user's request: the
TUI recognises every cancellation by this one base class.
"""

from __future__ import annotations


class InittuiError(Exception):
    """Bad input from the user: a target, an argument, a checkpoint, a plan, a path."""


class Cancelled(Exception):  # noqa: N818 - the name says what happened, like KeyboardInterrupt
    """Long work stopped at the user's request (the base of every cancellation)."""


class CancelledError(InittuiError, Cancelled):
    """Apply, preview, LSUV or export stopped at the user's request (message: what stopped)."""


class StatsCancelled(Cancelled):
    """Raised by :func:`inittui.core.stats.compute_stats` when its ``cancel`` callback
    returns True."""
