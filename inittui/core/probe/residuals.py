"""Residual adds seen during the probe's forward pass (:class:`_Streams`, with the
``__torch_function__`` mode :class:`_AddWatch`).

A *stream* is a module call's first positional tensor (a block's input) or the output of a
residual add. An add ``a + b`` (``torch.add``, ``+``, ``+=``, ``add_``) of two floating
tensors of the same shape, one of them a stream (the one seen first when both are: an
eval-mode Dropout returns its input, so a branch's output may have been a call's input too), made by a module with children (a
block; never inside a leaf such as an activation), is a residual add: the other
operand is the branch. Masks and other side inputs are never first arguments, and an add
of two fresh tensors (token + position embeddings) has no stream, so neither counts. A
stream that is the previous add's output continues that add's stack (``depth`` + 1).

The branch's calls are those recorded between the stream's last sighting as the input of
a module with children (a block), else its first sighting, and the add.
Only ``torch`` and the standard library.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from inittui.core.probe.moments import _std_of
from inittui.core.probe.results import ResidualAdd

_ADDS = frozenset({"add", "add_", "__add__", "__radd__", "__iadd__"})


class _Stream:
    __slots__ = ("depth", "entry_slot", "ref", "start", "version")

    def __init__(self, tensor: torch.Tensor, start: int, depth: int, entry_slot: int | None):
        self.ref = weakref.ref(tensor)
        self.version = tensor._version
        self.start = start
        self.depth = depth
        self.entry_slot = entry_slot


class _PendingAdd:
    __slots__ = ("add", "branch_slot", "entry_slot", "grad_slot", "out_slot", "stream_slot")

    def __init__(self, add: ResidualAdd) -> None:
        self.add = add
        self.stream_slot: int | None = None
        self.branch_slot: int | None = None
        self.out_slot: int | None = None
        self.entry_slot: int | None = None
        self.grad_slot: int | None = None


class _Streams:
    """Known streams, the stack of running module calls, consumers per tensor, and the
    residual adds found (``adds``)."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.known: dict[int, _Stream] = {}
        self.stack: list[tuple[str, bool]] = []
        self.adds: list[_PendingAdd] = []
        self.add_calls: dict[str, int] = {}
        self.tokens: dict[int, tuple[weakref.ref, int]] = {}
        self.consumers: dict[int, int] = {}

    # ---------------------------------------------------------------- module calls

    def enter(self, path: str, args: tuple[Any, ...], leaf: bool) -> None:
        self.stack.append((path, leaf))
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.is_floating_point():
            known = self._stream(first)
            if known is None:
                with contextlib.suppress(TypeError):
                    self.known[id(first)] = _Stream(first, len(self.recorder.records), 0, None)
            elif not leaf:  # a block's input: its branch starts here
                known.start = len(self.recorder.records)

    def leave(self, path: str) -> None:
        if self.stack and self.stack[-1][0] == path:
            self.stack.pop()

    def consume(self, tensor: torch.Tensor) -> int:
        """A token for ``tensor`` (one per tensor object) with its consumer count raised."""
        entry = self.tokens.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            with contextlib.suppress(TypeError):
                entry = (weakref.ref(tensor), len(self.tokens) + len(self.consumers) + 1)
                self.tokens[id(tensor)] = entry
        if entry is None:
            return -1
        token = entry[1]
        self.consumers[token] = self.consumers.get(token, 0) + 1
        return token

    def _stream(self, tensor: torch.Tensor) -> _Stream | None:
        entry = self.known.get(id(tensor))
        if entry is None or entry.ref() is not tensor or entry.version != tensor._version:
            return None
        return entry

    # ---------------------------------------------------------------- adds

    def on_add(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a, b = args[0], args[1]
        if (
            not self.stack
            or self.stack[-1][1]  # inside a leaf (an activation's x + 0.04 x^3): not a block
            or kwargs
            or len(args) != 2
            or not isinstance(a, torch.Tensor)
            or not isinstance(b, torch.Tensor)
            or not (a.is_floating_point() and b.is_floating_point())
            or a.shape != b.shape
        ):
            return func(*args, **kwargs)
        sa, sb = self._stream(a), self._stream(b)
        if sa is not None and sb is not None and sa.start != sb.start:
            # both seen (an eval Dropout returns its input): the stream is the older one
            sa, sb = (sa, None) if sa.start < sb.start else (None, sb)
        if (sa is None) == (sb is None):
            return func(*args, **kwargs)
        stream, branch, entry = (a, b, sa) if sa is not None else (b, a, sb)
        assert entry is not None
        stats = self.recorder.stats
        path = self.stack[-1][0]
        call = self.add_calls.get(path, 0)
        self.add_calls[path] = call + 1
        pending = _PendingAdd(
            ResidualAdd(path, call, "plain", entry.depth + 1, None, None, None, None)
        )
        pending.stream_slot = stats.measure(stream)
        pending.branch_slot = stats.measure(branch)
        pending.entry_slot = entry.entry_slot if entry.depth else pending.stream_slot
        self.consume(stream)
        pending.add.start, pending.add.end = entry.start, len(self.recorder.records)
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            pending.out_slot = stats.measure(out)
            with contextlib.suppress(TypeError):
                self.known[id(out)] = _Stream(
                    out, len(self.recorder.records), entry.depth + 1, pending.entry_slot
                )
            if self.recorder.backward and out.requires_grad:
                out.register_hook(self._grad_hook(pending))
        self.adds.append(pending)
        return out

    def _grad_hook(self, pending: _PendingAdd):
        def grad_hook(grad: torch.Tensor) -> None:
            if pending.grad_slot is None:
                pending.grad_slot = self.recorder.stats.measure(grad)

        return grad_hook

    def finish(self) -> list[ResidualAdd]:
        """The adds with their statistics (after the recorder's ``stats.finish()``)."""
        stats = self.recorder.stats
        found = []
        for pending in self.adds:
            add = pending.add
            add.stream_std = _std_of(stats.get(pending.stream_slot))
            add.branch_std = _std_of(stats.get(pending.branch_slot))
            add.out_std = _std_of(stats.get(pending.out_slot))
            add.entry_std = _std_of(stats.get(pending.entry_slot))
            add.grad_std = _std_of(stats.get(pending.grad_slot))
            found.append(add)
        return found


class _AddWatch(TorchFunctionMode):
    """Routes every add of the forward pass through :meth:`_Streams.on_add`."""

    def __init__(self, streams: _Streams) -> None:
        super().__init__()
        self.streams = streams

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if len(args) >= 2 and getattr(func, "__name__", None) in _ADDS:
            return self.streams.on_add(func, args, kwargs)
        return func(*args, **kwargs)
