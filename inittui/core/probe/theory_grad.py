"""The backward theory column: the std of each layer's output gradient predicted from the
loss and the weights (He et al. 2015's backward analysis, ``Var[dx] = fan_out Var[w]
Var[dy]``, made exact for the actual weights and, for convolutions, per position), walked
from the model's output back along the chain the forward theory followed
(:func:`grad_theory_std`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from inittui.core.probe.results import LayerRecord, ProbeResult
from inittui.core.probe.theory import (
    _ADAPTIVE_AVG,
    _ELEMENTWISE,
    _MAX_ELEMENTS,
    _NORMS,
    _WEIGHT_BLOCK,
    _activation_moments,
    _align,
    _batch_statistics,
    _channel_stats,
    _expand,
    _f64,
    _is_identity,
    _pooled,
    _State,
    _window_sizes,
    _work_device,
)

_Incoming = dict[int, tuple[_State | None, list[int] | None]]


def _zeros(var: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(var)


def _linear_back(module: nn.Linear, var: torch.Tensor, out: list[int]) -> torch.Tensor:
    """``Var[dx_i] = sum_o W_oi^2 Var[dy_o]`` per input feature."""
    weight = module.weight.detach()
    if var.numel() == 1:
        g = var.reshape(1).expand(weight.shape[0])
    else:
        g = var.expand(out[1:]).reshape(-1, weight.shape[0]).mean(0)
    device = _work_device(weight)
    dtype = torch.float32 if weight.device.type == "mps" else torch.float64
    g = g.to(device, dtype)
    rows = max(1, _WEIGHT_BLOCK // max(1, weight.shape[1]))
    total = torch.zeros(weight.shape[1], dtype=dtype, device=device)
    for start in range(0, weight.shape[0], rows):
        block = weight[start : start + rows].to(device, dtype)
        total += g[start : start + rows] @ (block * block)
    return total.double().cpu()


def _conv_back(
    module: nn.modules.conv._ConvNd, var: torch.Tensor, full: list[int], out: list[int]
) -> torch.Tensor | None:
    """``Var[dx]`` at every input position: the adjoint of the module's convolution with
    ``W^2`` applied to ``Var[dy]`` (so padding, stride and dilation are exact)."""
    nd = module.weight.dim() - 2
    sample, out_sample = list(full[-(nd + 1) :]), list(out[-(nd + 1) :])
    if max(math.prod(sample), math.prod(out_sample)) > _MAX_ELEMENTS or module.transposed:
        return None
    _, g = _expand((_zeros(var), var), out_sample)
    device = _work_device(module.weight)
    w = module.weight.detach().to(device, torch.float64)
    x = torch.zeros([1, *sample], dtype=torch.float64, device=device, requires_grad=True)
    with torch.enable_grad():
        y = module._conv_forward(x, w * w, None)
        (grad,) = torch.autograd.grad(y, x, g[None].to(device))
    return grad[0].clamp_min(0).cpu()


def _avg_pool_back(
    module: nn.Module, var: torch.Tensor, full: list[int], out: list[int]
) -> torch.Tensor | None:
    """An adaptive average pool: ``Var[dx_i] = sum over the windows p holding i of
    Var[dy_p] / n_p^2``, through the pool's own adjoint."""
    nd = int(type(module).__name__[-2])
    sample, out_sample = list(full[-(nd + 1) :]), list(out[-(nd + 1) :])
    if math.prod(sample) > _MAX_ELEMENTS:
        return None
    _, g = _expand((_zeros(var), var), out_sample)
    g = g / _window_sizes(module, sample[1:], out_sample[1:])
    x = torch.zeros([1, *sample], dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(module(x), x, g[None])
    return grad[0]


def _norm_back(
    module: nn.Module, var: torch.Tensor, incoming: _State, full: list[int], train: bool
) -> torch.Tensor:
    """BatchNorm/InstanceNorm: ``Var[dx] = (weight^2 / (v + eps)) Var[dy]``, times
    ``1 - 2/M`` with batch or instance statistics (the gradient loses its projection on the
    ``M`` values' mean and normalized input)."""
    channels = full[1]
    shape = [channels] + [1] * max(0, len(full) - 2)
    weight = getattr(module, "weight", None)
    gamma = (
        torch.ones(shape, dtype=torch.float64) if weight is None else _f64(weight).reshape(shape)
    )
    if not _batch_statistics(module, train):
        scale2 = gamma * gamma / (_f64(module.running_var).reshape(shape) + module.eps)
        return var * scale2
    _, _, _, v_c = _channel_stats(incoming, full)
    spatial = math.prod(full[2:])
    count = (
        spatial if isinstance(module, nn.modules.instancenorm._InstanceNorm) else full[0] * spatial
    )
    return var * gamma * gamma / (v_c + module.eps) * max(0.0, 1 - 2 / max(1, count))


def _layer_norm_back(
    module: nn.LayerNorm, var: torch.Tensor, incoming: _State, full: list[int]
) -> torch.Tensor:
    """LayerNorm: ``Var[dx] = (weight^2 / (v + eps)) Var[dy] (1 - 2/D)``."""
    shape = list(module.normalized_shape)
    size = math.prod(shape)
    gamma = (
        torch.ones(shape, dtype=torch.float64)
        if module.weight is None
        else _f64(module.weight).reshape(shape)
    )
    v = float(_pooled(_align(incoming, full))[1])
    return var * gamma * gamma / (v + module.eps) * max(0.0, 1 - 2 / size)


def _step_back(
    module: nn.Module,
    var: torch.Tensor,
    incoming: _State | None,
    full: list[int],
    out: list[int],
    train: bool,
) -> torch.Tensor | None:
    """``Var`` of the gradient of ``module``'s input from that of its output; ``None`` when
    the module is not modelled."""
    if isinstance(module, nn.Linear):
        return _linear_back(module, var, out)
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv_back(module, var, full, out)
    if isinstance(module, _ELEMENTWISE + _NORMS + (nn.LayerNorm,)) and incoming is None:
        return None  # needs the forward theory's input
    if isinstance(module, _ELEMENTWISE):
        mean, pre_var = _align(incoming, full)
        _, slope2 = _activation_moments(module, mean, pre_var, derivative=True)
        return var * slope2
    if _is_identity(module):
        return var
    if isinstance(module, _ADAPTIVE_AVG):
        return _avg_pool_back(module, var, full, out)
    if isinstance(module, nn.Flatten):
        _, g = _expand((_zeros(var), var), list(out[1:]))
        if g.numel() != math.prod(full[1:]):
            return var.mean().reshape(1)
        return g.reshape(full[1:])
    if isinstance(module, _NORMS):
        return _norm_back(module, var, incoming, full, train)
    if isinstance(module, nn.LayerNorm):
        return _layer_norm_back(module, var, incoming, full)
    return None


def _output_leaf(leaves: list[tuple[int, LayerRecord]], result: ProbeResult) -> int | None:
    """The position in ``leaves`` of the last leaf whose output is the model's main output
    (same shape and the very same statistics as the root's), or ``None``."""
    roots = [r for r in result.layers if r.path == "" and r.call == 0]
    if not roots or not leaves:
        return None
    root = roots[0]
    position = len(leaves) - 1
    record = leaves[position][1]
    same = (record.out_shape, record.out_mean, record.out_std) == (
        root.out_shape,
        root.out_mean,
        root.out_std,
    )
    return position if same and record.out_std is not None else None


def grad_theory_std(
    modules: dict[str, nn.Module], result: ProbeResult, incoming: _Incoming
) -> dict[tuple[str, int], float]:
    """Set ``grad_theory_std`` on the leaf records of the chain that ends at the model's
    output: the predicted std of the gradient of each layer's output.

    The loss is ``(output * R).sum()`` with ``R`` standard normal, so the output's gradient
    has variance 1. Walking back, a layer whose input was the previous leaf's output gives
    that leaf's output gradient, assuming (as He et al. do) weights, gradients and
    pre-activations independent:

    * Linear: ``Var[dx_i] = sum_o W_oi^2 Var[dy_o]`` (``fan_out Var[w] Var[dy]`` for
      i.i.d. weights); Conv: the same per input position, through the adjoint of the
      module's own convolution with ``W^2`` (border inputs feed fewer outputs).
    * Elementwise activations: ``Var[dx] = E[phi'(z)^2] Var[dy]`` with ``z`` the forward
      theory's pre-activation (``1/2`` for ReLU at zero mean, ``~1`` for tanh near 0).
    * Identity, dropout (off), Flatten pass it; BatchNorm/InstanceNorm/LayerNorm scale it
      by ``weight^2 / (v + eps)`` (with batch statistics also ``1 - 2/M``).

    The walk stops at a layer it cannot model, at a layer whose input came from elsewhere,
    or at an activation or norm the forward theory had no input for. A leaf output
    also consumed elsewhere (a residual branch) gets more gradient than predicted.
    """
    leaves = [(i, r) for i, r in enumerate(result.layers) if r.leaf]
    position = _output_leaf(leaves, result)
    predicted: dict[tuple[str, int], float] = {}
    if position is None:
        return predicted
    var: torch.Tensor | None = torch.ones(1, dtype=torch.float64)
    while position >= 0 and var is not None:
        index, record = leaves[position]
        if not bool(torch.isfinite(var).all()):
            break
        record.grad_theory_std = math.sqrt(float(var.mean()))
        predicted[(record.path, record.call)] = record.grad_theory_std
        state, full = incoming.get(index, (None, None))
        module = modules.get(record.path)
        if record.input_link != "previous" or full is None or module is None:
            break
        try:
            with torch.no_grad():
                var = _step_back(module, var, state, full, record.out_shape, result.train_mode)
        except (RuntimeError, ValueError, TypeError, IndexError):
            var = None
        if var is not None:
            try:
                torch.broadcast_shapes(var.shape, tuple(full))
            except RuntimeError:
                var = None
        position -= 1
    return predicted
