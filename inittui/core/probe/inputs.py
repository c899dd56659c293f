"""The probe's example inputs: ``--inputs FILE``, ``--input-shape``, the model file's
``example_inputs``, or a guess from the first parameterized layer (:func:`make_inputs`), and
their one-line description. Everything is drawn from a seeded ``torch.Generator``, so a seed
gives the same inputs on every device. Reading ``--inputs FILE`` is
:mod:`inittui.core.probe.input_files`; the inputs' statistics and the header line that says
where they came from are :mod:`inittui.core.probe.input_report`."""

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


# Integer inputs are ids: drawn in [0, DEFAULT_IDS_HIGH) when no Embedding tells the range.
DEFAULT_IDS_HIGH = 2


class ProbeInputs(tuple):
    """A tuple of input tensors for ``model(*inputs)`` that also says where they came from.

    ``source`` is ``"--input-shape"``, ``"example_inputs"``, ``"--inputs FILE"`` or
    ``"inferred from first layer <path> (<Type>)"``. ``keywords`` names the last
    ``len(keywords)`` tensors, which are passed as keyword arguments (a dict in
    ``--inputs FILE``): the call is ``model(*positional, **dict(zip(keywords, rest)))``, see
    :func:`keyword_call`.
    """

    source: str
    keywords: tuple[str, ...]

    def __new__(
        cls, tensors: Sequence[torch.Tensor], source: str = "", keywords: Sequence[str] = ()
    ) -> ProbeInputs:
        obj = super().__new__(cls, tuple(tensors))
        obj.source = source
        obj.keywords = tuple(keywords)
        return obj

    def __getnewargs__(self) -> tuple[tuple[torch.Tensor, ...], str, tuple[str, ...]]:
        return (tuple(self), self.source, self.keywords)  # copy and pickle

    @property
    def names(self) -> list[str | None]:
        """Per tensor: its keyword, or ``None`` for a positional input."""
        positional = len(self) - len(self.keywords)
        return [None] * positional + list(self.keywords)


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
    if "," in name:
        raise InittuiError(
            f"--input-dtype {spec!r} names several dtypes where one is expected; "
            "give one dtype, e.g. float32"
        )
    if name in INTEGER_DTYPES:
        return INTEGER_DTYPES[name]
    name = DTYPE_ALIASES.get(name, name)
    if name in DTYPES:
        return DTYPES[name]
    raise InittuiError(
        f"unknown --input-dtype {spec!r}; use float32, float64, bfloat16, float16, "
        "long (int64) or int32"
    )


def parse_input_dtypes(spec: str) -> list[torch.dtype]:
    """``--input-dtype float32,long``: one dtype, or one per input (comma-separated)."""
    parts = [part.strip() for part in spec.split(",")]
    if not all(parts):
        raise InittuiError(
            f"--input-dtype {spec!r} has an empty entry; give one dtype, or one per input "
            "separated by commas, e.g. float32,long"
        )
    return [parse_input_dtype(part) for part in parts]


def _dtypes_for(
    dtypes: Sequence[torch.dtype] | None, count: int, what: str
) -> list[torch.dtype | None]:
    """One dtype per input: a single ``--input-dtype`` applies to all of them, a list must
    have one entry per input."""
    if not dtypes:
        return [None] * count
    if len(dtypes) == 1:
        return [dtypes[0]] * count
    if len(dtypes) != count:
        raise InittuiError(
            f"--input-dtype gives {len(dtypes)} dtypes for {count} input(s) ({what}); "
            "give one dtype for all, or one per input in order"
        )
    return list(dtypes)


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


def ids_high(model: nn.Module) -> int:
    """Integer inputs are drawn in ``[0, ids_high)``: the first layer's ``num_embeddings``
    when it is an Embedding, else the smallest ``num_embeddings`` of the model's Embeddings
    (valid for every one of them), else :data:`DEFAULT_IDS_HIGH`."""
    found = first_layer(model)
    first = _embedding_size(found[1]) if found else None
    if first:
        return first
    sizes = [
        int(m.num_embeddings)
        for m in model.modules()
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.num_embeddings > 0
    ]
    return min(sizes) if sizes else DEFAULT_IDS_HIGH


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
        high = ids_high if ids_high else DEFAULT_IDS_HIGH
        if dtype in (torch.int8, torch.uint8, torch.int16):
            high = min(high, torch.iinfo(dtype).max + 1)
        tensor = torch.randint(0, high, tuple(shape), generator=generator, dtype=dtype)
    return tensor.to(device)


def infer_inputs(
    model: nn.Module,
    input_dtype: str | torch.dtype | Sequence[torch.dtype] | None = None,
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
    ``input_dtype`` is one dtype, or a list with one per inferred input.
    """
    if isinstance(input_dtype, str):
        dtypes = parse_input_dtypes(input_dtype)
    elif isinstance(input_dtype, torch.dtype):
        dtypes = [input_dtype]
    else:
        dtypes = list(input_dtype or [])
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
    first_ids = _embedding_size(layer)
    default = torch.int64 if first_ids else _model_float_dtype(model)
    chosen = [d or default for d in _dtypes_for(dtypes, len(shapes), "inferred")]
    high = first_ids or ids_high(model)
    generator = torch.Generator().manual_seed(int(seed))
    tensors = [
        _draw(shape, dtype, generator, high, dev)
        for shape, dtype in zip(shapes, chosen, strict=True)
    ]
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
    inputs_file: str | None = None,
) -> ProbeInputs:
    """The probe's inputs, in order of preference (their ``.source`` says which):

    0. ``inputs_file`` (``--inputs FILE``): real data read by
       :func:`inittui.core.probe.input_files.read_inputs_file` (a tensor, a tuple/list of
       positional tensors, or a dict of keyword tensors), cast as ``example_inputs`` are.
    1. ``--input-shape`` strings, one per positional input. Floats are standard normal;
       integer dtypes are ids drawn in ``[0, ids_high(model))`` (:func:`ids_high`: the
       Embedding's ``num_embeddings``, else ``[0, 2)``); with no ``--input-dtype`` a model
       whose first layer is an Embedding gets long ids, any other the model's float dtype.
    2. The model file's ``example_inputs(model)`` (or ``example_inputs()``), called with the
       global RNG seeded by ``seed``; floating results are cast to the model's float dtype
       (or to a float ``--input-dtype``), integer ones to an integer ``--input-dtype``.
    3. :func:`infer_inputs` from the first layer (``batch``, default 8, applies here only).

    ``input_dtype`` is one dtype for every input or a comma-separated list with one per
    input (``float32,long``). Everything is drawn from a ``torch.Generator`` seeded by
    ``seed`` and moved to the model's device.
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
    dtypes = parse_input_dtypes(input_dtype) if input_dtype else []
    if inputs_file and input_shapes:
        raise InittuiError("give --inputs FILE or --input-shape, not both")
    if inputs_file:
        from inittui.core.probe.input_files import read_inputs_file

        tensors, keywords = read_inputs_file(inputs_file, model)
        cast = _cast_given(tensors, model, dtypes, f"--inputs {Path(inputs_file).name}", device)
        return ProbeInputs(cast, f"--inputs {inputs_file}", keywords)
    if input_shapes:
        return _inputs_from_shapes(model, input_shapes, dtypes, seed, device)
    if fn is not None:
        tensors = _as_tensor_tuple(_call_example_inputs(fn, model, label, seed), label)
        cast = _cast_given(tensors, model, dtypes, "example_inputs", device)
        return ProbeInputs(cast, "example_inputs")
    return infer_inputs(model, dtypes, batch, seed, device)


def _inputs_from_shapes(
    model: nn.Module,
    input_shapes: Sequence[str],
    dtypes: Sequence[torch.dtype],
    seed: int,
    device: torch.device,
) -> ProbeInputs:
    """``--input-shape`` inputs (see :func:`make_inputs`, case 1)."""
    shapes = [parse_input_shape(text) for text in input_shapes]
    found = first_layer(model)
    default = torch.int64 if _embedding_size(found[1] if found else None) else None
    default = default or _model_float_dtype(model)
    chosen = [d or default for d in _dtypes_for(dtypes, len(shapes), "--input-shape")]
    _check_input_size(shapes, chosen, device)
    high = ids_high(model)
    generator = torch.Generator().manual_seed(int(seed))
    tensors = [
        _draw(shape, dtype, generator, high, device)
        for shape, dtype in zip(shapes, chosen, strict=True)
    ]
    return ProbeInputs(tensors, "--input-shape")


def _cast_given(
    tensors: Sequence[torch.Tensor],
    model: nn.Module,
    dtypes: Sequence[torch.dtype],
    what: str,
    device: torch.device,
) -> list[torch.Tensor]:
    """Inputs the user gave (``example_inputs``, ``--inputs FILE``) on ``device``: floating
    ones in the model's float dtype, or the ``--input-dtype`` given. One ``--input-dtype``
    for all casts only the inputs of its kind (a float dtype the floats, an integer one the
    ids); one per input must match each input's kind (floats stay floats, ids stay ids)."""
    float_dtype = _model_float_dtype(model)
    per_input = len(dtypes) > 1
    out = []
    for i, (tensor, dtype) in enumerate(
        zip(tensors, _dtypes_for(dtypes, len(tensors), what), strict=True)
    ):
        is_float = tensor.is_floating_point()
        if dtype is not None and per_input and dtype.is_floating_point != is_float:
            raise InittuiError(
                f"input {i} of {what} is {_dtype_name(tensor.dtype)}, --input-dtype says "
                f"{_dtype_name(dtype)}; floats and ids are not converted into each other"
            )
        target = tensor.dtype
        if is_float:
            target = dtype if dtype is not None and dtype.is_floating_point else float_dtype
        elif dtype is not None and not dtype.is_floating_point:
            target = dtype
        out.append(tensor.detach().to(device=device, dtype=target))
    return out


def _check_input_size(
    shapes: Sequence[tuple[int, ...]], dtypes: Sequence[torch.dtype], device: torch.device
) -> None:
    """Refuse ``--input-shape`` inputs larger than the device's whole memory (torch would
    fail to allocate them with a message about the allocator)."""
    nbytes = sum(
        math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        for shape, dtype in zip(shapes, dtypes, strict=True)
    )
    dtype = dtypes[0]
    memory = device_memory(device)
    if memory is not None and nbytes > memory:
        shown = " ".join(",".join(map(str, shape)) for shape in shapes)
        raise InittuiError(
            f"--input-shape {shown} is {_size_text(nbytes)} of {_dtype_name(dtype)} input, more "
            f"than the {_size_text(memory)} {device.type} has; pass a smaller shape"
        )


def describe_inputs(inputs: Sequence[torch.Tensor]) -> str:
    """``"(8, 64) float32 from example_inputs"``, ``"(8, 16) int64 inferred from first layer
    emb (Embedding)"``; several inputs are joined with ``; ``."""
    parts = [f"{tuple(t.shape)} {_dtype_name(t.dtype)}" for t in inputs]
    text = "; ".join(parts) if parts else "no inputs"
    source = getattr(inputs, "source", None)
    if not source:
        return text
    return f"{text} {source}" if source.startswith("inferred from") else f"{text} from {source}"
