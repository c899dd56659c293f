"""Clean standard streams for the headless commands.

While a command runs (:func:`command_streams`), file descriptor 1 points at stderr, so
whatever the model writes (``print`` at import, in its constructor or forward, from threads
it starts, ``os.write(1, ...)``, C extensions) lands on stderr and ``--json`` stdout stays
pure JSON, and empty on errors. ``sys.stdout`` is a router: text printed by inittui's own
code goes to the real stdout (the saved descriptor), anything else to stderr.
:func:`our_stdout` is the real stdout for writers that are not ``print`` (rich, JSON).

A reader that closes the pipe (``inittui inspect M | head -1``) raises :class:`PipeClosed`,
which the command line turns into a quiet exit; characters the stdout encoding cannot hold
(``PYTHONIOENCODING=ascii``) become ASCII look-alikes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator

__all__ = ["PipeClosed", "command_streams", "our_stdout", "restore_closed_pipe"]

# Box and block characters of the tables, sparklines and bars, for ASCII-only stdout.
_ASCII = str.maketrans(
    {
        "─": "-",
        "│": "|",
        "…": "~",
        "×": "x",
        "·": ".",
        "—": "-",
        "→": ">",
        "±": "+-",
        "▁": "_",
        "▂": "_",
        "▃": ".",
        "▄": ":",
        "▅": ":",
        "▆": "|",
        "▇": "|",
        "█": "#",
        "▏": "|",
        "▎": "|",
        "▍": "|",
        "▌": "|",
        "▋": "|",
        "▊": "|",
        "▉": "|",
    }
)


class PipeClosed(Exception):
    """stdout's reader went away (EPIPE). Not a ``BrokenPipeError``, so rich does not turn
    it into ``SystemExit(1)`` on its way up."""


def _is_ours(frame) -> bool:
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    return name == "inittui" or name.startswith("inittui.")


class OurStdout(io.TextIOBase):
    """The real stdout for inittui's own output; EPIPE becomes :class:`PipeClosed`."""

    def __init__(self, stream, isatty: bool) -> None:
        super().__init__()
        self._stream = stream
        self._isatty = isatty
        self.closed_pipe = False
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "─█…×▏".encode(encoding)
            self._narrow = False
        except (UnicodeEncodeError, LookupError):
            self._narrow = True
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    def isatty(self) -> bool:
        return self._isatty

    def fileno(self) -> int:
        """The real stdout's descriptor (for its terminal size), not fd 1."""
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._narrow:
            text = text.translate(_ASCII)
            text = text.encode(self._encoding, "replace").decode(self._encoding)
        with self._pipe_guard():
            self._stream.write(text)
            if "\n" in text and self._isatty:
                self._stream.flush()
        return len(text)

    def flush(self) -> None:
        if self.closed_pipe:
            return
        with self._pipe_guard():
            self._stream.flush()

    @contextlib.contextmanager
    def _pipe_guard(self) -> Iterator[None]:
        """A closed pipe (EPIPE) becomes :class:`PipeClosed`; other errors pass."""
        try:
            yield
        except OSError as exc:  # BrokenPipeError is the EPIPE OSError
            if exc.errno != errno.EPIPE and not isinstance(exc, BrokenPipeError):
                raise
            self.closed_pipe = True
            raise PipeClosed() from exc


class _Router(io.TextIOBase):
    """``sys.stdout`` during a command: a ``write`` called from inittui's own code goes to
    the real stdout; from anywhere else (the model, torch, a thread the model started,
    logging) to stderr."""

    def __init__(self, ours: OurStdout) -> None:
        super().__init__()
        self.ours = ours

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.ours.encoding

    def isatty(self) -> bool:
        return self.ours.isatty()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if _is_ours(sys._getframe(1)):  # noqa: SLF001 - who printed decides the stream
            return self.ours.write(text)
        return sys.stderr.write(text)

    def flush(self) -> None:
        self.ours.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()


_current: list[OurStdout] = []


def our_stdout():
    """Where inittui's own output goes: the real stdout during :func:`command_streams`,
    else ``sys.stdout``."""
    return _current[-1] if _current else sys.stdout


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def command_streams() -> Iterator[OurStdout]:
    """Point fd 1 at stderr and ``sys.stdout`` at a router for the length of a command."""
    original = sys.stdout
    with contextlib.suppress(Exception):
        original.flush()
    try:
        original_fd = original.fileno()
    except (AttributeError, OSError, ValueError):
        original_fd = None
    try:
        isatty = bool(original.isatty())
    except (AttributeError, OSError, ValueError):
        isatty = False
    saved = None
    if _fd_open(1) and _fd_open(2):
        saved = os.dup(1)
        os.dup2(2, 1)
    if original_fd == 1 and saved is not None:
        # The real stdout is fd 1, which now goes to stderr: write through the saved copy.
        target = io.TextIOWrapper(
            io.FileIO(os.dup(saved), "w", closefd=True),
            encoding=getattr(original, "encoding", None) or "utf-8",
            errors=getattr(original, "errors", None) or "strict",
            line_buffering=isatty,
        )
    else:
        target = original  # a test's capture, or stdout already elsewhere
    ours = OurStdout(target, isatty)
    _current.append(ours)
    sys.stdout = _Router(ours)
    try:
        yield ours
        ours.flush()
    finally:
        _current.pop()
        sys.stdout = original
        if target is not original:
            if ours.closed_pipe:
                with contextlib.suppress(Exception):
                    target.buffer.raw.close()  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                target.close()
        if saved is not None:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 1)
            os.close(saved)
            if ours.closed_pipe and original_fd == 1:
                restore_closed_pipe()


def restore_closed_pipe() -> None:
    """After EPIPE on the real stdout: point fd 1 at /dev/null so Python's own flush at exit
    stays quiet (the recipe of the ``signal`` module's documentation)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
