"""The preview in a child process, so that it never holds the app's interpreter lock.

A preview on a 10,000-module model runs Python for seconds (a hook per module call); in a
worker thread it held the GIL and every key waited ~2 s. Here the child (multiprocessing's
``spawn`` context: ``fork`` is unsafe with threads and torch) rebuilds the model from the
same target, kwargs, dtype, device, checkpoint and seed (``load_model``, as
:func:`~inittui.core.workspace.open_model` builds it), takes the app's resolved plan (the
IR, pickled: the same steps with the same fans, and no tree to walk or plan to resolve
again, which cost more than the preview on a 10,000-module model), runs :func:`inittui.tui.session.run_preview` and sends
back progress, then the :class:`~inittui.core.probe.Preview` (plain picklable data) or a
:class:`~inittui.core.probe.failure.PreviewFailure`. The app's side
(:class:`PreviewChild`) reads the pipe in a worker thread and terminates the child on
cancel or quit.

No textual import here: the child imports this module to find its entry point.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from inittui.core.errors import CancelledError, InittuiError
from inittui.core.probe.failure import PreviewFailure, classify_failure

PROGRESS_EVERY_S = 0.05  # the child sends at most this often (the bar needs no more)
_live: set[PreviewChild] = set()
_live_lock = threading.Lock()


class PreviewFailed(InittuiError):
    """A preview failed; ``failure`` says how (kind, hint, frame, traceback)."""

    def __init__(self, failure: PreviewFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class PreviewRequest:
    """Everything the child needs to rebuild the model and run the app's preview."""

    target: str
    kwargs: Mapping[str, Any]
    device: str
    dtype: str | None
    checkpoint: str | None
    seed: int | None
    resolved: Any  # the app's ResolvedPlan: the child needs no tree and no resolve
    input_shapes: Sequence[str] = ()
    input_dtype: str | None = None
    inputs_file: str | None = None
    backward: bool = False


def user_files(loaded: Any) -> list[str]:
    """The model's own source file (where its ``forward`` lives), for the failure's frame."""
    module = getattr(loaded, "source_module", None)
    path = getattr(module, "__file__", None)
    return [path] if path else []


def failure_of(error: BaseException, loaded: Any = None) -> PreviewFailed:
    """``error`` classified (:func:`classify_failure`) as a :class:`PreviewFailed`."""
    if isinstance(error, PreviewFailed):
        return error
    source = getattr(error, "inputs_source", None)
    files = user_files(loaded) if loaded is not None else []
    failed = PreviewFailed(classify_failure(error, source, files))
    failed.__cause__ = error
    return failed


def run_request(request: PreviewRequest, progress: Callable[[int, int], None]) -> Any:
    """Rebuild, resolve and preview (what the child runs; in-process too for a test)."""
    from inittui.core.loading import load_model
    from inittui.tui.session import run_preview

    loaded = load_model(
        request.target,
        dict(request.kwargs),
        device=request.device,
        dtype=request.dtype,
        checkpoint=request.checkpoint,
        seed=request.seed or 0,
    )
    resolved = request.resolved
    try:
        return run_preview(
            loaded,
            resolved,
            list(request.input_shapes),
            request.input_dtype,
            request.seed or 0,
            request.backward,
            None,
            progress,
            inputs_file=request.inputs_file,
        )
    except BaseException as exc:
        raise failure_of(exc, loaded) from exc


def child_main(request: PreviewRequest, conn: Connection) -> None:
    """The child's entry point: ``("progress", done, total)`` messages, then ``("done",
    preview)`` or ``("failed", PreviewFailure)``."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or done >= total:
            last[0] = now
            conn.send(("progress", done, total))

    try:
        conn.send(("done", run_request(request, progress)))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the app
        conn.send(("failed", failure_of(exc).failure))
    finally:
        conn.close()


class PreviewChild:
    """One preview in a child process, seen from the app: :meth:`wait` streams progress
    and returns the preview; :meth:`terminate` ends it (cancel, quit).

    The child is a fresh interpreter (``python -m inittui.tui.job_process FD``, what
    multiprocessing's ``spawn`` does, without re-running the app's ``__main__``, which a
    script without a main guard would turn into a second app): the request goes in on its
    stdin, messages come back on the pipe ``FD``; its stdout and stderr go nowhere (the
    model's prints must not draw over the app)."""

    def __init__(self, request: PreviewRequest) -> None:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder holding inittui/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inittui.tui.job_process", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(write_fd,),
                env=env,
                start_new_session=True,  # ctrl+c in the terminal is the app's, not the child's
            )
        finally:
            os.close(write_fd)
        self.conn = Connection(read_fd, writable=False)
        with _live_lock:
            _live.add(self)
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(pickle.dumps((list(sys.path), request)))
            self.process.stdin.close()
        except OSError:  # it died at once: wait() reports its exit code
            pass

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, cancel: Callable[[], bool], progress: Callable[[int, int], None]) -> Any:
        """The child's preview; raises :class:`PreviewFailed` as the child reports it,
        :class:`CancelledError` (after terminating it) once ``cancel()`` holds."""
        try:
            while True:
                if cancel():
                    raise CancelledError("preview cancelled")
                if not self.conn.poll(0.02):
                    if not self.is_alive() and not self.conn.poll(0):
                        code = self.process.returncode
                        raise InittuiError(f"the preview process ended (exit code {code})")
                    continue
                try:
                    kind, *body = self.conn.recv()
                except EOFError:
                    if cancel():
                        raise CancelledError("preview cancelled") from None
                    raise InittuiError("the preview process ended without a result") from None
                if kind == "progress":
                    progress(*body)
                elif kind == "done":
                    return body[0]
                else:
                    raise PreviewFailed(body[0])
        finally:
            self.terminate()

    def terminate(self) -> None:
        """End the child now (nothing to wait for: it holds no file the app needs)."""
        process = self.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(0.5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(0.5)
        self.conn.close()
        with _live_lock:
            _live.discard(self)


def terminate_all() -> int:
    """Terminate every preview child still running (the app quits); how many there were."""
    with _live_lock:
        children = list(_live)
    for child in children:
        child.terminate()
    return len(children)


def live_children() -> list[PreviewChild]:
    with _live_lock:
        return list(_live)


def main(argv: Sequence[str] | None = None) -> int:
    """The child: ``python -m inittui.tui.job_process FD`` (see :class:`PreviewChild`)."""
    args = sys.argv[1:] if argv is None else argv
    conn = Connection(int(args[0]), readable=False)
    path, request = pickle.loads(sys.stdin.buffer.read())
    sys.path[:] = path
    child_main(request, conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
