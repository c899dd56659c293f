"""Statistics on several CPU threads, each running its torch ops single-threaded.

A chunk of the streaming path is ~15 small ops (0.1-0.3 ms each).  Run with torch's
intra-op threads, every op is an OpenMP parallel region that ends in a barrier; on a machine
whose cores are busy with other work a barrier waits for a descheduled thread, and the
statistics of a GPT-2-sized model took 10x longer with 2 threads than with 1.  The serial
``bincount`` also leaves the other cores idle.  So on CPU, when the OpenMP runtime torch uses
can be reached, the tensors (and batches of small ones) are tasks for a pool of
``torch.get_num_threads()`` Python threads, each of which sets its *own* OpenMP thread count
to 1 (``omp_set_num_threads`` is per thread: the caller's setting, ``torch.get_num_threads()``
and every other thread are unchanged).  torch releases the GIL inside ops, so the threads run
in parallel without barriers.  Progress and cancel stay in the calling thread, polled every
``_POLL_S`` seconds.  Elsewhere (CUDA, other parallel backends, no OpenMP library found, one
thread, small work) everything runs in the calling thread as before.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import torch

from inittui.core.stats.records import _Ticker

_PARALLEL_MIN = 1 << 21  # elements: below this a thread pool costs more than it saves
_POLL_S = 0.05  # seconds between progress reports / cancel polls of the calling thread

_omp_cache: list[Any] = []  # [ctypes library or None], filled once


def _find_omp() -> Any:
    """The OpenMP runtime torch's kernels use, as a ctypes library, or None."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:  # Linux: the loaded libraries
            paths = {line.split()[-1] for line in f if "omp" in line and ".so" in line}
    except OSError:
        return None
    names = ("libgomp", "libomp", "libiomp5")
    paths = {p for p in paths if os.path.basename(p).startswith(names)}
    torch_dir = os.path.dirname(torch.__file__)
    ours = sorted(p for p in paths if p.startswith(torch_dir)) or sorted(paths)
    if len(ours) != 1:  # none, or several runtimes: cannot tell which one torch uses
        return None
    lib = ctypes.CDLL(ours[0])
    lib.omp_set_num_threads.argtypes = [ctypes.c_int]
    return lib if _probe(lib) else None


def _probe(lib: Any) -> bool:
    """True when a thread that sets its OpenMP count to 1 runs torch ops on one thread,
    and the calling thread keeps its own count."""
    before = torch.get_num_threads()
    seen: list[int] = []

    def check() -> None:
        _single_threaded(lib)
        torch.ones(1 << 16).sum()  # a parallel op after the lazy per-thread init
        seen.append(torch.get_num_threads())

    t = threading.Thread(target=check, daemon=True)
    t.start()
    t.join()
    return seen == [1] and torch.get_num_threads() == before


def _single_threaded(lib: Any) -> None:
    torch.get_num_threads()  # torch's lazy per-thread init first, so it cannot undo ours
    lib.omp_set_num_threads(1)


def _omp() -> Any:
    if not _omp_cache:
        try:
            _omp_cache.append(_find_omp())
        except Exception:  # any surprise: fall back to the calling thread
            _omp_cache.append(None)
    return _omp_cache[0]


def worker_count(numel: int, tasks: int) -> int:
    """Threads for ``tasks`` CPU tasks of ``numel`` elements in all (1: the calling thread)."""
    threads = min(torch.get_num_threads(), os.cpu_count() or 1, tasks)
    if threads < 2 or numel < _PARALLEL_MIN or _omp() is None:
        return 1
    return threads


class _TaskTicker(_Ticker):
    """A task's ticker in a worker: counts its own progress, stops when the run stops."""

    def __init__(self, numel: int, stop: threading.Event) -> None:
        super().__init__(0, None, stop.is_set)
        self.begin(numel)


def run_parallel(
    tasks: list[tuple[int, Callable[[_Ticker], None]]],
    threads: int,
    ticker: _Ticker,
) -> None:
    """Run ``(numel, fn)`` tasks, largest first, on ``threads`` single-threaded workers;
    ``fn(task_ticker)`` stores its own results.  Progress and cancel are polled here."""
    lib = _omp()
    stop = threading.Event()
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i][0])
    tickers = {i: _TaskTicker(tasks[i][0], stop) for i in order}
    ticker.begin(sum(n for n, _ in tasks))
    reported = 0

    def run(i: int) -> None:
        t = tickers[i]
        tasks[i][1](t)
        t.finish()

    with ThreadPoolExecutor(threads, initializer=_single_threaded, initargs=(lib,)) as pool:
        pending: set[Future] = {pool.submit(run, i) for i in order}
        try:
            while pending:
                finished, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()  # a worker's exception (or StatsCancelled) surfaces here
                done = sum(t.done for t in tickers.values())
                ticker.tick(done - reported)  # reports progress, polls cancel
                reported = done
        except BaseException:
            stop.set()  # workers stop at their next chunk; the pool waits for them
            raise
    ticker.finish()
