"""The preview in a child process, so that it never holds the app's interpreter lock.

A preview on a 10,000-module model runs Python for seconds (a hook per module call); in a
worker thread it held the GIL and every key waited ~2 s. Here the child (a fresh
interpreter: ``fork`` is unsafe with threads and torch) rebuilds the model from the same
target, kwargs, dtype, device, checkpoint and seed (:class:`ModelSpec`; ``load_model``, as
:func:`~inittui.core.workspace.open_model` builds it), then serves each :class:`PreviewRequest`:
the app's resolved plan (the IR, pickled: the same steps with the same fans, and no tree to
walk or plan to resolve again) and inputs; it runs :func:`inittui.tui.session.run_preview`
and sends back progress, then the :class:`~inittui.core.probe.Preview` (plain picklable
data) or a :class:`~inittui.core.probe.failure.PreviewFailure`.

Two uses of the same child program: :class:`PreviewChild` builds and runs one request (the
model rebuilt per preview), and :class:`~inittui.tui.standby.StandbyChild` is started once
the app has opened a big model, builds it at low priority before anyone asks, and serves
one request after another, each on the model as it was built (:class:`Pristine` puts its
tensors and the RNG back first, so every preview equals a fresh child's, bit for bit).

No textual import here: the child imports this module to find its entry point.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inittui.core.errors import CancelledError, InittuiError

if TYPE_CHECKING:  # imported when needed: the package imports torch (see serve)
    from inittui.core.probe.failure import PreviewFailure

PROGRESS_EVERY_S = 0.05  # the child sends at most this often (the bar needs no more)
PRISTINE_MAX_BYTES = 1 << 30
"""A reused child keeps a copy of its model's tensors (parameters and buffers) to put them
back before each preview; above this many bytes it keeps none and serves one preview only
(the app starts another in the background)."""
_live: set[ChildProcess] = set()
_live_lock = threading.Lock()


class PreviewFailed(InittuiError):
    """A preview failed; ``failure`` says how (kind, hint, frame, traceback)."""

    def __init__(self, failure: PreviewFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class ModelSpec:
    """How the app built its model: what a child needs to build the same one."""

    target: str
    kwargs: Mapping[str, Any]
    device: str
    dtype: str | None
    checkpoint: str | None
    seed: int | None


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

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            self.target, self.kwargs, self.device, self.dtype, self.checkpoint, self.seed
        )


def user_files(loaded: Any) -> list[str]:
    """The model's own source file (where its ``forward`` lives), for the failure's frame."""
    module = getattr(loaded, "source_module", None)
    path = getattr(module, "__file__", None)
    return [path] if path else []


def failure_of(error: BaseException, loaded: Any = None) -> PreviewFailed:
    """``error`` classified (:func:`classify_failure`) as a :class:`PreviewFailed`."""
    from inittui.core.probe.failure import classify_failure

    if isinstance(error, PreviewFailed):
        return error
    source = getattr(error, "inputs_source", None)
    files = user_files(loaded) if loaded is not None else []
    failed = PreviewFailed(classify_failure(error, source, files))
    failed.__cause__ = error
    return failed


class Unbuilt(PreviewFailed):
    """The child could not build the model (or put it back as it was built)."""


# -- the child's side ------------------------------------------------------------------


def build_model(spec: ModelSpec) -> Any:
    """The app's model, built again (``load_model`` with the app's arguments)."""
    from inittui.core.loading import load_model

    return load_model(
        spec.target,
        dict(spec.kwargs),
        device=spec.device,
        dtype=spec.dtype,
        checkpoint=spec.checkpoint,
        seed=spec.seed or 0,
    )


def preview_on(loaded: Any, request: PreviewRequest, progress: Callable[[int, int], None]) -> Any:
    """The app's preview (:func:`inittui.tui.session.run_preview`) on ``loaded``."""
    from inittui.tui.session import run_preview

    try:
        return run_preview(
            loaded,
            request.resolved,
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


def run_request(request: PreviewRequest, progress: Callable[[int, int], None]) -> Any:
    """Rebuild and preview (what a one-shot child runs; in-process too for a test)."""
    return preview_on(build_model(request.spec), request, progress)


class Pristine:
    """A model's tensors (parameters and buffers, copied) and the random generators' states
    as built, put back before each preview after the first: a reused child previews what a
    fresh one would. (A ``forward`` that changes its modules' plain Python attributes is
    seen by the next preview, as it is in the app's own process.)"""

    def __init__(self, model: Any) -> None:
        import random

        import torch

        with torch.no_grad():
            self.tensors = {
                name: tensor.detach().clone()
                for name, tensor in model.state_dict(keep_vars=True).items()
            }
        self.rng = torch.random.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.py_rng = random.getstate()

    @staticmethod
    def size(model: Any) -> int:
        """Bytes the copy takes (tied tensors once)."""
        tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
        return sum(t.numel() * t.element_size() for t in tensors.values())

    def restore(self, model: Any) -> None:
        import random

        import torch

        current = model.state_dict(keep_vars=True)
        if current.keys() != self.tensors.keys():
            raise InittuiError("the model's tensors changed during the last preview")
        with torch.no_grad():
            for name, tensor in current.items():
                tensor.copy_(self.tensors[name])
        torch.random.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        random.setstate(self.py_rng)


def answer(loaded: Any, request: PreviewRequest, send: Callable[[Any], None]) -> None:
    """One preview: ``("progress", done, total)`` messages, then ``("done", preview)``
    or ``("failed", PreviewFailure)``."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or done >= total:
            last[0] = now
            send(("progress", done, total))

    try:
        message = ("done", preview_on(loaded, request, progress))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the app
        message = ("failed", failure_of(exc).failure)
    send(message)


def build(spec: ModelSpec, reuse: bool, nice: int) -> tuple[Any, Pristine | None, int]:
    """Import torch and build the model in a thread of its own at ``nice`` (Linux
    schedules threads one by one; this process cannot raise a priority back, so the
    previews run in the main thread, at the app's priority). The loaded model, its
    :class:`Pristine` copy (``reuse``, not too big) and the thread's nice over the main's."""
    done: dict[str, Any] = {}

    def run() -> None:
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            except (OSError, AttributeError):  # not Linux: this thread stays as it is
                pass
        try:
            loaded = build_model(spec)
            keep = reuse and Pristine.size(loaded.model) <= PRISTINE_MAX_BYTES
            done["built"] = loaded, Pristine(loaded.model) if keep else None
            main = os.getpriority(os.PRIO_PROCESS, os.getpid())
            done["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - main
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            done["error"] = exc

    thread = threading.Thread(target=run, name="build")
    thread.start()
    thread.join()
    if "error" in done:
        raise done["error"]
    return (*done["built"], done["nice"])


def serve(spec: ModelSpec, reuse: bool, nice: int, requests: queue.Queue, send: Callable) -> None:
    """Build (:func:`build`), say ``("ready", nice)`` (or ``("unbuilt", PreviewFailure)``
    and end), then answer each request from the queue until ``None`` (the app closed the
    pipe). Without ``reuse`` (or a model too big to keep a copy of) one request only."""
    try:
        loaded, pristine, built_nice = build(spec, reuse, nice)
    except BaseException as exc:  # noqa: BLE001 - the app falls back (or reports it)
        send(("unbuilt", failure_of(exc).failure))
        return
    send(("ready", built_nice))
    served = 0
    while (request := requests.get()) is not None:
        if served:
            assert pristine is not None
            try:
                pristine.restore(loaded.model)
            except BaseException as exc:  # noqa: BLE001
                send(("unbuilt", failure_of(exc).failure))
                return
        answer(loaded, request, send)
        served += 1
        if pristine is None:
            return


def read_requests(conn: Connection, requests: queue.Queue) -> None:
    """The child's reader thread: requests are read while the model builds (the app's
    send never waits on a full pipe); ``None`` once the app closed its end."""
    try:
        while True:
            requests.put(conn.recv())
    except (EOFError, OSError):
        requests.put(None)


def main(argv: Sequence[str] | None = None) -> int:
    """The child: ``python -m inittui.tui.job_process OUT_FD IN_FD`` (see :class:`ChildProcess`)."""
    args = sys.argv[1:] if argv is None else argv
    send_conn = Connection(int(args[0]), readable=False)
    recv_conn = Connection(int(args[1]), writable=False)
    path, spec, reuse, nice = recv_conn.recv()
    sys.path[:] = path
    requests: queue.Queue = queue.Queue()
    threading.Thread(target=read_requests, args=(recv_conn, requests), daemon=True).start()
    try:
        serve(spec, reuse, nice, requests, send_conn.send)
    except OSError:  # the app is gone
        pass
    return 0


# -- the app's side --------------------------------------------------------------------


class ChildProcess:
    """A child seen from the app: started with a :class:`ModelSpec` (``reuse``: serve
    request after request; ``nice``: it imports torch and builds the model in a thread
    that much below the app's priority), :meth:`submit` sends a request, :meth:`wait`
    streams progress and returns the preview, :meth:`terminate` ends it, :meth:`kill`
    without waiting.

    The child is a fresh interpreter (``python -m inittui.tui.job_process OUT IN``, what
    multiprocessing's ``spawn`` does, without re-running the app's ``__main__``, which a
    script without a main guard would turn into a second app): the app's ``sys.path``, the
    spec and the requests go in on pipe ``IN``, messages come back on pipe ``OUT``; its
    stdin, stdout and stderr go nowhere (the model's prints must not draw over the app)."""

    def __init__(self, spec: ModelSpec, *, reuse: bool = False, nice: int = 0) -> None:
        self.spec = spec
        self.built: bool | None = None  # None: building; True: ready; False: could not
        out_read, out_write = os.pipe()
        in_read, in_write = os.pipe()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder holding inittui/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inittui.tui.job_process", str(out_write), str(in_read)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(out_write, in_read),
                env=env,
                start_new_session=True,  # ctrl+c in the terminal is the app's, not the child's
            )
        except BaseException:
            os.close(out_read)
            os.close(in_write)
            raise
        finally:
            os.close(out_write)
            os.close(in_read)
        self.conn = Connection(out_read, writable=False)
        self.requests = Connection(in_write, readable=False)
        with _live_lock:
            _live.add(self)
        self.built_nice: int | None = None  # the build thread's nice over the main's
        self._send((list(sys.path), spec, reuse, nice))

    def _send(self, message: Any, close: bool = False) -> None:
        try:
            self.requests.send(message)
            if close:
                self.requests.close()
        except OSError:  # it died: wait() reports its exit code
            pass

    def submit(self, request: PreviewRequest, last: bool = False) -> None:
        """Send ``request`` (from a thread of its own: a child still importing torch reads
        it later; ``last``: then close the pipe, the child ends after it)."""
        threading.Thread(target=self._send, args=(request, last), daemon=True).start()

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def poll_built(self) -> bool | None:
        """Read a ``ready``/``unbuilt`` message waiting on the pipe (call it only while no
        :meth:`wait` runs); :attr:`built`."""
        try:
            while self.built is None and self.conn.poll(0):
                self._read_one(lambda done, total: None)
        except (EOFError, OSError, PreviewFailed):
            pass
        if self.built is None and not self.is_alive():
            self.built = False
        return self.built

    def _read_one(self, progress: Callable[[int, int], None]) -> tuple[bool, Any]:
        kind, *body = self.conn.recv()
        if kind == "ready":
            self.built, self.built_nice = True, body[0]
        elif kind == "unbuilt":
            self.built = False
            raise Unbuilt(body[0])
        elif kind == "progress":
            progress(*body)
        elif kind == "done":
            return True, body[0]
        else:
            raise PreviewFailed(body[0])
        return False, None

    def wait(self, cancel: Callable[[], bool], progress: Callable[[int, int], None]) -> Any:
        """The child's preview; raises :class:`PreviewFailed` as the child reports it
        (:class:`Unbuilt` when it could not build), :class:`CancelledError` once
        ``cancel()`` holds (the caller ends the child)."""
        while True:
            if cancel():
                raise CancelledError("preview cancelled")
            if not self.conn.poll(0.02):
                if not self.is_alive() and not self.conn.poll(0):
                    code = self.process.returncode
                    raise InittuiError(f"the preview process ended (exit code {code})")
                continue
            try:
                finished, preview = self._read_one(progress)
            except EOFError:
                if cancel():
                    raise CancelledError("preview cancelled") from None
                raise InittuiError("the preview process ended without a result") from None
            if finished:
                return preview

    def kill(self) -> None:
        """SIGKILL, not waited for (the app quits: its exit reaps nothing it waits on)."""
        if self.process.poll() is None:
            self.process.kill()
        self.requests.close()
        self.conn.close()
        with _live_lock:
            _live.discard(self)

    def terminate(self, wait: float = 0.5) -> None:
        """End the child now (nothing to wait for: it holds no file the app needs);
        ``wait=0``: killed, not waited for."""
        process = self.process
        if process.poll() is None:
            if wait:
                process.terminate()
            else:
                process.kill()
            try:
                process.wait(wait or 0.2)
            except subprocess.TimeoutExpired:
                process.kill()
        self.requests.close()
        self.conn.close()
        with _live_lock:
            _live.discard(self)


class PreviewChild(ChildProcess):
    """One preview in a child of its own: the model rebuilt, the request served, the
    child ended (:meth:`wait` terminates it whatever happens)."""

    def __init__(self, request: PreviewRequest) -> None:
        super().__init__(request.spec)
        self.submit(request, last=True)

    def wait(self, cancel: Callable[[], bool], progress: Callable[[int, int], None]) -> Any:
        try:
            return super().wait(cancel, progress)
        finally:
            self.terminate()


def terminate_all(wait: float = 0.5) -> int:
    """Terminate every preview child still running (the app quits: ``wait=0``, killed
    at once); how many there were."""
    with _live_lock:
        children = list(_live)
    if not wait:
        for child in children:  # every kill first, then the waits (quit: ~no wait at all)
            if child.is_alive():
                child.process.kill()
    for child in children:
        child.terminate(wait)
    return len(children)


def live_children() -> list[ChildProcess]:
    with _live_lock:
        return list(_live)


if __name__ == "__main__":
    sys.exit(main())
