"""The probe's example inputs: ``--input-shape``, the model file's ``example_inputs``, or a
guess from the first parameterized layer (:func:`make_inputs`), and their one-line
description. Everything is drawn from a seeded ``torch.Generator``, so a seed gives the same
inputs on every device."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.formatting import size as _size_text
from inittui.core.loading import (
    DTYPE_ALIASES,
    DTYPES,
    LoadedModel,
    example_inputs_function,
    model_device,
)
from inittui.core.probe.memory import device_memory
from inittui.core.probe.results import _dtype_name, _one_line

DEFAULT_BATCH = 8
DEFAULT_SEQ = 16
DEFAULT_SPATIAL = {1: (32,), 2: (32, 32), 3: (16, 16, 16)}
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
    if input_shapes:
        return _inputs_from_shapes(model, input_shapes, dtype, seed, device)
    if fn is not None:
        return _inputs_from_example(fn, model, label, dtype, seed, device)
    return infer_inputs(model, dtype, batch, seed, device)


def _inputs_from_shapes(
    model: nn.Module,
    input_shapes: Sequence[str],
    dtype: torch.dtype | None,
    seed: int,
    device: torch.device,
) -> ProbeInputs:
    """``--input-shape`` inputs (see :func:`make_inputs`, case 1)."""
    shapes = [parse_input_shape(text) for text in input_shapes]
    found = first_layer(model)
    ids_high = _embedding_size(found[1]) if found else None
    if dtype is None:
        dtype = torch.int64 if ids_high else _model_float_dtype(model)
    _check_input_size(shapes, dtype, device)
    generator = torch.Generator().manual_seed(int(seed))
    tensors = [_draw(shape, dtype, generator, ids_high, device) for shape in shapes]
    return ProbeInputs(tensors, "--input-shape")


def _inputs_from_example(
    fn: Callable[..., Any],
    model: nn.Module,
    label: str,
    dtype: torch.dtype | None,
    seed: int,
    device: torch.device,
) -> ProbeInputs:
    """The model file's ``example_inputs`` (see :func:`make_inputs`, case 2)."""
    float_dtype = _model_float_dtype(model)
    tensors = list(_as_tensor_tuple(_call_example_inputs(fn, model, label, seed), label))
    for i, tensor in enumerate(tensors):
        target = tensor.dtype
        if tensor.is_floating_point():
            target = dtype if dtype is not None and dtype.is_floating_point else float_dtype
        elif dtype is not None and not dtype.is_floating_point:
            target = dtype
        tensors[i] = tensor.detach().to(device=device, dtype=target)
    return ProbeInputs(tensors, "example_inputs")


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
