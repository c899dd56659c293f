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

from inittui.core.provenance_site import caller_site, site_text

# Public torch.nn.init functions that write a tensor (the wrapped ones).
INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)
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
    stack: tuple = ()  # the thread's active recorders, innermost last
    quiet: int = 0  # > 0 inside a wrapped init function: its inner ops are not recorded
    last: tuple | None = None  # (frame, storage) of the last unwrapped init call recorded


_state = _State()


class Recorder:
    """Calls recorded per storage while a model is constructed; :meth:`provenance` maps
    them to parameter names. Storages seen are kept alive until the recorder is dropped,
    so a freed temporary's address cannot be taken for a parameter's."""

    def __init__(self) -> None:
        # storage id -> [storage, from torch.empty, events]; event = (fn, args, kind,
        # (code, lineno) of at, by, first byte, end byte)
        self._storages: dict[int, list] = {}

    def _entry(self, tensor: torch.Tensor) -> list:
        storage = tensor.untyped_storage()
        entry = self._storages.get(storage._cdata)
        if entry is None:
            entry = self._storages[storage._cdata] = [storage, False, []]
        return entry

    def created_empty(self, tensor: torch.Tensor) -> None:
        self._entry(tensor)[1] = True

    def add(self, tensor, fn, args, kind, at, by) -> None:
        entry = self._entry(tensor)
        first, end = _byte_span(tensor)
        entry[2].append((fn, args, kind, at, by, first, end))

    def provenance(self, model: nn.Module) -> dict[str, Provenance]:
        """Each parameter name of ``model`` -> its history and flags (tied names share)."""
        out: dict[str, Provenance] = {}
        by_id: dict[int, Provenance] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            for local, param in module._parameters.items():
                if param is None:
                    continue
                name = f"{path}.{local}" if path else local
                found = by_id.get(id(param))
                if found is None:
                    found = by_id[id(param)] = self._history(param)
                out[name] = found
        return out

    def _history(self, param: torch.Tensor) -> Provenance:
        if isinstance(param, nn.parameter.UninitializedTensorMixin):
            return Provenance()
        entry = self._storages.get(param.untyped_storage()._cdata)
        if entry is None:
            return Provenance()
        first, end = _byte_span(param)
        calls = tuple(
            InitCall(fn, args, site_text(at), by, kind, part=lo > first or hi < end)
            for fn, args, kind, at, by, lo, hi in entry[2]
            if lo < end and hi > first or (lo == hi == first)
        )
        return Provenance(calls, judge(calls, created_empty=entry[1]))


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
    if tensor.numel() == 0:
        return first, first
    last = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride(), strict=True) if n > 1)
    return first, first + (last + 1) * size


def _record(tensor, fn, args, kind, wrapped=False) -> None:
    """Record one call into every recorder of this thread."""
    if not isinstance(tensor, torch.Tensor):
        return
    state = _state
    at, by, found = caller_site(sys._getframe(2))
    if not wrapped and found is not None:
        # A writing op inside an init function that was not wrapped: record the function,
        # once per call (trunc_normal_ runs uniform_, mul_, clamp_ on the same tensor).
        frame, fn, args = found
        key = (frame, tensor.untyped_storage()._cdata)
        last = state.last
        if last is not None and last[0] is frame and last[1] == key[1]:
            return
        state.last = key
        kind = INIT
        args = tuple((name, _safe(value)) for name, value in args)
    for recorder in state.stack:
        recorder.add(tensor, fn, args, kind, at, by)


def _method_args(table, args, kwargs) -> tuple[tuple[str, object], ...]:
    out = []
    for i, (name, default) in enumerate(table):
        value = args[i] if i < len(args) else kwargs.get(name, default)
        if value is not None or name in kwargs:
            out.append((name, _safe(value)))
    return tuple(out)


def _method_hook(name, original, table, kind):
    def hook(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        state = _state
        if state.stack and not state.quiet:
            _record(self, name, _method_args(table, args, kwargs), kind)
        return out

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = original.__doc__
    return hook


def _init_hook(name, original):
    signature = inspect.signature(original)
    names = [p for p in signature.parameters if p not in ("tensor", "generator")]
    defaults = {
        p.name: p.default for p in signature.parameters.values() if p.default is not p.empty
    }

    def hook(tensor, *args, **kwargs):
        state = _state
        if not state.stack or state.quiet:
            return original(tensor, *args, **kwargs)
        state.quiet += 1
        try:
            out = original(tensor, *args, **kwargs)
        finally:
            state.quiet -= 1
        given = dict(zip(names, args, strict=False))
        given.update(kwargs)
        values = tuple(
            (n, _safe(given.get(n, defaults.get(n)))) for n in names if n in given or n in defaults
        )
        _record(tensor, name, values, INIT, wrapped=True)
        return out

    hook.__wrapped__ = original
    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = original.__doc__
    return hook


def _empty_hook(original):
    def hook(*args, **kwargs):
        out = original(*args, **kwargs)
        state = _state
        if state.stack and not state.quiet and isinstance(out, torch.Tensor):
            for recorder in state.stack:
                recorder.created_empty(out)
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
        for name, arguments in table.items():
            original = getattr(torch.Tensor, name)
            patches.append((torch.Tensor, name, _method_hook(name, original, arguments, kind)))
    for name in ("empty", "empty_like"):
        patches.append((torch, name, _empty_hook(getattr(torch, name))))
    return patches


def _install() -> None:
    global _installed
    with _lock:
        _installed += 1
        if _installed > 1:
            return
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
    recorder = Recorder()
    _install()
    state = _state
    state.stack = (*state.stack, recorder)
    try:
        yield recorder
    finally:
        state.stack = tuple(r for r in state.stack if r is not recorder)
        if not state.stack:
            state.last = None  # holds a frame (and its locals) otherwise
        _uninstall()


# --------------------------------------------------------------------------- attaching

_by_model: weakref.WeakKeyDictionary[nn.Module, dict[str, Provenance]] = (
    weakref.WeakKeyDictionary()
)


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
