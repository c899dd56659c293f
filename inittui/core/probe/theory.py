"""The theory column: the output std of chains of Linear/Conv layers and elementwise
activations predicted from the weights actually in the model (He et al. 2015 / Glorot &
Bengio 2010 style variance propagation, made exact per feature), for comparison with the
measured values (:func:`theory_std`)."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from inittui.core.probe.results import ProbeResult

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
