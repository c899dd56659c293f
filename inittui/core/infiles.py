"""Files inittui reads (model files, plans, checkpoints): regular files only, so a FIFO
cannot block the command and a device (``/dev/zero``) cannot be read until memory runs out.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from inittui.core.errors import InittuiError

__all__ = ["require_regular_file"]


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular_file(path: str | os.PathLike, what: str, hint: str) -> os.stat_result:
    """``os.stat`` of ``path`` (following links), refusing anything but a regular file
    with one line: ``{what} {path!r} is a FIFO (named pipe); {hint}``. Folders and missing
    files are left to the caller's own messages."""
    info = os.stat(Path(path))
    if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
        return info
    raise InittuiError(f"{what} {str(path)!r} is {_kind(info.st_mode)}; {hint}")
