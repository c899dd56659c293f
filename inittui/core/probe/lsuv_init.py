"""Layer-sequential unit-variance init (Mishkin & Matas 2015, "All you need is a good
init"): :func:`lsuv` rescales orthogonal weights layer by layer until each output has the
target std, and returns the plan that reproduces it without data."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.errors import CancelledError, InittuiError
from inittui.core.plan import Plan, Rule, resolve_plan
from inittui.core.probe.moments import _main_tensor
from inittui.core.probe.record import (
    _attention_fastpath_off,
    _check_not_meta,
    _forward,
    _model_mode,
)
from inittui.core.probe.results import CancelFn, ProgressFn, _finite, _one_line
from inittui.core.tree import build_tree

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
    work = _copy_for_lsuv(model)
    orthogonal_plan = _with_orthogonal_rules(work, plan if plan is not None else Plan())
    apply_plan(work, resolve_plan(orthogonal_plan, work, build_tree(work)), cancel=cancel)

    modules = dict(work.named_modules())
    layers: list[LSUVLayer] = []
    with _model_mode(work, train_mode), _attention_fastpath_off(work):
        order = _forward_order(work, tensors)
        for done, path in enumerate(order):
            if cancel is not None and cancel():
                raise CancelledError(f"LSUV cancelled after {done} of {len(order)} layers")
            layers.append(_rescale(work, path, modules[path], tensors, target_std, tol, max_iter))
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


def _copy_for_lsuv(model: nn.Module) -> nn.Module:
    try:
        return copy.deepcopy(model)
    except MemoryError:
        raise InittuiError("not enough memory to copy the model for LSUV") from None
    except Exception as exc:  # noqa: BLE001
        raise InittuiError(
            f"LSUV needs a copy of the model, which failed: {_one_line(exc)}"
        ) from exc


def _with_orthogonal_rules(model: nn.Module, base: Plan) -> Plan:
    """``base`` and one orthogonal weight rule per LSUV layer type present in ``model``."""
    present = []
    for module in model.modules():
        for kind in LSUV_TYPES:
            if isinstance(module, kind) and kind.__name__ not in present:
                present.append(kind.__name__)
    type_rules = tuple(
        Rule(select=f"type:{name}", params="weight", scheme="orthogonal") for name in present
    )
    return dataclasses.replace(base, rules=(*base.rules, *type_rules))


def _rescale(
    model: nn.Module,
    path: str,
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    target_std: float,
    tol: float,
    max_iter: int,
) -> LSUVLayer:
    """Rescale ``module``'s orthogonal weight until its output std is within ``tol`` of
    ``target_std`` (at most ``max_iter`` times)."""
    weight = module.weight
    with torch.no_grad():
        original = weight.detach().clone()
    total, iterations = 1.0, 0
    std = _layer_std(model, module, inputs)
    while math.isfinite(std) and std > 0 and abs(std - target_std) >= tol and iterations < max_iter:
        total *= target_std / std
        with torch.no_grad():
            weight.copy_(original * total)
        iterations += 1
        std = _layer_std(model, module, inputs)
    converged = math.isfinite(std) and abs(std - target_std) < tol
    return LSUVLayer(path, type(module).__name__, iterations, std, total, converged)
