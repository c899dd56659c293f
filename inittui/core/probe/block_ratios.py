"""``--blocks K``: what each kept block does to the signal, and its extrapolation to N blocks.

:class:`BlockMeter` hooks the kept blocks during the preview's pass and measures, per block,
the std of its input and output (the residual stream, or whatever the block passes on), the
``carry`` ``<x, y> / <x, x>`` (1 when the block adds a branch to its input: a residual
stream) and, with a backward pass, the std of the gradient at its output and its input.

:func:`extrapolate` picks one of two models from the kept blocks and says which:

* **residual** (every kept block carries its input, ``|carry - 1| < 0.1``): each block adds
  a roughly fixed variance to the stream, so ``std_N = sqrt(std_in^2 + N * d)`` with ``d``
  the mean of ``std_out^2 - std_in^2`` over the kept blocks (the gradient likewise, from
  the last block's output back to the first block's input);
* **geometric** (anything else): each block multiplies the std by ``r``, the geometric mean
  of the kept blocks' ``std_out / std_in``, so ``std_N = std_in * r^N`` (exact for identical
  linear blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

CARRY_TOLERANCE = 0.1  # |carry - 1| below this: the block adds a branch to its input


def _first_tensor(value: object) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict) or hasattr(value, "values"):
        try:
            items = list(value.values())  # type: ignore[union-attr]
        except TypeError:
            return None
        return _first_tensor(items)
    return None


def _std(tensor: torch.Tensor) -> float:
    return float(tensor.detach().double().std()) if tensor.numel() > 1 else math.nan


@dataclass
class BlockMeasure:
    """One kept block's first call: input and output std, carry, gradient std (or None)."""

    path: str
    in_std: float
    out_std: float
    carry: float | None
    grad_out_std: float | None = None
    grad_in_std: float | None = None

    @property
    def ratio(self) -> float:
        return self.out_std / self.in_std if self.in_std else math.nan

    @property
    def grad_ratio(self) -> float | None:
        if self.grad_in_std is None or not self.grad_out_std:
            return None
        return self.grad_in_std / self.grad_out_std

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "in_std": _finite(self.in_std),
            "out_std": _finite(self.out_std),
            "ratio": _finite(self.ratio),
            "carry": _finite(self.carry),
            "grad_out_std": _finite(self.grad_out_std),
            "grad_in_std": _finite(self.grad_in_std),
            "grad_ratio": _finite(self.grad_ratio),
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass
class BlockMeter:
    """Forward hooks on the kept blocks (``install``/``remove``); ``measures`` in order."""

    blocks: list[tuple[str, nn.Module]]
    measures: dict[str, BlockMeasure] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)

    def install(self) -> None:
        for path, block in self.blocks:
            self.handles.append(block.register_forward_hook(self._hook(path), with_kwargs=True))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def ordered(self) -> list[BlockMeasure]:
        return [self.measures[path] for path, _ in self.blocks if path in self.measures]

    def _hook(self, path: str):
        def hook(module, args, kwargs, output):
            if path in self.measures:  # the first call only
                return
            x = _first_tensor(args) if args else None
            x = x if x is not None else _first_tensor(kwargs)
            y = _first_tensor(output)
            if x is None or y is None:
                return
            carry = None
            if x.shape == y.shape:
                xd, yd = x.detach().double(), y.detach().double()
                denominator = float((xd * xd).sum())
                carry = float((xd * yd).sum()) / denominator if denominator else None
            measure = BlockMeasure(path, _std(x), _std(y), carry)
            self.measures[path] = measure
            if y.requires_grad:
                y.register_hook(lambda g: setattr(measure, "grad_out_std", _std(g)))
            if x.requires_grad:
                x.register_hook(lambda g: setattr(measure, "grad_in_std", _std(g)))

        return hook


@dataclass(frozen=True)
class Extrapolation:
    """The kept blocks' numbers carried to ``total`` blocks (see the module's docstring)."""

    kept: int
    total: int
    model: str  # "residual" or "geometric"
    detail: str
    std_in: float | None  # the first block's input std (measured)
    final_std: float | None  # extrapolated: after all N blocks
    grad_out: float | None  # the last kept block's output gradient std (measured)
    grad_final: float | None  # extrapolated: at the first block's input after N blocks

    @property
    def label(self) -> str:
        return f"extrapolated from {self.kept} of {self.total} blocks"

    @property
    def final_ratio(self) -> float | None:
        if self.final_std is None or not self.std_in:
            return None
        return self.final_std / self.std_in

    @property
    def grad_final_ratio(self) -> float | None:
        if self.grad_final is None or not self.grad_out:
            return None
        return self.grad_final / self.grad_out


def _residual(measures: list[BlockMeasure]) -> bool:
    return bool(measures) and all(
        m.carry is not None and abs(m.carry - 1) < CARRY_TOLERANCE for m in measures
    )


def _additive(start: float, increments: list[float], total: int) -> float:
    variance = start * start + total * sum(increments) / len(increments)
    return math.sqrt(max(variance, 0.0))


def _geometric(start: float, ratios: list[float], total: int) -> float | None:
    if not ratios or any(not (r > 0 and math.isfinite(r)) for r in ratios):
        return None
    log_r = sum(math.log(r) for r in ratios) / len(ratios)
    try:
        return start * math.exp(total * log_r)
    except OverflowError:
        return math.inf


def extrapolate(measures: list[BlockMeasure], total: int) -> Extrapolation:
    """Carry the kept blocks' ``measures`` to ``total`` blocks with the model that fits."""
    kept = len(measures)
    if not measures or not measures[0].in_std or not math.isfinite(measures[0].in_std):
        return Extrapolation(kept, total, "none", "no block input std was measured",
                             None, None, None, None)  # fmt: skip
    std_in = measures[0].in_std
    grads = [m for m in measures if m.grad_in_std is not None and m.grad_out_std]
    grad_out = grads[-1].grad_out_std if grads else None
    if _residual(measures):
        final = _additive(std_in, [m.out_std**2 - m.in_std**2 for m in measures], total)
        grad_final = (
            _additive(grad_out, [m.grad_in_std**2 - m.grad_out_std**2 for m in grads], total)
            if grads and grad_out
            else None
        )
        detail = (
            "residual stream: each block adds a fixed variance, "
            "std_N = sqrt(std_in^2 + N * mean(std_out^2 - std_in^2))"
        )
        return Extrapolation(kept, total, "residual", detail, std_in, final, grad_out,
                             grad_final)  # fmt: skip
    final = _geometric(std_in, [m.ratio for m in measures], total)
    grad_final = (
        _geometric(grad_out, [m.grad_ratio for m in grads], total) if grads and grad_out else None
    )
    detail = "geometric: each block multiplies the std by r, std_N = std_in * r^N"
    return Extrapolation(kept, total, "geometric", detail, std_in, final, grad_out, grad_final)
