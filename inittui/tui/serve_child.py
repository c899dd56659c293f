"""``python -m inittui.tui.serve_child ARGS``: one browser tab's app under ``inittui serve``.

Asks the kernel to kill this process when the server dies (``PR_SET_PDEATHSIG``), so a
SIGKILLed server leaves no app processes behind, then runs ``inittui ARGS``.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent (the server) exits."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    parent = os.environ.get("INITTUI_SERVE_PARENT")
    if parent and os.getppid() != int(parent):  # the server died before prctl took effect
        os._exit(1)


def main() -> int:
    die_with_parent()
    from inittui.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
