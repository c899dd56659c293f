"""The one error type the core raises for bad input.

Every message is one line that says what is wrong and what to do; the CLI prints it as
``error: <message>`` and exits with status 2, the TUI shows it in a notification.
"""

from __future__ import annotations


class InittuiError(Exception):
    """Bad input from the user: a target, an argument, a checkpoint, a plan, a path."""


class CancelledError(InittuiError):
    """Long work stopped at the user's request."""
