"""What the probe was fed, for a person and for the JSON: per input its shape, dtype, where
it came from and its distribution (:func:`input_infos`), and the one header line
``inputs: 2 from example_inputs: (4, 32) int64 ids in [0, 999]; (4, 32) float32 mean 0.01
std 1.00`` (:func:`inputs_line`).

Integer inputs are ids (or counts, or masks): their mean and std mean nothing and are
reported as ``None`` (``null`` in the JSON); only their range is. Bool inputs report the
fraction that is true as their mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from inittui.core.probe.results import InputInfo, _dtype_name, _finite


def distribution(tensor: torch.Tensor) -> dict[str, Any]:
    """``{"kind", "mean", "std", "min", "max"}`` of one input: ``kind`` is ``"float"``,
    ``"ids"`` (integer dtypes: mean and std are ``None``) or ``"bool"`` (mean = the fraction
    that is true, std ``None``). Non-finite numbers and the statistics of an empty tensor are
    ``None``; ``std`` of fewer than 2 values too."""
    with torch.no_grad():
        values = tensor.detach()
        if values.numel() == 0 or values.device.type == "meta":
            kind = _kind(values.dtype)
            return {"kind": kind, "mean": None, "std": None, "min": None, "max": None}
        if values.dtype == torch.bool:
            mean = float(values.float().mean())
            return {"kind": "bool", "mean": mean, "std": None, "min": None, "max": None}
        if not values.is_floating_point():
            low, high = int(values.min()), int(values.max())
            return {"kind": "ids", "mean": None, "std": None, "min": low, "max": high}
        floats = values.float()
        std = float(floats.std()) if floats.numel() > 1 else math.nan
        return {
            "kind": "float",
            "mean": _finite(float(floats.mean())),
            "std": _finite(std),
            "min": _finite(float(floats.min())),
            "max": _finite(float(floats.max())),
        }


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    return "float" if dtype.is_floating_point else "ids"


def input_infos(inputs: Sequence[torch.Tensor]) -> list[InputInfo]:
    """One :class:`InputInfo` per input tensor: shape, dtype, the inputs' ``source``, the
    keyword it is passed as (``None`` for a positional input) and its :func:`distribution`."""
    source = getattr(inputs, "source", None) or None
    names = getattr(inputs, "names", None) or [None] * len(inputs)
    return [
        InputInfo(
            [int(s) for s in t.shape],
            _dtype_name(t.dtype),
            source=source,
            keyword=name,
            distribution=distribution(t),
        )
        for t, name in zip(inputs, names, strict=True)
    ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def describe_info(info: InputInfo) -> str:
    """``(4, 32) int64 ids in [0, 999]`` or ``(4, 32) float32 mean 0.01 std 1.00``, with
    ``input_ids=`` in front of a keyword input."""
    head = f"{info.keyword}=" if info.keyword else ""
    text = f"{head}{tuple(info.shape)} {info.dtype}"
    dist = info.distribution or {}
    kind = dist.get("kind")
    if kind == "ids" and dist.get("min") is not None:
        return f"{text} ids in [{dist['min']}, {dist['max']}]"
    if kind == "bool" and dist.get("mean") is not None:
        return f"{text} {dist['mean']:.0%} true"
    if kind == "float":
        return f"{text} mean {_number(dist.get('mean'))} std {_number(dist.get('std'))}"
    return text


def inputs_line(infos: Sequence[InputInfo], source: str | None) -> str:
    """``inputs: 2 from example_inputs: (4, 32) int64 ids in [0, 999]; (4, 32) float32
    mean 0.01 std 1.00``: how many inputs, where they came from and each one."""
    where = f" from {source}" if source else ""
    parts = "; ".join(describe_info(info) for info in infos) or "none"
    return f"inputs: {len(infos)}{where}: {parts}"
