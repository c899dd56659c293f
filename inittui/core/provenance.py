"""Provenance: what the model's own construction did to each parameter.

While a model is constructed (:func:`record_construction`, used by ``load_model``), every
``torch.nn.init.*`` call and every in-place fill or random draw on a tensor (``normal_``,
``uniform_``, ``zero_``, ``fill_``, ``copy_``, ``mul_``, ...) is recorded, in order, with
its key arguments, the caller's ``file:line`` (``at``) and the module method that made the
call (``by``, e.g. ``Linear.reset_parameters``). Parameters do not exist yet while
``__init__`` runs, so calls are recorded per storage (a ``Parameter``, its ``.data`` and its
views share one); after construction :meth:`Recorder.provenance` maps them to parameter
names (tied names share one history) and flags what looks wrong: ``uninitialized`` (from
``torch.empty`` and never written), ``not_init`` (written only by ``copy_``/``fill_``/...
outside an init function), ``written_twice`` (initialised more than once).

Mechanism, chosen for speed (building with the recorder costs at most 1.3x building without:
``benchmarks/bench_provenance.py``): for the duration, ``torch.nn.init``'s functions,
``torch.empty``/``torch.empty_like`` and the few writing ``Tensor`` methods are wrapped;
every other op runs untouched (a ``TorchFunctionMode`` would see every op of construction,
~20 per Linear, in Python). The wrappers record only for the thread that started a
recorder; other threads pass through. An init function is one entry: the ops it calls are
not recorded. Init functions reached without the wrapper (transformers' ``initialization``
wraps the original functions it captured at import) are recognised by the frame name of the
writing op's caller chain. Recording draws nothing and writes nothing: values are bit for
bit those of a build without it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import math
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from inittui.core.provenance_site import INIT_FUNCTIONS, caller_site, site_text

# Tensor methods that write, with their positional argument names and defaults.
RANDOM_METHODS = {
    "normal_": (("mean", 0.0), ("std", 1.0)),
    "uniform_": (("from", 0.0), ("to", 1.0)),
    "bernoulli_": (("p", 0.5),),
    "exponential_": (("lambd", 1.0),),
    "random_": (("from", None), ("to", None)),
    "cauchy_": (("median", 0.0), ("sigma", 1.0)),
    "log_normal_": (("mean", 1.0), ("std", 2.0)),
    "geometric_": (("p", None),),
}
WRITE_METHODS = {"zero_": (), "fill_": (("value", None),), "copy_": (("src", None),)}
MODIFY_METHODS = {
    "mul_": (("other", None),),
    "div_": (("other", None),),
    "clamp_": (("min", None), ("max", None)),
}
FLAGS = ("written_twice", "uninitialized", "not_init")
# Kinds of call: an init (torch.nn.init, a random draw), a write that is not an init
# (copy_, fill_, zero_ by model code), a modification (mul_, div_, clamp_), a checkpoint load.
INIT, WRITE, MODIFY, LOAD = "init", "write", "modify", "load"


@dataclass(frozen=True)
class InitCall:
    """One recorded call on (part of) a parameter's storage."""

    fn: str
    args: tuple[tuple[str, object], ...]
    at: str | None
    by: str | None
    kind: str
    part: bool = False  # it wrote part of the parameter (an Embedding's padding row)

    def to_dict(self) -> dict:
        out = {"fn": self.fn, "args": dict(self.args), "at": self.at, "by": self.by}
        out["kind"] = self.kind
        if self.part:
            out["part"] = True
        return out

    def short(self) -> str:
        """``Linear.reset_parameters -> kaiming_uniform_(a=2.236)`` (defaults left out)."""
        return call_text(self.to_dict())


def call_text(call: dict) -> str:
    """One ``init_calls`` entry in a line: ``Linear.reset_parameters -> kaiming_uniform_(a=
    2.236)``; arguments equal to the function's defaults are left out."""
    defaults = _defaults().get(call["fn"], {})
    args = ", ".join(
        f"{k}={_short_value(v)}" for k, v in call["args"].items() if defaults.get(k, _NONE) != v
    )
    text = f"{call['fn']}({args})" + (" on part" if call.get("part") else "")
    return f"{call['by']} -> {text}" if call.get("by") else text


def last_call(calls: list[dict]) -> dict | None:
    """The last entry that wrote the whole tensor (else the last entry)."""
    whole = [c for c in calls if not c.get("part") and c["kind"] != MODIFY]
    return whole[-1] if whole else (calls[-1] if calls else None)


@dataclass(frozen=True)
class Provenance:
    """A parameter's recorded history and its flags (a subset of :data:`FLAGS`)."""

    calls: tuple[InitCall, ...] = ()
    flags: tuple[str, ...] = ()

    @property
    def last(self) -> InitCall | None:
        """The last call that wrote the whole tensor (else the last call)."""
        whole = [c for c in self.calls if not c.part and c.kind != MODIFY]
        return whole[-1] if whole else (self.calls[-1] if self.calls else None)


_NONE = object()


@functools.cache
def _defaults() -> dict[str, dict[str, object]]:
    """Each recorded function's default arguments (left out of :meth:`InitCall.short`)."""
    out = {}
    for name in INIT_FUNCTIONS:
        function = inspect.unwrap(getattr(nn.init, name))
        out[name] = {
            p.name: p.default
            for p in inspect.signature(function).parameters.values()
            if p.default is not p.empty
        }
    for table in (RANDOM_METHODS, WRITE_METHODS, MODIFY_METHODS):
        out.update({name: dict(args) for name, args in table.items() if name not in out})
    return out


def _short_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _safe(value: object) -> object:
    """A JSON-safe form of an argument: numbers, strings, bools, None; tensors described."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, torch.Tensor):
        return f"tensor({', '.join(str(int(s)) for s in value.shape)})"
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- recording


class _State(threading.local):
    depth: int = 0  # active recorders on this thread
    quiet: int = 0  # > 0 inside a wrapped init function: its inner ops are not recorded
    log: list | None = None  # (tensor, fn, args, kwargs, kind, code, line, by) per call
    empties: list | None = None  # tensors torch.empty made
    last: tuple | None = None  # (frame, storage) of the last unwrapped init call recorded


_state = _State()


class Recorder:
    """Calls recorded while a model is constructed; :meth:`provenance` maps them to
    parameter names by storage. The tensors written are kept alive until the recorder is
    dropped, so a freed temporary's storage cannot be taken for a parameter's.

    Recording is on the hot path of construction: a call appends one flat tuple to the
    thread's log (nested recorders share it, each reading its own slice); storages, spans,
    paths and JSON-safe arguments are worked out only when :meth:`provenance` runs."""

    def __init__(self, log: list, empties: list) -> None:
        self._log, self._empties = log, empties
        self._start, self._start_empty = len(log), len(empties)
        self._end: int | None = None
        self._end_empty: int | None = None
        self._index: tuple | None = None

    def stop(self) -> None:
        self._end, self._end_empty = len(self._log), len(self._empties)

    def _indexed(self) -> tuple[dict[int, list[tuple]], set[int]]:
        if self._index is None:
            events: dict[int, list[tuple]] = {}
            for event in self._log[self._start : self._end]:
                tensor = event[0]
                key = tensor.untyped_storage()._cdata
                events.setdefault(key, []).append((*event[1:], *_byte_span(tensor)))
            empty = {
                t.untyped_storage()._cdata
                for t in self._empties[self._start_empty : self._end_empty]
            }
            self._index = (events, empty)
        return self._index

    def provenance(self, model: nn.Module) -> dict[str, Provenance]:
        """Each parameter name of ``model`` -> its history and flags (tied names share)."""
        out: dict[str, Provenance] = {}
        by_id: dict[int, Provenance] = {}
        events, empty = self._indexed()
        cache: dict = {}  # alike calls and histories are built once (thousands of Linears)
        for path, module in model.named_modules(remove_duplicate=False):
            for local, param in module._parameters.items():
                if param is None:
                    continue
                name = f"{path}.{local}" if path else local
                found = by_id.get(id(param))
                if found is None:
                    found = by_id[id(param)] = _history(param, events, empty, cache)
                out[name] = found
        return out


def _history(param: torch.Tensor, events: dict, empty: set, cache: dict) -> Provenance:
    """One parameter's calls and flags; ``cache`` shares equal calls and histories."""
    if isinstance(param, nn.parameter.UninitializedTensorMixin):
        return Provenance()
    key = param.untyped_storage()._cdata
    first, end = _byte_span(param)
    calls = tuple(
        _call(cache, fn, args, kwargs, kind, code, line, by, lo > first or hi < end)
        for fn, args, kwargs, kind, code, line, by, lo, hi in events.get(key, ())
        if lo < end and hi > first or (lo == hi == first)
    )
    created_empty = key in empty
    same = (tuple(map(id, calls)), created_empty)  # by identity: equal is not enough (1 == 1.0)
    found = cache.get(same)
    if found is None:
        found = cache[same] = Provenance(calls, judge(calls, created_empty))
    return found


def _call(cache: dict, fn, args, kwargs, kind, code, line, by, part: bool) -> InitCall:
    """The :class:`InitCall` of one logged event, built once per distinct event."""
    try:
        items = kwargs if args is None else (args, tuple(kwargs.items()))
        # 1, 1.0 and True hash alike: the types keep fill_(1) and fill_(True) apart
        kinds = tuple(map(type, args)) if args is not None else ()
        key = (fn, items, kinds, kind, code, line, by, part)
        found = cache.get(key)
    except TypeError:  # an unhashable argument: build it
        key, found = None, None
    if found is None:
        at = site_text(None if code is None else (code, line))
        found = InitCall(fn, _arguments(fn, args, kwargs), at, by, kind, part=part)
        if key is not None:
            cache[key] = found
    return found


@functools.cache
def _spec(fn: str) -> tuple[tuple[str, ...], dict[str, object]]:
    """The argument names (after the tensor) and defaults of a recorded function."""
    if fn in INIT_FUNCTIONS:
        signature = inspect.signature(inspect.unwrap(getattr(nn.init, fn)))
        names = tuple(p for p in signature.parameters if p not in ("tensor", "generator"))
        return names, _defaults()[fn]
    for table in (RANDOM_METHODS, WRITE_METHODS, MODIFY_METHODS):
        if fn in table:
            return tuple(n for n, _ in table[fn]), dict(table[fn])
    return (), {}


def _arguments(fn, args, kwargs) -> tuple[tuple[str, object], ...]:
    """The recorded call's arguments by name (defaults filled in), JSON-safe."""
    if args is None:  # read from an init function's frame: already by name
        return tuple((k, _safe(v)) for k, v in kwargs)
    names, defaults = _spec(fn)
    given = dict(zip(names, args, strict=False))
    given.update(kwargs)
    return tuple(
        (n, _safe(given[n] if n in given else defaults[n]))
        for n in names
        if (n in given or defaults.get(n) is not None) and n != "generator"
    )


def judge(calls: tuple[InitCall, ...], created_empty: bool) -> tuple[str, ...]:
    """The flags of one history (see the module's docstring)."""
    whole = [c for c in calls if not c.part and c.kind != MODIFY]
    inits = sum(1 for c in whole if c.kind == INIT)
    flags = []
    if inits > 1:
        flags.append("written_twice")
    if created_empty and not whole:
        flags.append("uninitialized")
    if whole and not any(c.kind in (INIT, LOAD) for c in whole):
        flags.append("not_init")
    return tuple(flags)


def _byte_span(tensor: torch.Tensor) -> tuple[int, int]:
    """The bytes of its storage a tensor covers: [first, end)."""
    size = tensor.element_size()
    first = tensor.storage_offset() * size
    if tensor.is_contiguous():
        return first, first + tensor.numel() * size
    if tensor.numel() == 0:
        return first, first
    last = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride(), strict=True) if n > 1)
    return first, first + (last + 1) * size


def _record(tensor, fn, args, kwargs, kind, wrapped=False) -> None:
    """Log one call on this thread (every active recorder reads it)."""
    if not isinstance(tensor, torch.Tensor):
        return
    state = _state
    at, by, found = caller_site(sys._getframe(2))
    if not wrapped and found is not None:
        # A writing op inside an init function that was not wrapped: record the function,
        # once per call (trunc_normal_ runs uniform_, mul_, clamp_ on the same tensor).
        frame, fn, kwargs = found
        key = (frame, tensor.untyped_storage()._cdata)
        last = state.last
        if last is not None and last[0] is frame and last[1] == key[1]:
            return
        state.last = key
        kind, args = INIT, None
    elif kind != INIT:
        # copy_(src), mul_(other): describe tensors now rather than keep them alive.
        args = tuple(_safe(a) for a in args)
        kwargs = {k: _safe(v) for k, v in kwargs.items()}
    code, line = at or (None, None)
    state.log.append((tensor, fn, args, kwargs, kind, code, line, by))


def _method_hook(name, original, kind):
    def hook(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        state = _state
        if state.depth and not state.quiet:
            _record(self, name, args, kwargs, kind)
        return out

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = original.__doc__
    return hook


def _init_hook(name, original):
    def hook(tensor, *args, **kwargs):
        state = _state
        if not state.depth or state.quiet:
            return original(tensor, *args, **kwargs)
        state.quiet += 1
        try:
            out = original(tensor, *args, **kwargs)
        finally:
            state.quiet -= 1
        _record(tensor, name, args, kwargs, INIT, wrapped=True)
        return out

    hook.__wrapped__ = original
    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = original.__doc__
    return hook


def _empty_hook(original):
    def hook(*args, **kwargs):
        out = original(*args, **kwargs)
        state = _state
        if state.depth and not state.quiet:
            state.empties.append(out)
        return out

    hook.__wrapped__ = original
    hook.__name__ = hook.__qualname__ = original.__name__
    return hook


# --------------------------------------------------------------------------- installing

_lock = threading.Lock()
_installed = 0
_saved: list[tuple[object, str, object, bool]] = []  # (owner, name, original, own attribute)


def _patches() -> list[tuple[object, str, object]]:
    patches: list[tuple[object, str, object]] = []
    for name in INIT_FUNCTIONS:
        original = getattr(nn.init, name)
        patches.append((nn.init, name, _init_hook(name, original)))
    for table, kind in ((RANDOM_METHODS, INIT), (WRITE_METHODS, WRITE), (MODIFY_METHODS, MODIFY)):
        for name in table:
            original = getattr(torch.Tensor, name)
            patches.append((torch.Tensor, name, _method_hook(name, original, kind)))
    for name in ("empty", "empty_like"):
        patches.append((torch, name, _empty_hook(getattr(torch, name))))
    return patches


def _prime_identity_caches() -> None:
    """torch caches sets of its factory functions by identity (``torch.device("meta")`` as a
    context manages the calls in ``_device_constructors()``): fill the cache with the real
    ``torch.empty`` before it is wrapped, or a meta build would allocate on the CPU."""
    try:
        from torch.utils._device import _device_constructors
    except ImportError:  # another torch version: nothing cached there
        return
    _device_constructors()


def _install() -> None:
    global _installed
    with _lock:
        _installed += 1
        if _installed > 1:
            return
        _prime_identity_caches()
        for owner, name, hook in _patches():
            own = name in vars(owner)
            _saved.append((owner, name, getattr(owner, name), own))
            setattr(owner, name, hook)


def _uninstall() -> None:
    global _installed
    with _lock:
        _installed -= 1
        if _installed > 0:
            return
        while _saved:
            owner, name, original, own = _saved.pop()
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


@contextlib.contextmanager
def record_construction() -> Iterator[Recorder]:
    """Record what runs inside the ``with`` block (this thread only); everything is
    restored on leaving it, also when the block raises. Nested blocks each record."""
    state = _state
    outermost = not state.depth
    if outermost:
        state.log, state.empties = [], []
        # The log allocates a little per recorded call; on a model of thousands of tiny
        # layers those allocations set off full collections over the growing model, most of
        # the recorder's cost. Construction makes little cyclic garbage (tensors are freed
        # by reference counting): the cyclic collector pauses while it runs, as it was after.
        collecting = gc.isenabled()
        gc.disable()
    recorder = Recorder(state.log, state.empties)
    _install()
    state.depth += 1
    try:
        yield recorder
    finally:
        recorder.stop()
        state.depth -= 1
        if not state.depth:
            state.log = state.empties = state.last = None  # the recorders keep theirs
        _uninstall()
        if outermost and collecting:
            gc.enable()


# --------------------------------------------------------------------------- attaching

_by_model: weakref.WeakKeyDictionary[nn.Module, dict[str, Provenance]] = weakref.WeakKeyDictionary()


def attach(model: nn.Module, provenance: dict[str, Provenance]) -> None:
    """Remember ``model``'s provenance so that ``build_tree`` finds it."""
    _by_model[model] = provenance


def provenance_of(model: nn.Module) -> dict[str, Provenance] | None:
    """The provenance recorded when ``model`` was built (None: not built by ``load_model``)."""
    try:
        return _by_model.get(model)
    except TypeError:
        return None


def with_checkpoint(provenance: dict[str, Provenance], path: str) -> dict[str, Provenance]:
    """Every parameter's history with the checkpoint load appended (values came from it)."""
    call = InitCall("load_checkpoint", (("file", os.path.basename(path)),), path, None, LOAD)
    done: dict[int, Provenance] = {}
    out = {}
    for name, prov in provenance.items():
        new = done.get(id(prov))
        if new is None:
            calls = (*prov.calls, call)
            new = done[id(prov)] = Provenance(calls, judge(calls, created_empty=False))
        out[name] = new
    return out


def summary(provenance: dict[str, Provenance] | None, names: list[str]) -> dict:
    """The ``inspect --json`` top-level ``init_summary``: counts over unique parameters."""
    counts = dict.fromkeys(FLAGS, 0)
    calls = flagged = 0
    for name in names:
        prov = (provenance or {}).get(name)
        if prov is None:
            continue
        calls += len(prov.calls)
        flagged += bool(prov.flags)
        for flag in prov.flags:
            counts[flag] += 1
    return {"recorded": provenance is not None, "calls": calls, "flagged": flagged, **counts}
