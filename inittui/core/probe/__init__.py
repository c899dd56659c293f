"""Forward/backward variance probe: example inputs, per-layer statistics, theory, LSUV.

The preview answers "how does the signal's scale change through this model with these
weights?" by running one forward (optionally one backward) pass with a hook on every module.

* :func:`make_inputs` picks the inputs: ``--input-shape``, else the model file's
  ``example_inputs(model)``, else a guess from the first parameterized layer.
* :func:`probe` runs the pass and records, per module call in the order the calls finished,
  the output's shape, mean, std, fraction of exact zeros and largest magnitude (and with
  ``backward=True`` the std of the gradient of that output). Statistics are computed inside
  the hook and the activations are dropped, so the probe needs no more memory than the
  forward pass itself.
* :func:`theory_std` predicts the std of chains of Linear/Conv layers and elementwise
  activations from the weights actually in the model (He et al. 2015 / Glorot & Bengio 2010
  style variance propagation), for comparison with the measured values.
* :func:`compare` probes the current weights and the weights a plan would give.
* :func:`lsuv` runs layer-sequential unit-variance init (Mishkin & Matas 2015, "All you need
  is a good init") and returns it as a plan that reproduces it without data.

Conventions: ``std`` is the sample standard deviation (correction 1) over all elements of
the measured tensor; ``zero_fraction`` counts exact zeros (``+0.0`` and ``-0.0``); numbers
that are NaN/Inf are kept as floats in the records and written as ``null`` by ``to_dict``.
Only ``torch`` and the standard library are imported here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import inspect
import math
import os
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.errors import CancelledError, InittuiError
from inittui.core.loading import (
    DTYPE_ALIASES,
    DTYPES,
    LoadedModel,
    example_inputs_function,
    model_device,
)
from inittui.core.plan import Plan, ResolvedPlan, Rule, resolve_plan
from inittui.core.tree import build_tree

__all__ = [
    "DEFAULT_BATCH",
    "LSUV_TYPES",
    "Comparison",
    "Flag",
    "InputInfo",
    "LSUVLayer",
    "LSUVResult",
    "LayerRatio",
    "LayerRecord",
    "ProbeInputs",
    "ProbeResult",
    "Thresholds",
    "compare",
    "default_copy_limit",
    "describe_inputs",
    "find_flags",
    "first_layer",
    "infer_inputs",
    "lsuv",
    "make_inputs",
    "model_bytes",
    "parse_input_dtype",
    "parse_input_shape",
    "probe",
    "theory_std",
]

DEFAULT_BATCH = 8
DEFAULT_SEQ = 16
DEFAULT_SPATIAL = {1: (32,), 2: (32, 32), 3: (16, 16, 16)}
DEFAULT_COPY_LIMIT = 8 * 1024**3
INTEGER_DTYPES: dict[str, torch.dtype] = {
    "long": torch.int64,
    "int64": torch.int64,
    "int": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


# --------------------------------------------------------------------------- inputs


class ProbeInputs(tuple):
    """A tuple of input tensors for ``model(*inputs)`` that also says where they came from.

    ``source`` is ``"--input-shape"``, ``"example_inputs"`` or
    ``"inferred from first layer <path> (<Type>)"``.
    """

    source: str

    def __new__(cls, tensors: Sequence[torch.Tensor], source: str = "") -> ProbeInputs:
        obj = super().__new__(cls, tuple(tensors))
        obj.source = source
        return obj

    def __getnewargs__(self) -> tuple[tuple[torch.Tensor, ...], str]:  # copy and pickle
        return (tuple(self), self.source)


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"8,3,32,32"`` -> ``(8, 3, 32, 32)``; anything else is an :class:`InittuiError`."""
    body = text.strip().strip("()[]")
    parts = [p.strip() for p in body.split(",")] if body else []
    if parts and parts[-1] == "" and len(parts) > 1:  # allow a trailing comma: "8,"
        parts = parts[:-1]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InittuiError(
            f"--input-shape {text!r} must be comma-separated positive integers, e.g. 8,3,32,32"
        )
    return tuple(int(p) for p in parts)


def parse_input_dtype(spec: str) -> torch.dtype:
    """``--input-dtype``: a float dtype (float32, bf16, ...) or an integer one (long, int32)."""
    name = spec.strip().lower().removeprefix("torch.")
    if name in INTEGER_DTYPES:
        return INTEGER_DTYPES[name]
    name = DTYPE_ALIASES.get(name, name)
    if name in DTYPES:
        return DTYPES[name]
    raise InittuiError(
        f"unknown --input-dtype {spec!r}; use float32, float64, bfloat16, float16, "
        "long (int64) or int32"
    )


def _model_float_dtype(model: nn.Module) -> torch.dtype:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


_KNOWN_COMPOSITES = (nn.TransformerEncoder, nn.TransformerEncoderLayer, nn.MultiheadAttention)


def first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first parameterized leaf module in ``named_modules()`` order (a
    TransformerEncoder/Layer or MultiheadAttention counts as one layer); ``None`` if none."""
    for path, module in model.named_modules():
        if isinstance(module, _KNOWN_COMPOSITES):
            return path, module
        if (
            next(module.children(), None) is None
            and next(module.parameters(recurse=False), None) is not None
        ):
            return path, module
    return None


def _embedding_size(layer: nn.Module | None) -> int | None:
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
        return int(layer.num_embeddings)
    return None


def _inferred_shapes(layer: nn.Module, batch: int, is_root: bool) -> list[tuple[int, ...]] | None:
    """Input shapes the layer accepts, or None when its type is not known."""
    if isinstance(layer, nn.modules.lazy.LazyModuleMixin):
        return None
    if isinstance(layer, nn.Linear):
        return [(batch, layer.in_features)]
    if isinstance(layer, nn.modules.conv._ConvNd):
        dims = len(layer.kernel_size)
        if dims not in DEFAULT_SPATIAL:
            return None
        return [(batch, layer.in_channels, *DEFAULT_SPATIAL[dims])]
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
        return [(batch, DEFAULT_SEQ)]
    if isinstance(layer, nn.RNNBase):
        if layer.batch_first:
            return [(batch, DEFAULT_SEQ, layer.input_size)]
        return [(DEFAULT_SEQ, batch, layer.input_size)]
    if isinstance(layer, nn.RNNCellBase):
        return [(batch, layer.input_size)]
    if isinstance(layer, nn.TransformerEncoder):
        layer = layer.layers[0]
    if isinstance(layer, nn.TransformerEncoderLayer):
        layer = layer.self_attn
        is_root = False  # an encoder layer takes one input
    if isinstance(layer, nn.MultiheadAttention):

        def seq_shape(features: int) -> tuple[int, ...]:
            if layer.batch_first:
                return (batch, DEFAULT_SEQ, features)
            return (DEFAULT_SEQ, batch, features)

        if is_root:  # the model is the attention itself: query, key, value
            return [seq_shape(layer.embed_dim), seq_shape(layer.kdim), seq_shape(layer.vdim)]
        return [seq_shape(layer.embed_dim)]
    if isinstance(layer, nn.LayerNorm):
        return [(batch, *layer.normalized_shape)]
    if isinstance(layer, nn.BatchNorm1d):
        return [(batch, layer.num_features)]
    if isinstance(layer, nn.BatchNorm2d):
        return [(batch, layer.num_features, *DEFAULT_SPATIAL[2])]
    if isinstance(layer, nn.BatchNorm3d):
        return [(batch, layer.num_features, *DEFAULT_SPATIAL[3])]
    return None


def _required_positional(model: nn.Module) -> list[str]:
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]


def _draw(
    shape: Sequence[int],
    dtype: torch.dtype,
    generator: torch.Generator,
    ids_high: int | None,
    device: torch.device,
) -> torch.Tensor:
    """Standard normal floats, or integers in ``[0, ids_high)`` (``[0, 2)`` by default),
    drawn on the CPU from ``generator`` so every device gets the same numbers."""
    if dtype.is_floating_point:
        draw_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        tensor = torch.randn(tuple(shape), generator=generator, dtype=draw_dtype).to(dtype)
    elif dtype == torch.bool:
        tensor = torch.randint(0, 2, tuple(shape), generator=generator).bool()
    else:
        high = ids_high if ids_high else 2
        if dtype in (torch.int8, torch.uint8, torch.int16):
            high = min(high, torch.iinfo(dtype).max + 1)
        tensor = torch.randint(0, high, tuple(shape), generator=generator, dtype=dtype)
    return tensor.to(device)


def infer_inputs(
    model: nn.Module,
    input_dtype: str | torch.dtype | None = None,
    batch: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> ProbeInputs:
    """Inputs guessed from the first parameterized layer (see :func:`first_layer`).

    Linear: ``(batch, in_features)``; Conv1/2/3d: ``(batch, in_channels, 32 | 32x32 |
    16x16x16)``; Embedding/EmbeddingBag: long ids in ``[0, num_embeddings)`` of shape
    ``(batch, 16)``; RNN/LSTM/GRU: ``(batch, 16, input_size)``, or ``(16, batch, ...)``
    unless ``batch_first``; TransformerEncoder/Layer and MultiheadAttention:
    ``(batch, 16, d_model)`` honoring ``batch_first`` (a bare MultiheadAttention gets
    query, key and value). Floats are standard normal from a generator seeded by ``seed``.
    """
    dtype = parse_input_dtype(input_dtype) if isinstance(input_dtype, str) else input_dtype
    batch = DEFAULT_BATCH if batch is None else int(batch)
    if batch < 1:
        raise InittuiError(f"batch must be a positive integer, got {batch}")
    dev = torch.device(device) if device is not None else model_device(model)
    found = first_layer(model)
    name = type(model).__name__
    hint = (
        "pass --input-shape BATCH,... (one per positional input) or define "
        "example_inputs(model) in the model file"
    )
    if found is None:
        raise InittuiError(f"cannot infer an input for {name} (no parameterized layer); {hint}")
    path, layer = found
    shapes = _inferred_shapes(layer, batch, is_root=path == "")
    if shapes is None:
        raise InittuiError(
            f"cannot infer an input for {name} (first layer: {type(layer).__name__}); {hint}"
        )
    required = _required_positional(model)
    if len(shapes) == 1 and len(required) > 1:
        raise InittuiError(
            f"cannot infer inputs for {name}: its forward takes {len(required)} positional "
            f"inputs ({', '.join(required)}); pass --input-shape once per input or define "
            "example_inputs(model) in the model file"
        )
    ids_high = _embedding_size(layer)
    if dtype is None:
        dtype = torch.int64 if ids_high else _model_float_dtype(model)
    generator = torch.Generator().manual_seed(int(seed))
    tensors = [_draw(shape, dtype, generator, ids_high, dev) for shape in shapes]
    where = path or "(root)"
    return ProbeInputs(tensors, f"inferred from first layer {where} ({type(layer).__name__})")


def _call_example_inputs(fn: Callable[..., Any], model: nn.Module, label: str, seed: int) -> Any:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_KEYWORD, p.KEYWORD_ONLY)
        ]
    except (TypeError, ValueError):
        params = [None]
    # Seed the global RNG (without leaking the state) so example_inputs is repeatable.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return fn(model) if params else fn()
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code may raise anything
            raise InittuiError(
                f"example_inputs in {label} failed: {_one_line(exc)}; fix it or pass --input-shape"
            ) from exc


def _as_tensor_tuple(value: object, label: str) -> tuple[torch.Tensor, ...]:
    if isinstance(value, torch.Tensor):
        return (value,)
    if (
        isinstance(value, (tuple, list))
        and value
        and all(isinstance(v, torch.Tensor) for v in value)
    ):
        return tuple(value)
    raise InittuiError(
        f"example_inputs in {label} returned {type(value).__name__}, not a tensor or a "
        "tuple of tensors; return what model(*inputs) takes"
    )


def make_inputs(
    loaded: LoadedModel | nn.Module,
    input_shapes: Sequence[str] | None = None,
    input_dtype: str | None = None,
    batch: int | None = None,
    seed: int = 0,
) -> ProbeInputs:
    """The probe's inputs, in order of preference (their ``.source`` says which):

    1. ``--input-shape`` strings, one per positional input. Floats are standard normal;
       integer dtypes (``--input-dtype long``) are drawn below ``num_embeddings`` when the
       first layer is an Embedding, else in ``[0, 2)``; with no ``--input-dtype`` a model
       whose first layer is an Embedding gets long ids, any other the model's float dtype.
    2. The model file's ``example_inputs(model)`` (or ``example_inputs()``), called with the
       global RNG seeded by ``seed``; floating results are cast to the model's float dtype
       (or to a float ``--input-dtype``), integer ones to an integer ``--input-dtype``.
    3. :func:`infer_inputs` from the first layer (``batch``, default 8, applies here only).

    Everything is drawn from a ``torch.Generator`` seeded by ``seed`` and moved to the
    model's device.
    """
    if isinstance(loaded, LoadedModel):
        model, device = loaded.model, loaded.device
        fn = example_inputs_function(loaded)
        module_file = getattr(loaded.source_module, "__file__", None)
        label = Path(module_file).name if module_file else loaded.source_module.__name__
    else:
        model, device, fn, label = loaded, model_device(loaded), None, "the model file"
    if device.type == "meta" or model_device(model).type == "meta":
        raise InittuiError(
            "the preview needs real weights, not the meta device; use --device cpu or cuda "
            "(with --load CKPT for a model built on meta)"
        )
    dtype = parse_input_dtype(input_dtype) if input_dtype else None
    float_dtype = _model_float_dtype(model)
    if input_shapes:
        shapes = [parse_input_shape(text) for text in input_shapes]
        found = first_layer(model)
        ids_high = _embedding_size(found[1]) if found else None
        if dtype is None:
            dtype = torch.int64 if ids_high else float_dtype
        _check_input_size(shapes, dtype, device)
        generator = torch.Generator().manual_seed(int(seed))
        tensors = [_draw(shape, dtype, generator, ids_high, device) for shape in shapes]
        return ProbeInputs(tensors, "--input-shape")
    if fn is not None:
        tensors = list(_as_tensor_tuple(_call_example_inputs(fn, model, label, seed), label))
        for i, tensor in enumerate(tensors):
            target = tensor.dtype
            if tensor.is_floating_point():
                target = dtype if dtype is not None and dtype.is_floating_point else float_dtype
            elif dtype is not None and not dtype.is_floating_point:
                target = dtype
            tensors[i] = tensor.detach().to(device=device, dtype=target)
        return ProbeInputs(tensors, "example_inputs")
    return infer_inputs(model, dtype, batch, seed, device)


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory ``device`` has in all (None where that is not known)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[1])
        if device.type == "cpu":
            return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None
    return None


def _check_input_size(
    shapes: Sequence[tuple[int, ...]], dtype: torch.dtype, device: torch.device
) -> None:
    """Refuse ``--input-shape`` inputs larger than the device's whole memory (torch would
    fail to allocate them with a message about the allocator)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    nbytes = sum(math.prod(shape) for shape in shapes) * itemsize
    memory = device_memory(device)
    if memory is not None and nbytes > memory:
        shown = " ".join(",".join(map(str, shape)) for shape in shapes)
        raise InittuiError(
            f"--input-shape {shown} is {_size_text(nbytes)} of {_dtype_name(dtype)} input, more "
            f"than the {_size_text(memory)} {device.type} has; pass a smaller shape"
        )


def describe_inputs(inputs: Sequence[torch.Tensor]) -> str:
    """``"(8, 64) float32 from example_inputs"``; several inputs are joined with ``; ``."""
    parts = [f"{tuple(t.shape)} {_dtype_name(t.dtype)}" for t in inputs]
    text = "; ".join(parts) if parts else "no inputs"
    source = getattr(inputs, "source", None)
    return f"{text} from {source}" if source else text


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Thresholds:
    """Flag limits relative to the input std: a leaf output std below ``vanishing`` x or
    above ``exploding`` x the input's is flagged (once, where it starts)."""

    vanishing: float = 0.1
    exploding: float = 10.0

    def __post_init__(self) -> None:
        if not (0 < self.vanishing < self.exploding) or not math.isfinite(self.exploding):
            raise InittuiError(
                f"thresholds must satisfy 0 < vanishing < exploding, got vanishing="
                f"{self.vanishing:g}, exploding={self.exploding:g}; e.g. --vanishing 0.1 "
                "--exploding 10"
            )


@dataclass
class InputInfo:
    shape: list[int]
    dtype: str


@dataclass
class LayerRecord:
    """One module call. Statistics are of the module's main output (``main_output`` names
    the element of a tuple/dict/dataclass output that was measured; ``None`` when the output
    is itself a tensor). ``input_link`` is ``"input"`` when the call's first positional
    argument was the model's first floating input, ``"previous"`` when it was the previous
    leaf's output unchanged, else ``None`` (used by :func:`theory_std`)."""

    path: str
    type: str
    call: int
    leaf: bool
    out_shape: list[int] | None = None
    out_mean: float | None = None
    out_std: float | None = None
    zero_fraction: float | None = None
    abs_max: float | None = None
    main_output: str | None = None
    grad_std: float | None = None
    theory_std: float | None = None
    nonfinite: bool = False
    input_link: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "call": self.call,
            "leaf": self.leaf,
            "out_shape": self.out_shape,
            "out_mean": _finite(self.out_mean),
            "out_std": _finite(self.out_std),
            "zero_fraction": _finite(self.zero_fraction),
            "grad_std": _finite(self.grad_std),
            "abs_max": _finite(self.abs_max),
            "main_output": self.main_output,
            "theory_std": _finite(self.theory_std),
        }


@dataclass
class Flag:
    path: str
    kind: str  # vanishing, exploding, nan
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


@dataclass
class ProbeResult:
    """What :func:`probe` measured. ``to_dict`` is the ``preview --json`` document."""

    device: str
    inputs: list[InputInfo]
    layers: list[LayerRecord]
    flags: list[Flag]
    input_std: float | None = None
    input_mean: float | None = None
    input_std_source: str = ""
    inputs_source: str | None = None
    loss: str | None = None
    param_grad_std: dict[str, float] | None = None
    train_mode: bool = False
    seed: int = 0

    def layer(self, path: str, call: int = 0) -> LayerRecord:
        return _lookup(self, self.layers, (path, call))

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "inputs": [{"shape": list(i.shape), "dtype": i.dtype} for i in self.inputs],
            "layers": [record.to_dict() for record in self.layers],
            "flags": [flag.to_dict() for flag in self.flags],
            "inputs_source": self.inputs_source,
            "input_std": _finite(self.input_std),
            "input_std_source": self.input_std_source,
            "mode": "train" if self.train_mode else "eval",
            "seed": self.seed,
            "loss": self.loss,
            "param_grad_std": None
            if self.param_grad_std is None
            else {k: _finite(v) for k, v in self.param_grad_std.items()},
        }


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


# --------------------------------------------------------------------------- statistics


def _main_tensor(output: object, depth: int = 0) -> tuple[torch.Tensor | None, str | None]:
    """The first floating tensor in ``output``, depth-first, and where it sits ("[0]",
    "['logits']", ".last_hidden_state"); a non-floating tensor only if there is no float."""
    if isinstance(output, torch.Tensor):
        return output, None
    found: tuple[torch.Tensor | None, str | None] = (None, None)
    if depth > 6 or isinstance(output, (str, bytes)):
        return found
    if isinstance(output, Mapping):
        items: list[tuple[str, object]] = [(f"[{k!r}]", v) for k, v in output.items()]
    elif isinstance(output, (tuple, list)):
        items = [(f"[{i}]", v) for i, v in enumerate(output)]
    elif dataclasses.is_dataclass(output) and not isinstance(output, type):
        items = [(f".{f.name}", getattr(output, f.name, None)) for f in dataclasses.fields(output)]
    else:
        return found
    for label, value in items:
        tensor, inner = _main_tensor(value, depth + 1)
        if tensor is None:
            continue
        where = label + (inner or "")
        if tensor.is_floating_point():
            return tensor, where
        if found[0] is None:
            found = (tensor, where)
    return found


class _Stats:
    """Per-tensor moments with few kernels, and (off the CPU) no host sync per tensor.

    A slot holds ``(n, mean, var, abs_max, nonzero)``. On the CPU they are computed at once:
    ``sum``, ``dot``, ``aminmax`` and ``count_nonzero`` on the integer bit pattern (only
    +0.0 is all zero bits; a ``min`` of the bits finds -0.0) stream at memory speed without
    temporaries (``torch.var_mean`` is ~20x slower there), and
    ``var = (sum x^2 - (sum x)^2 / n) / (n - 1)`` falls back to ``torch.var`` in float64
    when the mean dominates (|mean| > ~30 std). On other devices ``var_mean``/``amax``/
    ``count_nonzero`` results stay on the device in one stacked tensor per slot and are
    copied to the host once, in :meth:`finish`. The last tensor measured is remembered (by
    identity and version counter), so a container whose output is its last child's tensor
    costs nothing.
    """

    immediate_devices: tuple[str, ...] = ("cpu",)  # computed at once, no deferred copy

    def __init__(self) -> None:
        self.values: list[tuple[float, float, float, float, float] | None] = []
        self.pending: dict[int, torch.Tensor] = {}
        self.sizes: dict[int, int] = {}
        self._last: tuple[weakref.ref, int, int] | None = None

    def measure(self, tensor: torch.Tensor) -> int:
        last = self._last
        if last is not None and last[0]() is tensor and last[1] == tensor._version:
            return last[2]
        slot = len(self.values)
        self.values.append(None)
        x = tensor.detach()
        n = x.numel()
        if n > 0:
            if x.is_complex():
                x = x.abs()
            if x.dtype not in (torch.float32, torch.float64):
                x = x.float()
            if x.device.type in self.immediate_devices:
                self.values[slot] = _cpu_moments(x)
            else:
                var, mean = torch.var_mean(x) if n > 1 else (x.new_zeros(()), x.mean())
                magnitude = x.abs()
                self.pending[slot] = torch.stack(
                    (mean, var, magnitude.amax(), torch.count_nonzero(magnitude).to(x.dtype))
                )
                self.sizes[slot] = n
        with contextlib.suppress(TypeError):
            self._last = (weakref.ref(tensor), tensor._version, slot)
        return slot

    def finish(self) -> None:
        """Copy the pending device results to the host (one transfer per device)."""
        by_device: dict[torch.device, list[int]] = {}
        for slot, packed in self.pending.items():
            by_device.setdefault(packed.device, []).append(slot)
        for slots in by_device.values():
            rows = torch.stack([self.pending[s].double() for s in slots]).cpu().tolist()
            for slot, (mean, var, amax, nonzero) in zip(slots, rows, strict=True):
                self.values[slot] = (float(self.sizes[slot]), mean, var, amax, nonzero)
        self.pending.clear()

    def get(self, slot: int | None) -> tuple[float, float, float, float, float] | None:
        return None if slot is None else self.values[slot]


def _cpu_moments(x: torch.Tensor) -> tuple[float, float, float, float, float]:
    """``(n, mean, var, abs_max, nonzero)`` of a float32/float64 CPU tensor, allocating
    nothing for a contiguous tensor (fresh large buffers cost page faults)."""
    flat = x.reshape(-1)
    n = flat.numel()
    int_dtype = torch.int32 if flat.dtype == torch.float32 else torch.int64
    bits = flat.view(int_dtype)
    nonzero = float(torch.count_nonzero(bits))  # +0.0 is the only all-zero bit pattern
    low, high = (float(v) for v in torch.aminmax(flat))
    if low <= 0.0 <= high and int(bits.min()) == torch.iinfo(int_dtype).min:
        nonzero = float(torch.count_nonzero(flat))  # -0.0 present: count it as zero too
    abs_max = math.nan if math.isnan(low) or math.isnan(high) else max(-low, high)
    total = float(flat.sum())
    squares = float(torch.dot(flat, flat))
    mean = total / n
    if n < 2:
        return (float(n), mean, 0.0, abs_max, nonzero)
    if not (math.isfinite(abs_max) and math.isfinite(total) and math.isfinite(squares)):
        if math.isfinite(abs_max):  # finite values whose squares overflow float32
            var64, mean64 = torch.var_mean(flat.double())
            return (float(n), float(mean64), float(var64), abs_max, nonzero)
        return (float(n), math.nan, math.nan, abs_max, nonzero)
    var = max(squares - total * mean, 0.0) / (n - 1)
    if var * 1000.0 < squares / n:  # the mean dominates: recompute without cancellation
        var = float(torch.var(flat.double()))
    return (float(n), mean, var, abs_max, nonzero)


def _fill(record: LayerRecord, values: tuple[float, float, float, float, float] | None) -> None:
    if values is None:
        return
    n, mean, var, abs_max, nonzero = values
    record.out_mean = mean
    if n >= 2:
        record.out_std = math.sqrt(var) if var >= 0 else math.nan
    record.abs_max = abs_max
    record.zero_fraction = (n - nonzero) / n if n else None
    record.nonfinite = not (math.isfinite(mean) and math.isfinite(var) and math.isfinite(abs_max))


def _std_of(values: tuple[float, float, float, float, float] | None) -> float | None:
    if values is None or values[0] < 2:
        return None
    var = values[2]
    return math.sqrt(var) if var >= 0 else math.nan


# --------------------------------------------------------------------------- context


@contextlib.contextmanager
def _model_mode(model: nn.Module, train: bool) -> Iterator[None]:
    """Put the model in train/eval mode and restore every module's own flag afterwards."""
    saved = [(module, module.training) for module in model.modules()]
    model.train(train)
    try:
        yield
    finally:
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
        self.pending_links: dict[int, str | None] = {}
        self.total = total
        self.progress = progress
        self.cancel = cancel

    def hook(self, path: str, module: nn.Module) -> Callable[..., None]:
        type_name = type(module).__name__
        leaf = next(module.children(), None) is None

        def forward_hook(mod: nn.Module, args: tuple[Any, ...], output: object) -> None:
            if self.cancel is not None and self.cancel():
                raise CancelledError("preview cancelled")
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
                record.input_link = self.pending_links.pop(id(mod), None)
                if tensor is not None:
                    with contextlib.suppress(TypeError):
                        self.last_leaf = (weakref.ref(tensor), tensor._version)
            if self.backward and tensor is not None and tensor.requires_grad:
                tensor.register_hook(self._grad_hook(index))
            if self.progress is not None:
                done = len(self.records)
                self.progress(done, max(done, self.total))

        return forward_hook

    def pre_hook(self, mod: nn.Module, args: tuple[Any, ...]) -> None:
        """Before a leaf runs (an in-place op changes its input): where its input came from."""
        self.pending_links[id(mod)] = self._link(args)

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

    The model runs in eval mode unless ``train_mode`` (dropout and batch statistics
    change the variance); every module's mode is restored afterwards, and every hook is
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
    tensors = tuple(inputs)
    float_inputs = [i for i, t in enumerate(tensors) if t.is_floating_point()]
    if backward:
        tensors = tuple(
            t.detach().requires_grad_(True) if t.is_floating_point() else t for t in tensors
        )
    link_input = tensors[float_inputs[0]] if float_inputs and float_inputs[0] == 0 else None
    named_modules = list(model.named_modules())
    recorder = _Recorder(backward, link_input, len(named_modules), progress, cancel)

    input_slot = recorder.stats.measure(tensors[float_inputs[0]]) if float_inputs else None
    params = [(name, p) for name, p in model.named_parameters() if p.is_floating_point()]
    saved_requires_grad = [(p, p.requires_grad) for _, p in params]
    loss_text = None
    param_slots: dict[str, int] = {}
    handles = [
        module.register_forward_hook(recorder.hook(path, module)) for path, module in named_modules
    ]
    handles += [
        module.register_forward_pre_hook(recorder.pre_hook)
        for _, module in named_modules
        if next(module.children(), None) is None
    ]
    try:
        with _model_mode(model, train_mode), _attention_fastpath_off(model):
            if backward:
                for _, p in params:
                    p.requires_grad_(True)
                with torch.enable_grad():
                    output = _forward(model, tensors)
                    loss_text, grads = _backward(output, params, tensors, seed)
                del output
                for (name, _), grad in zip(params, grads, strict=True):
                    if grad is not None:
                        param_slots[name] = recorder.stats.measure(grad)
            else:
                with torch.no_grad():
                    _forward(model, tensors)
    finally:
        for handle in handles:
            handle.remove()
        for p, flag in saved_requires_grad:
            p.requires_grad_(flag)

    stats = recorder.stats
    stats.finish()
    for record, slot in zip(recorder.records, recorder.slots, strict=True):
        _fill(record, stats.get(slot))
    for index, slot in recorder.grad_slots.items():
        recorder.records[index].grad_std = _std_of(stats.get(slot))

    input_values = stats.get(input_slot)
    input_std, input_mean = _std_of(input_values), None
    if float_inputs:
        t = tensors[float_inputs[0]]
        source = f"input {float_inputs[0]} {tuple(t.shape)} {_dtype_name(t.dtype)}"
        input_mean = input_values[1] if input_values else None
    else:
        source = "no floating input or layer output"
        for record in recorder.records:
            if record.leaf and record.out_std is not None and math.isfinite(record.out_std):
                input_std, input_mean = record.out_std, record.out_mean
                source = (
                    f"output of {record.path or '(root)'} ({record.type}); the inputs are integer"
                )
                break
    result = ProbeResult(
        device=str(model_device(model) if params else (tensors[0].device if tensors else "cpu")),
        inputs=[InputInfo([int(s) for s in t.shape], _dtype_name(t.dtype)) for t in inputs],
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
    )
    result.flags = find_flags(result.layers, input_std, thresholds)
    if theory:
        theory_std(model, result)
    return result


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


def find_flags(
    layers: Sequence[LayerRecord], input_std: float | None, thresholds: Thresholds
) -> list[Flag]:
    """The first onset of each kind: ``nan`` (first non-finite output, any layer),
    ``vanishing``/``exploding`` (first leaf whose output std is below/above the threshold
    times ``input_std``)."""
    flags: list[Flag] = []
    bad = [r for r in layers if r.nonfinite]
    if bad:
        first = bad[0]
        flags.append(
            Flag(
                first.path,
                "nan",
                f"output holds NaN/Inf at {first.path or '(root)'} ({first.type}); it starts "
                f"here ({len(bad)} of {len(layers)} layer outputs are non-finite)",
            )
        )
    if input_std is None or not math.isfinite(input_std) or input_std <= 0:
        return flags
    found: dict[str, LayerRecord] = {}
    for record in layers:
        std = record.out_std
        if not record.leaf or std is None or not math.isfinite(std):
            continue
        ratio = std / input_std
        if "vanishing" not in found and ratio < thresholds.vanishing:
            found["vanishing"] = record
        if "exploding" not in found and ratio > thresholds.exploding:
            found["exploding"] = record
    for kind in ("vanishing", "exploding"):
        if kind in found:
            record = found[kind]
            assert record.out_std is not None
            ratio = record.out_std / input_std
            flags.append(
                Flag(
                    record.path,
                    kind,
                    f"output std {record.out_std:.2g} is {ratio:.2g}x the input's at "
                    f"{record.path or '(root)'} ({record.type}); it starts here",
                )
            )
    return flags


# --------------------------------------------------------------------------- theory

_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
)
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_MAX_UNITS = 4096
_WEIGHT_BLOCK = 1 << 22

# (mean, var) per feature (Linear: last dim; Conv/BatchNorm: channels); length 1 = all alike.
_State = tuple[torch.Tensor, torch.Tensor]


@functools.lru_cache(maxsize=1)
def _gauss_rule(points: int = 401, span: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite Simpson nodes and weights for E[f(z)], z ~ N(0, 1), on [-span, span]."""
    z = torch.linspace(-span, span, points, dtype=torch.float64)
    w = torch.ones(points, dtype=torch.float64)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w = w * torch.exp(-0.5 * z * z)
    return z, w / w.sum()


def _scalar_state(mean: float | None, std: float | None) -> _State | None:
    if mean is None or std is None or not (math.isfinite(mean) and math.isfinite(std)):
        return None
    t = torch.tensor
    return t([mean], dtype=torch.float64), t([std * std], dtype=torch.float64)


def _pooled(state: _State) -> _State:
    mean, var = state
    m = mean.mean()
    second = (var + mean * mean).mean()
    return m.reshape(1), (second - m * m).clamp_min(0).reshape(1)


def _fit(state: _State, size: int) -> _State:
    """The state as ``size`` features: itself, a broadcast scalar, or pooled and broadcast."""
    if state[0].numel() == size:
        return state
    mean, var = state if state[0].numel() == 1 else _pooled(state)
    return mean.expand(size), var.expand(size)


def _pooled_std(state: _State) -> float:
    return math.sqrt(float(_pooled(state)[1]))


def _through_weights(
    weight: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, groups: int
) -> _State:
    """``sum_i W_oi E[x_i]`` and ``sum_i W_oi^2 Var(x_i)`` per output ``o`` of a Linear
    (``groups=1``) or Conv weight (summing over the kernel taps and the output's group),
    on the weight's device in row blocks of at most ~4M elements, so a large vocabulary
    head needs no full-size copy."""
    out_ch, in_per_group = weight.shape[0], weight.shape[1]
    dtype = torch.float32 if weight.device.type == "mps" else torch.float64
    w = weight.detach().reshape(out_ch, in_per_group, -1)
    mean_g = mean.to(w.device, dtype).reshape(groups, in_per_group)
    var_g = var.to(w.device, dtype).reshape(groups, in_per_group)
    per_group = out_ch // groups
    rows = max(1, _WEIGHT_BLOCK // max(1, w[0].numel()))
    means, variances = [], []
    for start in range(0, out_ch, rows):
        block = w[start : start + rows].to(dtype)
        group = torch.arange(start, start + block.shape[0], device=w.device) // per_group
        means.append((block.sum(2) * mean_g[group]).sum(1))
        variances.append(((block * block).sum(2) * var_g[group]).sum(1))
    return torch.cat(means).double().cpu(), torch.cat(variances).double().cpu()


def _propagate(module: nn.Module, state: _State, train: bool) -> _State | None:
    """Mean and variance per feature of ``module``'s output for independent inputs with the
    given per-feature mean/variance; ``None`` when the module is not modelled."""
    with torch.no_grad():
        if isinstance(module, nn.Linear) or (
            isinstance(module, nn.modules.conv._ConvNd) and not module.transposed
        ):
            groups = getattr(module, "groups", 1)
            mean, var = _fit(state, module.weight.shape[1] * groups)
            out_mean, out_var = _through_weights(module.weight, mean, var, groups)
            if module.bias is not None:
                out_mean = out_mean + module.bias.detach().double().cpu()
            return out_mean, out_var
        if isinstance(module, _ELEMENTWISE):
            mean, var = state if state[0].numel() <= _MAX_UNITS else _pooled(state)
            z, weights = _gauss_rule()
            y = mean[:, None] + var.clamp_min(0).sqrt()[:, None] * z[None, :]
            f = module.forward(y)
            first, second = f @ weights, (f * f) @ weights
            return first, (second - first * first).clamp_min(0)
        if isinstance(module, nn.Identity) or (isinstance(module, _DROPOUT) and not train):
            return state
        if isinstance(module, nn.Flatten):
            return _pooled(state)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            channels = module.num_features
            mean, var = _fit(state, channels)
            gamma = torch.ones(channels, dtype=torch.float64)
            beta = torch.zeros(channels, dtype=torch.float64)
            if module.affine:
                gamma = module.weight.detach().double().cpu()
                beta = module.bias.detach().double().cpu()
            use_batch = train or not module.track_running_stats or module.running_var is None
            if use_batch:  # normalized by the batch's own statistics
                return beta.clone(), gamma * gamma * var / (var + module.eps)
            running_mean = module.running_mean.detach().double().cpu()
            scale = gamma / (module.running_var.detach().double().cpu() + module.eps).sqrt()
            return (mean - running_mean) * scale + beta, var * scale * scale
        if isinstance(module, nn.LayerNorm):
            size = math.prod(module.normalized_shape)
            pooled_var = float(_pooled(state)[1])
            shrink = pooled_var / (pooled_var + module.eps)
            gamma = torch.ones(size, dtype=torch.float64)
            beta = torch.zeros(size, dtype=torch.float64)
            if module.weight is not None:
                gamma = module.weight.detach().double().cpu().reshape(-1)
            if module.bias is not None:
                beta = module.bias.detach().double().cpu().reshape(-1)
            return beta, gamma * gamma * shrink
    return None


def theory_std(model: nn.Module, result: ProbeResult) -> dict[tuple[str, int], float]:
    """Predict the output std of leaf layers in chains, from the weights in ``model``.

    Walking the leaf calls in order, a layer is part of a chain when its first input is the
    model's first input or the previous leaf's output, unchanged (``input_link``). The
    signal is tracked as a mean and a variance per feature, assuming independent inputs:

    * Linear/Conv (``y = W x + b``): ``E[y_o] = sum_i W_oi E[x_i] + b_o`` and
      ``Var(y_o) = sum_i W_oi^2 Var(x_i)`` -- the He/Glorot analysis
      ``Var(y) = fan_in Var(w) E[x^2]`` made exact for the actual weights (a conv sums over
      ``in/groups x kernel`` taps; zero padding at the borders is ignored).
    * Elementwise activations (ReLU, LeakyReLU, Tanh, GELU, SiLU, Sigmoid, ...):
      ``E[phi(y)]`` and ``E[phi(y)^2]`` for ``y ~ N(mean, var)`` per feature by numerical
      integration (Simpson, 401 points over +-8 std) of the module's own function -- so
      ReLU gives ``E[x^2] = Var(y)/2``, tanh ``~Var(y)`` near 0, and GELU its exact value
      rather than a ReLU-like approximation.
    * Identity and eval-mode Dropout pass the signal; Flatten pools the features;
      BatchNorm (running or batch statistics) and LayerNorm map it affinely.

    A chain starts from the measured input (or, after a layer that is not modelled, from
    that layer's measured output); the prediction is never re-anchored inside a chain, so
    a mismatch shows where the independence assumption breaks. The predicted std is set as
    ``theory_std`` on the records (``None`` elsewhere) and returned by ``(path, call)``.
    """
    modules = dict(model.named_modules())
    predicted: dict[tuple[str, int], float] = {}
    state: _State | None = None
    for record in result.layers:
        if not record.leaf:
            record.theory_std = None
            continue
        if record.input_link == "input":
            incoming = _scalar_state(result.input_mean, result.input_std)
        elif record.input_link == "previous":
            incoming = state
        else:
            incoming = None
        module = modules.get(record.path)
        out: _State | None = None
        if incoming is not None and module is not None:
            try:
                out = _propagate(module, incoming, result.train_mode)
            except (RuntimeError, ValueError, TypeError, IndexError):
                out = None
        if out is not None and bool(torch.isfinite(out[0]).all() and torch.isfinite(out[1]).all()):
            std = _pooled_std(out)
            record.theory_std = std
            predicted[(record.path, record.call)] = std
            state = out
        else:
            record.theory_std = None
            state = _scalar_state(record.out_mean, record.out_std)
    return predicted


# --------------------------------------------------------------------------- comparison


@dataclass
class LayerRatio:
    path: str
    call: int
    type: str
    current_std: float | None
    planned_std: float | None
    ratio: float | None  # planned / current

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "call": self.call,
            "type": self.type,
            "current_std": _finite(self.current_std),
            "planned_std": _finite(self.planned_std),
            "ratio": _finite(self.ratio),
        }


def _lookup(owner: object, items: list, key: tuple[str, int]):
    """``items`` (records with ``path`` and ``call``) by key, through an index kept on
    ``owner`` (a search per lookup made a 10,000-layer report quadratic)."""
    cached = owner.__dict__.get("_index")
    if cached is None or cached[0] is not items or cached[1] != len(items):
        index: dict[tuple[str, int], object] = {}
        for item in items:
            index.setdefault((item.path, item.call), item)
        cached = (items, len(items), index)
        owner.__dict__["_index"] = cached
    try:
        return cached[2][key]
    except KeyError:
        raise KeyError(key) from None


@dataclass
class Comparison:
    """The probe on the current weights and on the planned ones. ``in_place`` is True when
    the plan was applied to the model itself (``note`` says why): the caller's model then
    holds the planned weights."""

    current: ProbeResult
    planned: ProbeResult
    ratios: list[LayerRatio]
    in_place: bool = False
    note: str | None = None

    def ratio(self, path: str, call: int = 0) -> float | None:
        return _lookup(self, self.ratios, (path, call)).ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_place": self.in_place,
            "note": self.note,
            "current": self.current.to_dict(),
            "planned": self.planned.to_dict(),
            "ratios": [item.to_dict() for item in self.ratios],
        }


def model_bytes(model: nn.Module) -> int:
    """Bytes held by the model's unique parameters and buffers."""
    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    return total


def default_copy_limit(device: torch.device | None = None) -> int:
    """Half of the free memory where the model lives (RAM via ``os.sysconf``, or the free
    memory of a CUDA device), or 8 GB when that is unknown."""
    if device is not None and device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0] // 2)
        except (RuntimeError, AssertionError):
            return DEFAULT_COPY_LIMIT
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return DEFAULT_COPY_LIMIT
    if pages <= 0 or page_size <= 0:
        return DEFAULT_COPY_LIMIT
    return int(pages * page_size // 2)


def _size_text(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PB"


def compare(
    model: nn.Module,
    plan_resolved: ResolvedPlan,
    inputs: Sequence[torch.Tensor],
    backward: bool = False,
    thresholds: Thresholds | None = None,
    train_mode: bool = False,
    seed: int = 0,
    max_copy_bytes: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Comparison:
    """Probe the current weights and a deep copy with the plan applied; ``ratios`` holds
    planned/current output std per call, matched by ``(path, call)``.

    When the model is larger than ``max_copy_bytes`` (default :func:`default_copy_limit`)
    or cannot be copied, nothing is copied: the current weights are probed first, then the
    plan is applied to ``model`` itself and probed again, with ``in_place=True`` (a cancel
    during that apply leaves the model partly initialized). ``progress`` sees each of the
    two probes run from the start.
    """
    limit = default_copy_limit(model_device(model)) if max_copy_bytes is None else max_copy_bytes
    size = model_bytes(model)
    planned_model: nn.Module | None = None
    note = None
    suffix = "the plan was applied to the model itself, which now holds the planned weights"
    if size > limit:
        note = (
            f"the model ({_size_text(size)}) is larger than the copy limit "
            f"({_size_text(limit)}); {suffix}"
        )
    else:
        try:
            planned_model = copy.deepcopy(model)
        except MemoryError:
            note = f"not enough memory to copy the model ({_size_text(size)}); {suffix}"
        except Exception as exc:  # noqa: BLE001 - custom modules may refuse deepcopy
            note = f"the model cannot be copied ({_one_line(exc)}); {suffix}"
    options = dict(
        backward=backward,
        thresholds=thresholds,
        progress=progress,
        cancel=cancel,
        train_mode=train_mode,
        seed=seed,
    )
    current = probe(model, inputs, **options)
    target = model if planned_model is None else planned_model
    apply_plan(target, plan_resolved, cancel=cancel)
    planned = probe(target, inputs, **options)
    return Comparison(
        current=current,
        planned=planned,
        ratios=_ratios(current, planned),
        in_place=planned_model is None,
        note=note,
    )


def _ratios(current: ProbeResult, planned: ProbeResult) -> list[LayerRatio]:
    before = {(r.path, r.call): r for r in current.layers}
    ratios = []
    for record in planned.layers:
        old = before.get((record.path, record.call))
        old_std = old.out_std if old is not None else None
        new_std = record.out_std
        ratio = None
        if old_std is not None and new_std is not None and old_std > 0:
            ratio = new_std / old_std
        ratios.append(LayerRatio(record.path, record.call, record.type, old_std, new_std, ratio))
    return ratios


# --------------------------------------------------------------------------- LSUV

LSUV_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class LSUVLayer:
    path: str
    type: str
    iterations: int  # how many times the weight was rescaled
    std: float  # the output std after the last rescaling
    scale: float  # total factor applied to the orthogonal weight
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "iterations": self.iterations,
            "std": _finite(self.std),
            "scale": _finite(self.scale),
            "converged": self.converged,
        }


@dataclass
class LSUVResult:
    """Per-layer LSUV outcome, the plan that reproduces it, and the initialized copy."""

    layers: list[LSUVLayer]
    plan: Plan
    model: nn.Module = field(repr=False)
    target_std: float = 1.0
    tol: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_std": self.target_std,
            "tol": self.tol,
            "layers": [layer.to_dict() for layer in self.layers],
            "rules": [rule.to_toml_dict() for rule in self.plan.rules],
        }


class _StopForward(BaseException):
    """Raised by an LSUV hook once the layer's output is measured: the rest of the
    forward is not needed. A BaseException so a model's ``except Exception`` passes it."""


def _forward_order(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[str]:
    order: list[str] = []
    handles = []
    for path, module in model.named_modules():
        if isinstance(module, LSUV_TYPES):

            def hook(mod: nn.Module, args: Any, out: Any, path: str = path) -> None:
                if path not in order:
                    order.append(path)

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            _forward(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return order


def _layer_std(model: nn.Module, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """The std of ``module``'s output on its first call in ``model(*inputs)``."""
    captured: list[float] = []

    def hook(mod: nn.Module, args: Any, out: Any) -> None:
        tensor, _ = _main_tensor(out)
        if tensor is not None:
            captured.append(float(tensor.detach().float().std()))
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            _forward(model, inputs)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise InittuiError(
            "LSUV could not measure a layer's output (it returned no tensor); "
            "exclude it from the plan"
        )
    return captured[0]


def lsuv(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    target_std: float = 1.0,
    tol: float = 0.1,
    max_iter: int = 10,
    plan: Plan | None = None,
    train_mode: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> LSUVResult:
    """Layer-sequential unit-variance init (Mishkin & Matas 2015) on a deep copy of ``model``.

    1. Every Linear/Conv1d/Conv2d/Conv3d weight gets an orthogonal init through the plan
       machinery: ``Rule(select="type:<T>", params="weight", scheme="orthogonal")`` rules are
       appended to ``plan`` (or to an empty plan) and resolved and applied, so the matrices
       come from the per-parameter generators.
    2. For each such layer in forward order, the forward pass runs (no_grad, eval mode
       unless ``train_mode``) up to that layer and its output std ``s`` is measured; while
       ``|s - target_std| >= tol`` and fewer than ``max_iter`` rescalings were made, the
       weight is set to ``orthogonal * total`` with ``total *= target_std / s``.

    The returned plan is the input plan, the orthogonal type rules, and one rule per layer
    ``Rule(select=<path>, params="weight", scheme="orthogonal", scale=<total>)``; applied to
    a fresh model it gives exactly the weights of ``result.model`` without any data.
    """
    if target_std <= 0 or tol <= 0 or max_iter < 1:
        raise InittuiError(
            "LSUV needs target_std > 0, tol > 0 and max_iter >= 1, got "
            f"target_std={target_std:g}, tol={tol:g}, max_iter={max_iter}"
        )
    _check_not_meta(model)
    tensors = tuple(inputs)
    try:
        work = copy.deepcopy(model)
    except MemoryError:
        raise InittuiError("not enough memory to copy the model for LSUV") from None
    except Exception as exc:  # noqa: BLE001
        raise InittuiError(
            f"LSUV needs a copy of the model, which failed: {_one_line(exc)}"
        ) from exc
    base = plan if plan is not None else Plan()
    present = []
    for module in work.modules():
        for kind in LSUV_TYPES:
            if isinstance(module, kind) and kind.__name__ not in present:
                present.append(kind.__name__)
    type_rules = tuple(
        Rule(select=f"type:{name}", params="weight", scheme="orthogonal") for name in present
    )
    orthogonal_plan = dataclasses.replace(base, rules=(*base.rules, *type_rules))
    apply_plan(work, resolve_plan(orthogonal_plan, work, build_tree(work)), cancel=cancel)

    modules = dict(work.named_modules())
    layers: list[LSUVLayer] = []
    with _model_mode(work, train_mode), _attention_fastpath_off(work):
        order = _forward_order(work, tensors)
        for done, path in enumerate(order):
            if cancel is not None and cancel():
                raise CancelledError(f"LSUV cancelled after {done} of {len(order)} layers")
            module = modules[path]
            weight = module.weight
            with torch.no_grad():
                original = weight.detach().clone()
            total, iterations = 1.0, 0
            std = _layer_std(work, module, tensors)
            while (
                math.isfinite(std)
                and std > 0
                and abs(std - target_std) >= tol
                and iterations < max_iter
            ):
                total *= target_std / std
                with torch.no_grad():
                    weight.copy_(original * total)
                iterations += 1
                std = _layer_std(work, module, tensors)
            converged = math.isfinite(std) and abs(std - target_std) < tol
            layers.append(LSUVLayer(path, type(module).__name__, iterations, std, total, converged))
            if progress is not None:
                progress(done + 1, len(order))
    layer_rules = tuple(
        Rule(
            select=layer.path,
            params="weight",
            scheme="orthogonal",
            scale=layer.scale,
            note=f"LSUV: output std {layer.std:.4g} (target {target_std:g}) after "
            f"{layer.iterations} rescaling(s)",
        )
        for layer in layers
    )
    final = dataclasses.replace(orthogonal_plan, rules=(*orthogonal_plan.rules, *layer_rules))
    return LSUVResult(layers=layers, plan=final, model=work, target_std=target_std, tol=tol)
