"""The theory columns: the output std (:func:`theory_std`) and, after a backward pass, the
output-gradient std of chains of layers, predicted from the weights actually in the model
(He et al. 2015 / Glorot & Bengio 2010 variance propagation, made exact per feature and, for
convolutions, per position), for comparison with the measured values.

A prediction is never taken from a measurement: the forward chain starts at the model's input
(its measured mean and std: the data, not a layer) or at a layer that sets its own scale (a
normalization layer using batch or instance statistics, LayerNorm, GroupNorm, an Embedding),
and stops at a layer it cannot model; the backward chain starts at the loss's known gradient
(``R``, standard normal) and stops at a layer it cannot model.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from inittui.core.probe.results import LayerRecord, ProbeResult

ELEMENTWISE = (
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
"""Elementwise activations whose effect on a feature's mean and variance the theory
computes from the module itself."""
_ELEMENTWISE = ELEMENTWISE
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
_CHUNK = 4096  # features per block of the numerical integration
_MAX_ELEMENTS = 1 << 21  # per-sample size of a tracked convolution state
_WEIGHT_BLOCK = 1 << 22

# (mean, var) of one sample's features, broadcastable to the layer's full (batched) shape;
# a 1-element state is the same for every feature. The backward state is (None, var).
_State = tuple[torch.Tensor, torch.Tensor]


@functools.lru_cache(maxsize=1)
def _gauss_rule(points: int = 401, span: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite Simpson nodes and weights for E[f(z)], z ~ N(0, 1), on [-span, span]."""
    z = torch.linspace(-span, span, points, dtype=torch.float64)
    w = torch.ones(points, dtype=torch.float64)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w = w * torch.exp(-0.5 * z * z)
    return z, w / w.sum()


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float64)


def _work_device(weight: torch.Tensor) -> torch.device:
    return torch.device("cpu") if weight.device.type == "mps" else weight.device


def _scalar_state(mean: float | None, std: float | None) -> _State | None:
    if mean is None or std is None or not (math.isfinite(mean) and math.isfinite(std)):
        return None
    return torch.tensor([mean], dtype=torch.float64), torch.tensor([std * std], dtype=torch.float64)


def _pooled(state: _State) -> _State:
    """One mean and variance over all features (each counted once: broadcasting repeats
    every feature equally often)."""
    mean, var = state
    m = mean.mean()
    second = (var + mean * mean).mean()
    return m.reshape(1), (second - m * m).clamp_min(0).reshape(1)


def _pooled_std(state: _State) -> float:
    return math.sqrt(float(_pooled(state)[1]))


def _align(state: _State, full: list[int] | None) -> _State:
    """``state`` made broadcastable to the batched shape ``full``: as it is, reshaped to one
    sample's shape, or pooled to one feature."""
    mean, var = state
    if full is None or mean.numel() == 1:
        return state
    try:
        if list(torch.broadcast_shapes(mean.shape, tuple(full))) == list(full):
            return state
    except RuntimeError:
        pass
    sample = full[1:]
    if mean.numel() == math.prod(sample) and len(sample) > 0:
        return mean.reshape(sample), var.reshape(sample)
    return _pooled(state)


def _expand(state: _State, sample: list[int]) -> _State:
    """The state as full tensors of one sample's shape."""
    mean, var = _align(state, [1, *sample])
    if mean.numel() == 1:
        mean, var = mean.reshape(()), var.reshape(())
    return mean.expand(sample).contiguous(), var.expand(sample).contiguous()


def _features_last(state: _State, full: list[int], size: int) -> _State:
    """Mean and variance per last-dim feature (a Linear's inputs), pooled over the rest."""
    mean, var = _align(state, full)
    if mean.numel() == 1:
        return mean.expand(size), var.expand(size)
    mean, var = mean.expand(full[1:]), var.expand(full[1:])
    if mean.shape[-1] != size:
        m, v = _pooled((mean, var))
        return m.expand(size), v.expand(size)
    mean, second = mean.reshape(-1, size), (var + mean * mean).reshape(-1, size)
    m = mean.mean(0)
    return m, (second.mean(0) - m * m).clamp_min(0)


# --------------------------------------------------------------------------- forward


def _linear(module: nn.Linear, state: _State, full: list[int]) -> _State:
    """``E[y_o] = sum_i W_oi E[x_i] + b_o``, ``Var(y_o) = sum_i W_oi^2 Var(x_i)``, on the
    weight's device in row blocks of at most ~4M elements (a vocabulary head needs no copy)."""
    weight = module.weight.detach()
    mean, var = _features_last(state, full, weight.shape[1])
    device = _work_device(weight)
    dtype = torch.float32 if weight.device.type == "mps" else torch.float64
    mean, var = mean.to(device, dtype), var.to(device, dtype)
    rows = max(1, _WEIGHT_BLOCK // max(1, weight.shape[1]))
    means, variances = [], []
    for start in range(0, weight.shape[0], rows):
        block = weight[start : start + rows].to(device, dtype)
        means.append(block @ mean)
        variances.append((block * block) @ var)
    out_mean, out_var = torch.cat(means).double().cpu(), torch.cat(variances).double().cpu()
    if module.bias is not None:
        out_mean = out_mean + _f64(module.bias)
    return out_mean, out_var


def _conv(module: nn.modules.conv._ConvNd, state: _State, full: list[int]) -> _State | None:
    """Mean and variance at every output position: the module's own convolution (padding,
    stride, dilation, groups) of the input's mean map with ``W`` and of its variance map
    with ``W^2``, so a border output sums only the inputs it really sees."""
    nd = module.weight.dim() - 2
    sample = list(full[-(nd + 1) :])
    if math.prod(sample) > _MAX_ELEMENTS or module.transposed:
        return None
    mean, var = _expand(state, sample)
    device = _work_device(module.weight)
    w = module.weight.detach().to(device, torch.float64)
    bias = None if module.bias is None else module.bias.detach().to(device, torch.float64)
    out_mean = module._conv_forward(mean[None].to(device), w, bias)[0]
    out_var = module._conv_forward(var[None].to(device), w * w, None)[0]
    return out_mean.cpu(), out_var.clamp_min(0).cpu()


_ADAPTIVE_AVG = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)


def _window_sizes(module: nn.Module, sample: list[int], out: list[int]) -> torch.Tensor:
    """How many inputs each output of an adaptive average pool averages (``out`` the
    output's spatial shape): per dim ``ceil((p + 1) in / out) - floor(p in / out)``."""
    sizes = torch.ones((), dtype=torch.float64)
    for size_in, size_out in zip(sample, out, strict=True):
        p = torch.arange(size_out, dtype=torch.float64)
        count = torch.ceil((p + 1) * size_in / size_out) - torch.floor(p * size_in / size_out)
        sizes = sizes[..., None] * count
    return sizes


def _avg_pool(module: nn.Module, state: _State, full: list[int], out: list[int]) -> _State | None:
    """An adaptive average pool: the mean map pooled, the variance map pooled and divided
    by each window's size once more (``Var(mean of n) = mean of Var / n`` for independent
    inputs)."""
    nd = int(type(module).__name__[-2])
    sample = list(full[-(nd + 1) :])
    if math.prod(sample) > _MAX_ELEMENTS:
        return None
    mean, var = _expand(state, sample)
    counts = _window_sizes(module, sample[1:], list(out[-nd:]))
    return module(mean[None])[0], module(var[None])[0] / counts


def _relu_moments(mean: torch.Tensor, var: torch.Tensor, slope: float) -> tuple[torch.Tensor, ...]:
    """``E[f]``, ``E[f^2]`` and ``E[f'^2]`` of ``f = max(z, 0) + slope * min(z, 0)`` for
    ``z ~ N(mean, var)``, in closed form."""
    s = var.clamp_min(1e-300).sqrt()
    a = mean / s
    big_phi = 0.5 * (1 + torch.erf(a / math.sqrt(2)))
    small_phi = torch.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    pos1 = mean * big_phi + s * small_phi  # E[max(z, 0)]
    pos2 = (mean * mean + var) * big_phi + mean * s * small_phi
    neg1 = pos1 - mean  # E[max(-z, 0)]
    neg2 = (mean * mean + var) - pos2
    first = pos1 - slope * neg1
    return first, pos2 + slope * slope * neg2, big_phi + slope * slope * (1 - big_phi)


def _activation_moments(
    module: nn.Module, mean: torch.Tensor, var: torch.Tensor, derivative: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E[f(z)], Var f(z))``, or with ``derivative`` ``(E[f(z)], E[f'(z)^2])``, per feature
    for ``z ~ N(mean, var)``: closed form for ReLU/LeakyReLU, else numerical integration
    (Simpson, 401 points over +-8 std) of the module's own function, in blocks."""
    if type(module) in (nn.ReLU, nn.LeakyReLU):
        slope = float(getattr(module, "negative_slope", 0.0))
        first, second, slope2 = _relu_moments(mean, var, slope)
        return first, slope2 if derivative else (second - first * first).clamp_min(0)
    z, weights = _gauss_rule()
    flat_mean, flat_sd = mean.reshape(-1), var.clamp_min(0).sqrt().reshape(-1)
    firsts, seconds = [], []
    for start in range(0, flat_mean.numel(), _CHUNK):
        m, s = flat_mean[start : start + _CHUNK], flat_sd[start : start + _CHUNK]
        y = (m[:, None] + s[:, None] * z[None, :]).requires_grad_(derivative)
        with torch.enable_grad() if derivative else torch.no_grad():
            f = module.forward(y.clone())
            if derivative:
                (slope,) = torch.autograd.grad(f.sum(), y)
                f = f.detach()
        first = f @ weights
        firsts.append(first)
        seconds.append((slope * slope) @ weights if derivative else (f * f) @ weights - first**2)
    first, second = torch.cat(firsts).reshape(mean.shape), torch.cat(seconds).reshape(mean.shape)
    return first, second if derivative else second.clamp_min(0)


def _channel_stats(state: _State, full: list[int]) -> tuple[torch.Tensor, ...]:
    """One sample's mean and variance maps ``(C, *spatial)`` and, per channel, the mean and
    the variance pooled over the positions (what batch statistics see)."""
    mean, var = _expand(state, list(full[1:]))
    dims = tuple(range(1, mean.dim()))
    m_c = mean.mean(dims, keepdim=True) if dims else mean
    second = (var + mean * mean).mean(dims, keepdim=True) if dims else var + mean * mean
    return mean, var, m_c, (second - m_c * m_c).clamp_min(0)


def _affine(module: nn.Module, size: int, shape: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The norm's weight and bias (1 and 0 without them), shaped ``shape``."""
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    gamma = torch.ones(size, dtype=torch.float64) if weight is None else _f64(weight)
    beta = torch.zeros(size, dtype=torch.float64) if bias is None else _f64(bias)
    return gamma.reshape(shape), beta.reshape(shape)


def _batch_statistics(module: nn.Module, train: bool) -> bool:
    """Whether a BatchNorm/InstanceNorm normalizes by the statistics of the data it sees."""
    running = getattr(module, "running_var", None)
    return train or not module.track_running_stats or running is None


def _norm(module: nn.Module, state: _State | None, full: list[int], train: bool) -> _State | None:
    """BatchNorm/InstanceNorm per channel; with batch or instance statistics the output is
    ``weight * (x - m_c) / sqrt(v_c + eps) + bias`` whatever came in (an unknown input is
    taken as already normalized: mean ``bias``, std ``|weight|``)."""
    channels = full[1] if len(full) > 1 else full[0]
    shape = [channels] + [1] * max(0, len(full) - 2)
    gamma, beta = _affine(module, channels, shape)
    if not _batch_statistics(module, train):
        if state is None:
            return None
        mean, var, _, _ = _channel_stats(state, full)
        running_mean = _f64(module.running_mean).reshape(shape)
        scale = gamma / (_f64(module.running_var).reshape(shape) + module.eps).sqrt()
        return (mean - running_mean) * scale + beta, var * scale * scale
    if state is None:
        return beta, gamma * gamma
    mean, var, m_c, v_c = _channel_stats(state, full)
    scale = gamma / (v_c + module.eps).sqrt()
    return (mean - m_c) * scale + beta, var * scale * scale


def _layer_norm(module: nn.Module, state: _State | None, full: list[int]) -> _State | None:
    """LayerNorm/GroupNorm: mean ``bias`` and variance ``weight^2 * v / (v + eps)`` per
    feature (``v`` the input's pooled variance, taken as 1 for an unknown input)."""
    pooled_var = 1.0 if state is None else float(_pooled(state)[1])
    shrink = pooled_var / (pooled_var + module.eps) if pooled_var > 0 else 0.0
    if isinstance(module, nn.GroupNorm):
        shape = [module.num_channels] + [1] * max(0, len(full) - 2)
        gamma, beta = _affine(module, module.num_channels, shape)
    else:
        shape = list(module.normalized_shape)
        gamma, beta = _affine(module, math.prod(shape), shape)
    return beta, gamma * gamma * shrink


def _embedding(module: nn.Embedding) -> _State | None:
    """Per feature, the mean and variance over the table's rows (ids drawn uniformly; the
    zeroed padding row, if any, counts as one row)."""
    if module.max_norm is not None:
        return None
    weight = module.weight.detach()
    rows = max(1, _WEIGHT_BLOCK // max(1, weight.shape[1]))
    total = torch.zeros(weight.shape[1], dtype=torch.float64)
    square = torch.zeros(weight.shape[1], dtype=torch.float64)
    for start in range(0, weight.shape[0], rows):
        block = weight[start : start + rows].to(_work_device(weight), torch.float64)
        total += block.sum(0).cpu()
        square += (block * block).sum(0).cpu()
    mean = total / weight.shape[0]
    return mean, (square / weight.shape[0] - mean * mean).clamp_min(0)


def _fresh(module: nn.Module, full: list[int], train: bool) -> _State | None:
    """The output of a layer that sets its own scale whatever its input; else ``None``."""
    if isinstance(module, nn.Embedding):
        return _embedding(module)
    if isinstance(module, _NORMS):
        return _norm(module, None, full, train)
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
        return _layer_norm(module, None, full)
    return None


def _is_identity(module: nn.Module) -> bool:
    """Identity, and dropout (off in both preview modes)."""
    return isinstance(module, (nn.Identity, nn.modules.dropout._DropoutNd)) or (
        "Dropout" in type(module).__name__
    )


def _propagate(
    module: nn.Module, state: _State, full: list[int], out: list[int], train: bool
) -> _State | None:
    """Mean and variance of ``module``'s output for independent inputs with the given
    per-feature mean/variance (``full`` the input's batched shape, ``out`` the output's);
    ``None`` when the module is not modelled."""
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            return _linear(module, state, full)
        if isinstance(module, nn.modules.conv._ConvNd):
            return _conv(module, state, full)
        if isinstance(module, _ELEMENTWISE):
            mean, var = _align(state, full)
            return _activation_moments(module, mean, var)
        if _is_identity(module):
            return state
        if isinstance(module, _ADAPTIVE_AVG):
            return _avg_pool(module, state, full, out)
        if isinstance(module, nn.Flatten):
            mean, var = _expand(state, list(full[1:]))
            if mean.numel() != math.prod(out[1:]):
                return _pooled(state)
            return mean.reshape(out[1:]), var.reshape(out[1:])
        if isinstance(module, _NORMS):
            return _norm(module, state, full, train)
        if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            return _layer_norm(module, state, full)
    return None


def _fits(state: _State, out: list[int] | None) -> bool:
    """Finite, and shaped like the output the layer really gave."""
    if out is None or not bool(torch.isfinite(state[0]).all() and torch.isfinite(state[1]).all()):
        return False
    try:
        return list(torch.broadcast_shapes(state[0].shape, tuple(out))) == list(out)
    except RuntimeError:
        return False


def _forward_step(
    module: nn.Module | None,
    record: LayerRecord,
    incoming: _State | None,
    full: list[int] | None,
    train: bool,
) -> _State | None:
    if module is None or record.out_shape is None:
        return None
    try:
        with torch.no_grad():
            if incoming is None or full is None:
                out = _fresh(module, record.out_shape, train)
            else:
                out = _propagate(module, incoming, full, record.out_shape, train)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return None
    return out if out is not None and _fits(out, record.out_shape) else None


def theory_std(model: nn.Module, result: ProbeResult) -> dict[tuple[str, int], float]:
    """Predict the output std of leaf layers in chains, from the weights in ``model``.

    Walking the leaf calls in order, a layer continues the chain when its first input is
    the model's first input or the previous leaf's output, unchanged (``input_link``). The
    signal is tracked as a mean and a variance per feature (per channel and position for
    convolutions), assuming independent inputs:

    * Linear (``y = W x + b``): ``E[y_o] = sum_i W_oi E[x_i] + b_o`` and
      ``Var(y_o) = sum_i W_oi^2 Var(x_i)`` -- the He/Glorot analysis
      ``Var(y) = fan_in Var(w) E[x^2]`` made exact for the actual weights.
    * Conv: the same at every output position, through the module's own convolution, so
      zero padding is exact (a border output sums fewer inputs), as are stride, dilation
      and groups. Transposed convolutions, and convolutions over more than 2M values per
      sample, are not modelled (no theory rather than an approximate one).
    * Elementwise activations (ReLU, LeakyReLU, Tanh, GELU, SiLU, Sigmoid, ...):
      ``E[phi(y)]`` and ``E[phi(y)^2]`` for ``y ~ N(mean, var)`` per feature, in closed form
      for ReLU/LeakyReLU and by numerical integration (Simpson, 401 points over +-8 std) of
      the module's own function otherwise.
    * Identity and dropout (off in the preview) pass the signal; Flatten reshapes it; an
      adaptive average pool averages its windows (independent inputs: variance / size);
      BatchNorm/InstanceNorm (running or batch statistics), LayerNorm and GroupNorm map it
      affinely.

    The chain starts from the model's input (its measured mean and std) or at a layer that
    sets its own scale (BatchNorm/InstanceNorm with batch statistics, LayerNorm, GroupNorm:
    mean ``bias``, std ``|weight|``; an Embedding: its table's statistics per feature). It
    is never re-anchored on a measurement: after a layer it cannot model, rows have no
    theory until such a layer, so a mismatch shows where the independence assumption breaks.
    The predicted std is set as ``theory_std`` on the records (``None`` elsewhere) and
    returned by ``(path, call)``. After a backward pass, ``grad_theory_std`` is predicted too
    (:func:`inittui.core.probe.theory_grad.grad_theory_std`).
    """
    modules = dict(model.named_modules())
    predicted: dict[tuple[str, int], float] = {}
    state: _State | None = None
    previous: LayerRecord | None = None
    incoming_states: dict[int, tuple[_State | None, list[int] | None]] = {}
    first_input = result.inputs[0].shape if result.inputs else None
    for index, record in enumerate(result.layers):
        record.theory_std = None
        record.grad_theory_std = None
        if not record.leaf:
            continue
        if record.input_link == "input":
            incoming, full = _scalar_state(result.input_mean, result.input_std), first_input
        elif record.input_link == "previous" and previous is not None:
            incoming, full = state, previous.out_shape
        else:
            incoming, full = None, None
        incoming_states[index] = (incoming, full)
        module = modules.get(record.path)
        state = _forward_step(module, record, incoming, full, result.train_mode)
        if state is not None:
            record.theory_std = _pooled_std(state)
            predicted[(record.path, record.call)] = record.theory_std
        previous = record
    if result.loss is not None:
        from inittui.core.probe.theory_grad import grad_theory_std

        grad_theory_std(modules, result, incoming_states)
    return predicted
