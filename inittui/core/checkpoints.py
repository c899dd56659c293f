"""``--load CKPT``: read a state dict from ``.pt``/``.pth`` (``torch.load(weights_only=True)``,
also a dict holding ``state_dict`` or ``model``) or ``.safetensors``, and load it into a
model with one-line errors that name what does not match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.infiles import require_regular_file
from inittui.core.tree import _is_uninitialized


def read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """Read a state_dict from .pt/.pth (weights_only) or .safetensors."""
    file = Path(path).expanduser()
    suffix = file.suffix.lower()
    if suffix not in (".pt", ".pth", ".bin", ".ckpt", ".safetensors"):
        raise InittuiError(
            f"unknown checkpoint type {suffix or '(no extension)'!r} for {file.name}; "
            "use .pt, .pth or .safetensors"
        )
    if not file.exists():
        raise InittuiError(f"checkpoint {path!r} not found; check the path given to --load")
    if file.is_dir():
        raise InittuiError(
            f"checkpoint {path!r} is a folder; give a .pt, .pth or .safetensors file"
        )
    require_regular_file(file, "checkpoint", "give a .pt, .pth or .safetensors file")
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(file), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise InittuiError(
                f"cannot read {file.name} as safetensors ({str(exc).splitlines()[0]}); "
                "the file is corrupt or not a safetensors file"
            ) from exc
    try:
        loaded = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        text = str(exc)
        if "Unsupported global" in text:
            global_name = text.split("GLOBAL", 1)[1].split()[0] if "GLOBAL" in text else "?"
            raise InittuiError(
                f"{file.name} holds pickled Python objects ({global_name}) that safe loading "
                "refuses; re-save it with torch.save(model.state_dict(), path) or use "
                ".safetensors"
            ) from exc
        if "WeightsUnpickler error" in text:
            detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
            raise InittuiError(
                f"cannot read checkpoint {file.name} ({detail}); the file is corrupt or not a "
                "torch checkpoint"
            ) from exc
        first = text.strip().splitlines()[0] if text.strip() else ""
        first = first.split(". ", 1)[0]  # torch's zip errors go on for several sentences
        raise InittuiError(
            f"cannot read checkpoint {file.name}: {type(exc).__name__}"
            f"{': ' + first if first else ''}; the file is corrupt or not a "
            "torch checkpoint"
        ) from exc
    return _extract_state_dict(loaded, file.name)


def _extract_state_dict(loaded: object, label: str) -> dict[str, torch.Tensor]:
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "module", "weights"):
            inner = loaded.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                return dict(inner)
        tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) == len(loaded):
            return tensors
        if tensors:
            return tensors
    raise InittuiError(
        f"{label} holds no state_dict (a mapping of names to tensors, or a dict with a "
        "'state_dict' or 'model' entry); save one with torch.save(model.state_dict(), path)"
    )


def _brief(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def load_checkpoint(model: nn.Module, path: str, on_meta: bool = False) -> None:
    """Load weights into ``model``, reporting missing/unexpected keys and shape mismatches."""
    state = read_checkpoint(path)
    expected = model.state_dict(keep_vars=True)
    # Strip a DistributedDataParallel "module." prefix when that makes the keys match.
    if (
        state
        and all(k.startswith("module.") for k in state)
        and not any(k.startswith("module.") for k in expected)
    ):
        state = {k[len("module.") :]: v for k, v in state.items()}
    # Tied names: a checkpoint may store one tensor for several names (safetensors does).
    groups: dict[int, list[str]] = {}
    for name, tensor in expected.items():
        groups.setdefault(id(tensor), []).append(name)
    for names in groups.values():
        present = [n for n in names if n in state]
        if present:
            for n in names:
                state.setdefault(n, state[present[0]])
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state
        and not _is_uninitialized(expected[k])
        and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_brief([_shaped(k, expected[k]) for k in missing])}")
    if unexpected:
        problems.append(f"unexpected keys: {_brief([_shaped(k, state[k]) for k in unexpected])}")
    if mismatched:
        problems.append(f"shape mismatch: {_brief(mismatched, 3)}")
    if problems:
        raise InittuiError(
            f"checkpoint {Path(path).name} does not match the model: {'; '.join(problems)}; "
            "check --arg/--kwargs or the checkpoint"
        )
    try:
        model.load_state_dict(state, strict=True, assign=on_meta)
    except RuntimeError as exc:
        raise InittuiError(f"loading {Path(path).name} failed: {_detail(exc)}") from exc


def _shaped(name: str, tensor: object) -> str:
    """``name (4, 3)``: a key with the shape of its tensor."""
    shape = getattr(tensor, "shape", None)
    return name if shape is None else f"{name} {tuple(shape)}"


def _detail(exc: BaseException) -> str:
    """torch's ``Error(s) in loading state_dict for Net:`` says nothing; the line after it
    names the key."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        return f"{lines[0].rstrip(':')}: {lines[1]}"
    return lines[0] if lines else type(exc).__name__
