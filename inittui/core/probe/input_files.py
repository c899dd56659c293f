"""``--inputs FILE``: a real batch for the preview, the check and LSUV, read from ``.pt``/
``.pth`` (``torch.load(weights_only=True)``) or ``.safetensors``, and the call with keyword
inputs (:func:`keyword_call`).

What a file may hold:

* ``.pt``/``.pth``: a tensor (one input), a tuple or list of tensors (positional inputs,
  in order), or a dict of tensors keyed by the names of ``forward``'s parameters (keyword
  inputs: ``model(**inputs)``).
* ``.safetensors`` (always a name -> tensor table): keys ``"0"``, ``"1"``, ... (all of them
  consecutive integers from 0) are positional inputs in that order; any other keys are
  keyword inputs.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.infiles import require_regular_file
from inittui.core.probe.results import _dtype_name

SUFFIXES = (".pt", ".pth", ".safetensors")
SAVE_HINT = "save a tensor, a tuple of tensors or a dict of tensors with torch.save"


def read_inputs_file(path: str, model: nn.Module) -> tuple[list[torch.Tensor], tuple[str, ...]]:
    """The tensors of ``--inputs FILE`` (on the CPU, positional ones first) and the names of
    the keyword ones (the last ``len(keywords)`` tensors). Every problem is an
    :class:`InittuiError` of one line that names the file."""
    file = Path(path).expanduser()
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise InittuiError(
            f"--inputs {file.name}: unknown file type {suffix or '(no extension)'!r}; "
            "use .pt, .pth or .safetensors"
        )
    if not file.exists():
        raise InittuiError(f"--inputs {path!r} not found; check the path")
    if file.is_dir():
        raise InittuiError(f"--inputs {path!r} is a folder; give a .pt or .safetensors file")
    require_regular_file(file, "--inputs", "give a .pt or .safetensors file")
    if suffix == ".safetensors":
        positional, keywords = _from_safetensors(file)
    else:
        positional, keywords = _from_pt(file)
    tensors = [*positional, *keywords.values()]
    for i, tensor in enumerate(tensors):
        _check_tensor(tensor, _label(i, len(positional), tuple(keywords)), file.name)
    _check_keywords(model, len(positional), tuple(keywords), file.name)
    return tensors, tuple(keywords)


def _label(index: int, positional: int, keywords: Sequence[str]) -> str:
    return f"input {index}" if index < positional else f"input {keywords[index - positional]!r}"


def _from_pt(file: Path) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    try:
        loaded = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        text = str(exc)
        if "Unsupported global" in text or "WeightsUnpickler error" in text:
            name = text.split("GLOBAL", 1)[1].split()[0] if "GLOBAL" in text else None
            what = f"pickled Python objects ({name})" if name else "pickled Python objects"
            raise InittuiError(
                f"--inputs {file.name} holds {what} that torch.load(weights_only=True) "
                f"refuses; {SAVE_HINT}"
            ) from exc
        first = text.strip().splitlines()[0].split(". ", 1)[0] if text.strip() else ""
        raise InittuiError(
            f"cannot read --inputs {file.name}: {type(exc).__name__}"
            f"{': ' + first if first else ''}; the file is corrupt or not a torch file"
        ) from exc
    if isinstance(loaded, torch.Tensor):
        return [loaded], {}
    if isinstance(loaded, (tuple, list)) and loaded:
        for i, item in enumerate(loaded):
            if not isinstance(item, torch.Tensor):
                raise InittuiError(
                    f"--inputs {file.name}: item {i} is a {type(item).__name__}, not a "
                    f"tensor; {SAVE_HINT}"
                )
        return list(loaded), {}
    if isinstance(loaded, dict) and loaded:
        for key, item in loaded.items():
            if not isinstance(key, str) or not isinstance(item, torch.Tensor):
                raise InittuiError(
                    f"--inputs {file.name}: entry {key!r} is a {type(item).__name__}, not a "
                    f"tensor under a parameter name; {SAVE_HINT}"
                )
        return [], dict(loaded)
    raise InittuiError(
        f"--inputs {file.name} holds {_what(loaded)}, not a tensor, a tuple/list of tensors "
        f"or a dict of tensors; {SAVE_HINT}"
    )


def _what(value: object) -> str:
    if isinstance(value, (tuple, list, dict)) and not value:
        return f"an empty {type(value).__name__}"
    return f"a {type(value).__name__}"


def _from_safetensors(file: Path) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        table = load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InittuiError(
            f"cannot read --inputs {file.name} as safetensors ({str(exc).splitlines()[0]}); "
            "the file is corrupt or not a safetensors file"
        ) from exc
    if not table:
        raise InittuiError(f"--inputs {file.name} holds no tensors; {SAVE_HINT}")
    if sorted(table) == [str(i) for i in range(len(table))]:
        return [table[str(i)] for i in range(len(table))], {}
    return [], table


def _check_tensor(tensor: torch.Tensor, label: str, name: str) -> None:
    """A model input: a dense floating, integer or bool tensor."""
    dtype = tensor.dtype
    if tensor.layout != torch.strided or dtype.is_complex or tensor.is_quantized:
        raise InittuiError(
            f"--inputs {name}: {label} is a {_dtype_name(dtype)} {str(tensor.layout)} tensor; "
            "inputs must be dense floating point, integer (ids) or bool tensors"
        )


def _check_keywords(
    model: nn.Module, positional: int, keywords: tuple[str, ...], name: str
) -> None:
    """Keyword inputs must be names ``forward`` takes (unless it takes ``**kwargs``)."""
    if not keywords:
        return
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [key for key in keywords if key not in names]
    if unknown:
        raise InittuiError(
            f"--inputs {name}: {type(model).__name__}.forward takes no argument "
            f"{unknown[0]!r} (it takes {', '.join(names) or 'no named arguments'}); "
            "name the tensors after forward's parameters, or save a tuple for positional inputs"
        )


@contextlib.contextmanager
def keyword_call(model: nn.Module, inputs: Sequence[torch.Tensor]) -> Iterator[None]:
    """While inside, ``model(*inputs)`` calls ``model(*positional, **keywords)`` for
    :class:`~inittui.core.probe.inputs.ProbeInputs` with ``keywords`` (a forward pre-hook on
    the root, removed on the way out); for anything else it does nothing. The probe and LSUV
    call the model with the tensors as one tuple (a backward pass replaces them by copies
    that require grad), so the split happens at the call."""
    names = tuple(getattr(inputs, "keywords", ()))
    if not names:
        yield
        return
    count = len(inputs)

    def split(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if len(args) != count or kwargs:
            return None
        cut = count - len(names)
        return tuple(args[:cut]), dict(zip(names, args[cut:], strict=True))

    handle = model.register_forward_pre_hook(split, with_kwargs=True, prepend=True)
    try:
        yield
    finally:
        handle.remove()
