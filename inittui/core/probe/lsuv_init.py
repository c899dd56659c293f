"""Layer-sequential unit-variance init (Mishkin & Matas, "All you need is a good init",
ICLR 2016): :func:`lsuv` starts from orthogonal weights and zero biases, rescales each
Linear/Conv weight in forward order until its output variance is within ``tol`` of the target
(``|Var - target_std**2| < tol``, the paper's criterion), and returns the plan that
reproduces it without data, with the inputs it was calibrated on."""

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
from inittui.core.probe.input_files import keyword_call
from inittui.core.probe.input_report import input_infos, inputs_line
from inittui.core.probe.moments import _main_tensor
from inittui.core.probe.record import (
    _attention_fastpath_off,
    _check_not_meta,
    _forward,
    _model_mode,
)
from inittui.core.probe.results import CancelFn, InputInfo, ProgressFn, _finite, _one_line
from inittui.core.tree import build_tree

LSUV_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
PAPER = "Mishkin & Matas 2016"


@dataclass
class LSUVLayer:
    path: str
    type: str
    iterations: int  # how many times the weight was rescaled
    std: float  # the output std after the last rescaling
    scale: float  # total factor applied to the orthogonal weight
    converged: bool  # |variance - target_std**2| < tol
    first_variance: float = math.nan  # the output variance before any rescaling

    @property
    def variance(self) -> float:
        return self.std * self.std

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "iterations": self.iterations,
            "std": _finite(self.std),
            "variance": _finite(self.variance),
            "first_variance": _finite(self.first_variance),
            "scale": _finite(self.scale),
            "converged": self.converged,
        }


@dataclass
class LSUVResult:
    """Per-layer LSUV outcome, the plan that reproduces it, and the initialized copy;
    ``inputs`` and ``inputs_source`` say what it was calibrated on, ``bias_types`` which
    layer types' biases the plan sets to zeros."""

    layers: list[LSUVLayer]
    plan: Plan
    model: nn.Module = field(repr=False)
    target_std: float = 1.0
    tol: float = 0.1
    inputs: list[InputInfo] = field(default_factory=list)
    inputs_source: str | None = None
    bias_types: tuple[str, ...] = ()

    @property
    def target_variance(self) -> float:
        return self.target_std * self.target_std

    @property
    def inputs_text(self) -> str:
        """``inputs: 1 from example_inputs: (8, 64) float32 mean 0.00 std 1.00``."""
        return inputs_line(self.inputs, self.inputs_source)

    @property
    def biases_text(self) -> str:
        """What the plan does with biases, for a person."""
        if not self.bias_types:
            return "biases: none to set"
        return f"biases: zeros on {', '.join(self.bias_types)} (rules of --plan on biases win)"

    def header(self) -> str:
        """The comment at the top of the plan file LSUV writes."""
        return (
            f"# LSUV ({PAPER}): orthogonal weights rescaled until |Var - "
            f"{self.target_variance:g}| < {self.tol:g} per layer\n"
            f"# calibrated on {self.inputs_text}\n# {self.biases_text}\n"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_std": self.target_std,
            "target_variance": self.target_variance,
            "tol": self.tol,
            "criterion": "variance",
            "inputs": [info.to_dict() for info in self.inputs],
            "inputs_source": self.inputs_source,
            "biases": list(self.bias_types),
            "layers": [layer.to_dict() for layer in self.layers],
            "rules": [rule.to_toml_dict() for rule in self.plan.rules],
        }


class _StopForward(BaseException):
    """Raised by an LSUV hook once the layer's output is measured: the rest of the
    forward is not needed. A BaseException so a model's ``except Exception`` passes it."""


def _forward_order(model: nn.Module, inputs: Sequence[torch.Tensor]) -> list[str]:
    order: list[str] = []
    handles = []
    for path, module in model.named_modules():
        if isinstance(module, LSUV_TYPES):

            def hook(mod: nn.Module, args: Any, out: Any, path: str = path) -> None:
                if path not in order:
                    order.append(path)

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), keyword_call(model, inputs):
            _forward(model, tuple(inputs))
    finally:
        for handle in handles:
            handle.remove()
    return order


def _layer_std(model: nn.Module, module: nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    """The std of ``module``'s output on its first call in ``model(*inputs)``."""
    captured: list[float] = []

    def hook(mod: nn.Module, args: Any, out: Any) -> None:
        tensor, _ = _main_tensor(out)
        if tensor is not None:
            captured.append(float(tensor.detach().float().std()))
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad(), keyword_call(model, inputs):
            _forward(model, tuple(inputs))
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
    """Layer-sequential unit-variance init (Mishkin & Matas 2016) on a deep copy of ``model``.

    1. Every Linear/Conv1d/Conv2d/Conv3d weight gets an orthogonal init and every bias of
       those layers zeros, through the plan machinery: ``Rule(select="type:<T>",
       params="bias", scheme="zeros")`` rules go before ``plan``'s rules (so a rule of
       ``plan`` on biases wins), ``Rule(select="type:<T>", params="weight",
       scheme="orthogonal")`` rules after them; the plan is resolved and applied, so the
       matrices come from the per-parameter generators.
    2. For each such layer in forward order, the forward pass runs (no_grad, eval mode
       unless ``train_mode``) up to that layer and its output variance ``v = s**2`` (``s``
       the sample std) is measured; while ``|v - target_std**2| >= tol`` and fewer than
       ``max_iter`` rescalings were made, the weight is set to ``orthogonal * total`` with
       ``total *= target_std / s`` (the paper's ``W / sqrt(Var)`` for a target of 1).

    The returned plan is the bias rules, the input plan, the orthogonal type rules (whose
    ``note`` names the inputs LSUV was calibrated on) and one rule per layer
    ``Rule(select=<path>, params="weight", scheme="orthogonal", scale=<total>)``; applied to
    a fresh model it gives exactly the weights of ``result.model`` without any data.
    ``inputs`` may be :class:`~inittui.core.probe.inputs.ProbeInputs` with keyword inputs.
    """
    if target_std <= 0 or tol <= 0 or max_iter < 1:
        raise InittuiError(
            "LSUV needs target_std > 0, tol > 0 and max_iter >= 1, got "
            f"target_std={target_std:g}, tol={tol:g}, max_iter={max_iter}"
        )
    _check_not_meta(model)
    infos = input_infos(inputs)
    source = getattr(inputs, "source", None) or None
    work = _copy_for_lsuv(model)
    calibrated_on = f"LSUV ({PAPER}) calibrated on {inputs_line(infos, source)}"
    start_plan, bias_types = _with_lsuv_rules(work, plan or Plan(), calibrated_on)
    apply_plan(work, resolve_plan(start_plan, work, build_tree(work)), cancel=cancel)

    modules = dict(work.named_modules())
    layers: list[LSUVLayer] = []
    with _model_mode(work, train_mode), _attention_fastpath_off(work):
        order = _forward_order(work, inputs)
        for done, path in enumerate(order):
            if cancel is not None and cancel():
                raise CancelledError(f"LSUV cancelled after {done} of {len(order)} layers")
            layers.append(_rescale(work, path, modules[path], inputs, target_std, tol, max_iter))
            if progress is not None:
                progress(done + 1, len(order))
    layer_rules = tuple(
        Rule(
            select=layer.path,
            params="weight",
            scheme="orthogonal",
            scale=layer.scale,
            note=f"LSUV: output variance {layer.variance:.4g} (target {target_std**2:g}, "
            f"tol {tol:g}) after {layer.iterations} rescaling(s)",
        )
        for layer in layers
    )
    final = dataclasses.replace(start_plan, rules=(*start_plan.rules, *layer_rules))
    return LSUVResult(
        layers=layers,
        plan=final,
        model=work,
        target_std=target_std,
        tol=tol,
        inputs=infos,
        inputs_source=source,
        bias_types=bias_types,
    )


def _copy_for_lsuv(model: nn.Module) -> nn.Module:
    try:
        return copy.deepcopy(model)
    except MemoryError:
        raise InittuiError("not enough memory to copy the model for LSUV") from None
    except Exception as exc:  # noqa: BLE001
        raise InittuiError(
            f"LSUV needs a copy of the model, which failed: {_one_line(exc)}"
        ) from exc


def _with_lsuv_rules(model: nn.Module, base: Plan, note: str) -> tuple[Plan, tuple[str, ...]]:
    """``base`` between LSUV's zero-bias rules (before it) and its orthogonal weight rules
    (after it), one each per LSUV layer type present in ``model`` (bias rules only for types
    with a bias); also the names of the types whose biases are set."""
    present: list[str] = []
    with_bias: list[str] = []
    for module in model.modules():
        for kind in LSUV_TYPES:
            if isinstance(module, kind):
                if kind.__name__ not in present:
                    present.append(kind.__name__)
                bias = getattr(module, "bias", None)
                if isinstance(bias, torch.Tensor) and kind.__name__ not in with_bias:
                    with_bias.append(kind.__name__)
    bias_rules = tuple(
        Rule(
            select=f"type:{name}",
            params="bias",
            scheme="zeros",
            note=f"LSUV: biases start at zero ({PAPER})",
        )
        for name in with_bias
    )
    type_rules = tuple(
        Rule(select=f"type:{name}", params="weight", scheme="orthogonal", note=note)
        for name in present
    )
    rules = (*bias_rules, *base.rules, *type_rules)
    return dataclasses.replace(base, rules=rules), tuple(with_bias)


def _rescale(
    model: nn.Module,
    path: str,
    module: nn.Module,
    inputs: Sequence[torch.Tensor],
    target_std: float,
    tol: float,
    max_iter: int,
) -> LSUVLayer:
    """Rescale ``module``'s orthogonal weight until its output variance is within ``tol``
    of ``target_std**2`` (at most ``max_iter`` times)."""
    weight = module.weight
    with torch.no_grad():
        original = weight.detach().clone()
    target_variance = target_std * target_std
    total, iterations = 1.0, 0
    std = _layer_std(model, module, inputs)
    first_variance = std * std

    def off(std: float) -> bool:
        return abs(std * std - target_variance) >= tol

    while math.isfinite(std) and std > 0 and off(std) and iterations < max_iter:
        total *= target_std / std
        with torch.no_grad():
            weight.copy_(original * total)
        iterations += 1
        std = _layer_std(model, module, inputs)
    converged = math.isfinite(std) and not off(std)
    return LSUVLayer(path, type(module).__name__, iterations, std, total, converged, first_variance)
