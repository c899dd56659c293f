"""Run the model once with a hook on every module and record each call's output statistics
(:func:`probe`); the forward and backward passes, and the context they run in (eval or
train mode, attention fast path off, hooks removed afterwards)."""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from inittui.core.errors import CancelledError, InittuiError
from inittui.core.loading import model_device
from inittui.core.probe.expectations import annotate
from inittui.core.probe.input_files import keyword_call
from inittui.core.probe.input_report import input_infos
from inittui.core.probe.inputs import _KNOWN_COMPOSITES
from inittui.core.probe.moments import _fill, _main_tensor, _Stats, _std_of
from inittui.core.probe.residuals import _AddWatch, _Streams
from inittui.core.probe.results import (
    CancelFn,
    LayerRecord,
    ProbeResult,
    ProgressFn,
    Thresholds,
    _dtype_name,
    _one_line,
    find_flags,
)
from inittui.core.probe.theory import theory_std


def _uses_batch_statistics(module: nn.Module) -> bool:
    """BatchNorm/InstanceNorm (and custom classes named so): the layers whose train mode
    normalizes by the batch's own statistics."""
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
        return True
    name = type(module).__name__
    return "BatchNorm" in name or "InstanceNorm" in name


@contextlib.contextmanager
def _model_mode(model: nn.Module, train: bool) -> Iterator[None]:
    """Eval mode, or with ``train`` eval mode except the normalization layers, which use
    batch statistics; restore every module's own flag afterwards.

    Only the normalization layers go to train mode, so dropout stays off however it is
    written (a Dropout module, or ``F.dropout(..., training=self.training)`` in a parent,
    as in transformers' attention). Their running statistics (``running_mean``,
    ``running_var``, ``num_batches_tracked``) are saved and restored: the model is not
    changed by the pass."""
    saved = [(module, module.training) for module in model.modules()]
    norms = (
        [module for module in model.modules() if _uses_batch_statistics(module)] if train else []
    )
    buffers = [
        (tensor, tensor.detach().clone())
        for module in norms
        for tensor in module.buffers(recurse=False)
    ]
    model.train(False)
    for module in norms:
        module.training = True
    try:
        yield
    finally:
        with torch.no_grad():
            for tensor, value in buffers:
                tensor.copy_(value)
        for module, training in saved:
            module.training = training


@contextlib.contextmanager
def _attention_fastpath_off(model: nn.Module) -> Iterator[None]:
    """Eval-mode TransformerEncoderLayer/MultiheadAttention take a fused fast path that
    skips their submodules (so their hooks would never fire); turn it off while probing."""
    mha = getattr(torch.backends, "mha", None)
    uses = any(isinstance(m, _KNOWN_COMPOSITES) for m in model.modules())
    if not uses or mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def _check_not_meta(model: nn.Module) -> None:
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise InittuiError(
            "the preview needs real weights, not the meta device; use --device cpu or cuda "
            "(with --load CKPT for a model built on meta)"
        )


# --------------------------------------------------------------------------- probe


class _Recorder:
    """The hooks' shared state during one probe."""

    def __init__(
        self,
        backward: bool,
        link_input: torch.Tensor | None,
        total: int,
        progress: ProgressFn | None,
        cancel: CancelFn | None,
    ) -> None:
        self.stats = _Stats()
        self.records: list[LayerRecord] = []
        self.slots: list[int | None] = []
        self.grad_slots: dict[int, int] = {}
        self.calls: dict[str, int] = {}
        self.backward = backward
        self.link_input = link_input
        self.last_leaf: tuple[weakref.ref, int] | None = None
        self.pending: dict[int, list[_Pending]] = {}
        self.total = total
        self.progress = progress
        self.cancel = cancel
        self.inputs: list[_Pending] = []
        self.streams = _Streams(self)

    def hook(self, path: str, module: nn.Module) -> Callable[..., None]:
        type_name = type(module).__name__
        leaf = next(module.children(), None) is None

        def forward_hook(mod: nn.Module, args: tuple[Any, ...], output: object) -> None:
            if self.cancel is not None and self.cancel():
                raise CancelledError("preview cancelled")
            self.streams.leave(path)
            call = self.calls.get(path, 0)
            self.calls[path] = call + 1
            tensor, where = _main_tensor(output)
            record = LayerRecord(path=path, type=type_name, call=call, leaf=leaf)
            record.main_output = where
            slot = None
            if tensor is not None:
                record.out_shape = [int(s) for s in tensor.shape]
                if tensor.is_floating_point() or tensor.is_complex():
                    slot = self.stats.measure(tensor)
            index = len(self.records)
            self.records.append(record)
            self.slots.append(slot)
            if leaf:
                stack = self.pending.get(id(mod))
                pending = stack.pop() if stack else None
                if pending is not None:
                    record.input_link = pending.link
                    pending.index = index
                if tensor is not None:
                    with contextlib.suppress(TypeError):
                        self.last_leaf = (weakref.ref(tensor), tensor._version)
            if self.backward and tensor is not None and tensor.requires_grad:
                tensor.register_hook(self._grad_hook(index))
            if self.progress is not None:
                done = len(self.records)
                self.progress(done, max(done, self.total))

        return forward_hook

    def container_pre_hook(self, path: str) -> Callable[..., None]:
        def pre_hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            self.streams.enter(path, args, leaf=False)

        return pre_hook

    def leaf_pre_hook(self, path: str) -> Callable[..., None]:
        def pre_hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            """Before a leaf runs (an in-place op changes its input): where its input came
            from, its statistics and (backward) a hook for its gradient."""
            self.streams.enter(path, args, leaf=True)
            first = args[0] if args else None
            pending = _Pending(self._link(args))
            if isinstance(first, torch.Tensor) and first.is_floating_point():
                pending.in_slot = self.stats.measure(first)
                pending.tensor_id = self.streams.consume(first)
                if self.backward and first.requires_grad and not isinstance(first, nn.Parameter):
                    first.register_hook(self._in_grad_hook(pending))  # never on the model's own
            self.pending.setdefault(id(mod), []).append(pending)
            self.inputs.append(pending)

        return pre_hook

    def _link(self, args: tuple[Any, ...]) -> str | None:
        first = args[0] if args else None
        if not isinstance(first, torch.Tensor):
            return None
        if self.link_input is not None and first is self.link_input:
            return "input"
        last = self.last_leaf
        if last is not None and last[0]() is first and last[1] == first._version:
            return "previous"
        return None

    def _grad_hook(self, index: int) -> Callable[[torch.Tensor], None]:
        def grad_hook(grad: torch.Tensor) -> None:
            if self.cancel is not None and self.cancel():
                raise CancelledError("preview cancelled")
            if index not in self.grad_slots:  # a tensor seen twice gets one gradient
                self.grad_slots[index] = self.stats.measure(grad)

        return grad_hook

    def _in_grad_hook(self, pending: _Pending) -> Callable[[torch.Tensor], None]:
        def grad_hook(grad: torch.Tensor) -> None:
            if pending.in_grad_slot is None:
                pending.in_grad_slot = self.stats.measure(grad)

        return grad_hook

    def fill_inputs(self) -> None:
        """Copy the measured input statistics (and input gradients of inputs that only this
        call consumed) onto the leaf records."""
        stats = self.stats
        for pending in self.inputs:
            if pending.index is None:
                continue
            record = self.records[pending.index]
            values = stats.get(pending.in_slot)
            record.in_std = _std_of(values)
            record.in_mean = values[1] if values is not None else None
            if self.streams.consumers.get(pending.tensor_id, 0) == 1:
                record.in_grad_std = _std_of(stats.get(pending.in_grad_slot))


class _Pending:
    """A leaf call between its pre-hook and its forward hook (then its record's index)."""

    __slots__ = ("in_grad_slot", "in_slot", "index", "link", "tensor_id")

    def __init__(self, link: str | None) -> None:
        self.link = link
        self.in_slot: int | None = None
        self.in_grad_slot: int | None = None
        self.index: int | None = None
        self.tensor_id: int | None = None


def probe(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    backward: bool = False,
    thresholds: Thresholds | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    train_mode: bool = False,
    seed: int = 0,
    theory: bool = True,
) -> ProbeResult:
    """Run ``model(*inputs)`` with a forward hook on every module (the root and containers
    included) and return per-call output statistics in the order the calls finished.

    The model runs in eval mode; with ``train_mode`` its BatchNorm/InstanceNorm layers use
    batch statistics (their running statistics are restored afterwards) and dropout stays
    off (:func:`_model_mode`). Every module's mode is restored afterwards, and every hook is
    removed even when the forward fails. Forward-only runs under ``torch.no_grad()``.

    ``backward=True`` also measures gradients: with ``output`` the model's main output and
    ``R`` a standard-normal tensor of its shape drawn from a generator seeded by ``seed``,
    the loss ``(output * R).sum()`` is differentiated with ``torch.autograd.grad`` (so no
    ``.grad`` is written on the model), each module output's gradient std is recorded by a
    tensor hook, and ``param_grad_std`` maps each parameter's name to the std of its
    gradient. Parameters are made to require grad for the pass and restored after.

    ``progress(done, total)`` is called after each module call (``total`` is the number of
    modules, raised to ``done`` when modules are called more than once); ``cancel()`` is
    polled in every hook and stops the pass with :class:`CancelledError`.
    """
    thresholds = thresholds or Thresholds()
    _check_not_meta(model)
    tensors, first_float = _probe_tensors(inputs, backward)
    link_input = tensors[0] if first_float == 0 else None
    named_modules = list(model.named_modules())
    recorder = _Recorder(backward, link_input, len(named_modules), progress, cancel)
    input_slot = None if first_float is None else recorder.stats.measure(tensors[first_float])
    params = [(name, p) for name, p in model.named_parameters() if p.is_floating_point()]
    with _hooks_on(named_modules, recorder), _model_mode(model, train_mode):
        with _attention_fastpath_off(model), keyword_call(model, inputs):
            loss_text, param_slots = _run_pass(model, tensors, params, recorder, backward, seed)
    stats = recorder.stats
    stats.finish()
    for record, slot in zip(recorder.records, recorder.slots, strict=True):
        _fill(record, stats.get(slot))
    for index, slot in recorder.grad_slots.items():
        recorder.records[index].grad_std = _std_of(stats.get(slot))
    recorder.fill_inputs()
    input_std, input_mean, source = _input_reference(
        tensors, first_float, stats.get(input_slot), recorder.records
    )
    result = ProbeResult(
        device=str(model_device(model) if params else (tensors[0].device if tensors else "cpu")),
        inputs=input_infos(inputs),
        layers=recorder.records,
        flags=[],
        input_std=input_std,
        input_mean=input_mean,
        input_std_source=source,
        inputs_source=getattr(inputs, "source", None),
        loss=loss_text,
        param_grad_std={name: _std_of(stats.get(slot)) for name, slot in param_slots.items()}
        if backward
        else None,
        train_mode=train_mode,
        seed=seed,
        residuals=recorder.streams.finish(),
    )
    annotate(model, result)
    result.flags = find_flags(result.layers, input_std, thresholds, result.residuals)
    if theory:
        theory_std(model, result)
    return result


def _probe_tensors(
    inputs: Sequence[torch.Tensor], backward: bool
) -> tuple[tuple[torch.Tensor, ...], int | None]:
    """The inputs as a tuple (floating ones made to require grad for a backward pass) and
    the index of the first floating input (``None`` when all are integer)."""
    tensors = tuple(inputs)
    first_float = next((i for i, t in enumerate(tensors) if t.is_floating_point()), None)
    if backward:
        tensors = tuple(
            t.detach().requires_grad_(True) if t.is_floating_point() else t for t in tensors
        )
    return tensors, first_float


@contextlib.contextmanager
def _hooks_on(named_modules: list[tuple[str, nn.Module]], recorder: _Recorder) -> Iterator[None]:
    """The recorder's forward hook and pre-hook on every module, removed on the way out
    even when the pass fails."""
    handles = [
        module.register_forward_hook(recorder.hook(path, module)) for path, module in named_modules
    ]
    handles += [
        module.register_forward_pre_hook(
            recorder.leaf_pre_hook(path)
            if next(module.children(), None) is None
            else recorder.container_pre_hook(path),
            with_kwargs=True,
        )
        for path, module in named_modules
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _run_pass(
    model: nn.Module,
    tensors: tuple[torch.Tensor, ...],
    params: list[tuple[str, nn.Parameter]],
    recorder: _Recorder,
    backward: bool,
    seed: int,
) -> tuple[str | None, dict[str, int]]:
    """The forward pass (and the backward one): the loss description and, per parameter
    name, the statistics slot of its gradient. ``requires_grad`` is restored afterwards."""
    if not backward:
        with torch.no_grad(), _AddWatch(recorder.streams):
            _forward(model, tensors)
        return None, {}
    saved_requires_grad = [(p, p.requires_grad) for _, p in params]
    param_slots: dict[str, int] = {}
    try:
        for _, p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            with _AddWatch(recorder.streams):
                output = _forward(model, tensors)
            loss_text, grads = _backward(output, params, tensors, seed)
        del output
        for (name, _), grad in zip(params, grads, strict=True):
            if grad is not None:
                param_slots[name] = recorder.stats.measure(grad)
    finally:
        for p, flag in saved_requires_grad:
            p.requires_grad_(flag)
    return loss_text, param_slots


def _input_reference(
    tensors: tuple[torch.Tensor, ...],
    first_float: int | None,
    input_values: tuple[float, float, float, float, float] | None,
    records: list[LayerRecord],
) -> tuple[float | None, float | None, str]:
    """``(input_std, input_mean, source)``: the std the flags and ratios are relative to --
    the first floating input's, or with integer inputs the first finite leaf output's."""
    if first_float is not None:
        t = tensors[first_float]
        source = f"input {first_float} {tuple(t.shape)} {_dtype_name(t.dtype)}"
        return _std_of(input_values), input_values[1] if input_values else None, source
    for record in records:
        if record.leaf and record.out_std is not None and math.isfinite(record.out_std):
            source = f"output of {record.path or '(root)'} ({record.type}); the inputs are integer"
            return record.out_std, record.out_mean, source
    return _std_of(input_values), None, "no floating input or layer output"


def _forward(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> object:
    try:
        return model(*inputs)
    except CancelledError:
        raise
    except KeyboardInterrupt:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code may raise anything
        raise InittuiError(f"forward pass failed: {_one_line(exc)}; check --input-shape") from exc


def _backward(
    output: object,
    params: list[tuple[str, nn.Parameter]],
    inputs: tuple[torch.Tensor, ...],
    seed: int,
) -> tuple[str, Sequence[torch.Tensor | None]]:
    """Differentiate ``(output * R).sum()``; returns the loss description and the
    parameters' gradients (``None`` for unused ones)."""
    out, where = _main_tensor(output)
    if out is None or not out.is_floating_point() or not out.requires_grad:
        raise InittuiError(
            "backward needs a floating model output that depends on the parameters or inputs; "
            f"the model returned {type(output).__name__}; preview without --backward"
        )
    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(tuple(out.shape), generator=generator).to(out.device, out.dtype)
    loss = (out * noise).sum()
    element = f"output{where or ''}"
    text = (
        f"loss = ({element} * R).sum(), R ~ N(0, 1) of shape {tuple(out.shape)} drawn from "
        f"torch.Generator().manual_seed({seed})"
    )
    wrt = [p for _, p in params] + [t for t in inputs if t.requires_grad]
    try:
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    except CancelledError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - user hooks may raise anything
        raise InittuiError(
            f"backward pass failed: {_one_line(exc)}; preview without --backward"
        ) from exc
    return text, grads[: len(params)]
