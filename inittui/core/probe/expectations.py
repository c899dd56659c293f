"""What each layer call should do to the std, from its type and its actual weights, and the
references along the data flow: :func:`annotate` fills the verdict fields of a probe's
records (see :mod:`inittui.core.probe.verdicts` for the rules that read them).

Per call, with ``m``/``s`` the mean and std of the tensor it consumed:

* Linear, Conv (not transposed), transformers' ``Conv1D`` (weight stored (in, out)),
  ConvTranspose: the output's pooled variance for inputs with independent features,
  ``s^2 sum W^2 / outputs + Var_o(m rowsum_o + b_o)`` (a transposed conv's output sums
  ``1/prod(stride)`` of the taps); ``weight_ratio`` = ``sqrt(sum W^2 / outputs)``. Backward:
  ``sqrt(sum W^2 / inputs)`` (He et al. 2015: ``Var = fan_out Var(w) Var(grad)``).
* Elementwise activations (torch's and transformers' ``*Activation``): the std and the
  derivative's rms of the module's own function on ``N(m, s^2)`` (Simpson's rule).
* Dropout (off in both of the probe's modes), Identity and Flatten: 1.
* Embeddings and normalization layers (LayerNorm, GroupNorm, RMSNorm, *LayerNorm/*RMSNorm
  classes, and BatchNorm/InstanceNorm when they use batch statistics) have no ratio: they
  set a fresh reference.

Only ``torch`` and the standard library.
"""

from __future__ import annotations

import functools
import math
import re

import torch
from torch import nn

from inittui.core.probe.results import LayerRecord, ProbeResult, ResidualAdd
from inittui.core.probe.theory import ELEMENTWISE

_ELEMENTWISE = (*ELEMENTWISE, nn.PReLU)  # the theory's elementwise layers, and PReLU
_ACTIVATION_NAME = re.compile(r"(Activation$|GELU|ReLU|SiLU|Swish|Tanh$|Sigmoid$|Mish$)")
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_PASS = (nn.Identity, nn.Flatten, nn.Unflatten, *_DROPOUT)  # dropout is off in every mode
_NORM_NAME = re.compile(r"(LayerNorm|RMSNorm|GroupNorm)$")
_WEIGHT_BLOCK = 1 << 22


@functools.lru_cache(maxsize=1)
def _gauss_rule(points: int = 201, span: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite Simpson nodes and weights for E[f(z)], z ~ N(0, 1), on [-span, span]."""
    z = torch.linspace(-span, span, points, dtype=torch.float64)
    w = torch.ones(points, dtype=torch.float64)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w = w * torch.exp(-0.5 * z * z)
    return z, w / w.sum()


def is_reset(module: nn.Module, train: bool) -> str | None:
    """``"embedding"`` or ``"normalization"`` when the call sets a fresh reference."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or _NORM_NAME.search(type(module).__name__):
        return "normalization"
    if getattr(nn, "RMSNorm", None) is not None and isinstance(module, nn.RMSNorm):
        return "normalization"
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
        running = module.track_running_stats and module.running_var is not None
        return "normalization" if train or not running else None
    return None


def _weight_rows(module: nn.Module) -> tuple[torch.Tensor, int, float] | None:
    """The weight as ``(outputs, taps)`` rows, the number of input units (for the backward
    ratio) and how many of a row's taps reach one output on average (a transposed conv's
    ``1/prod(stride)``), for the layers whose weight layout is known."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.is_meta or weight.dim() < 2:
        return None
    w = weight.detach()
    if isinstance(module, nn.Linear):
        return w, w.shape[1], 1.0
    if isinstance(module, nn.modules.conv._ConvNd):
        stride = math.prod(module.stride)
        if module.transposed:  # (in, out/groups, k...): each output sums in*k/stride taps
            groups = module.groups
            per = w.reshape(groups, w.shape[0] // groups, w.shape[1], -1)
            rows = per.permute(0, 2, 1, 3).reshape(groups * w.shape[1], -1)
            return rows, w.shape[0], 1.0 / stride
        return w.reshape(w.shape[0], -1), w.shape[1] * module.groups * stride, 1.0
    if type(module).__name__ == "Conv1D" and w.dim() == 2:  # transformers: stored (in, out)
        return w.t(), w.shape[0], 1.0
    return None


def _weight_sums(rows: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``sum W^2`` and the row sums, in float64, in blocks of at most ~4M elements."""
    dtype = torch.float32 if rows.device.type == "mps" else torch.float64
    step = max(1, _WEIGHT_BLOCK // max(1, rows.shape[1]))
    # One buffer for every block, squared in place: a fresh ~32 MB block per step makes
    # glibc's heap grow by gigabytes on a 70B layer (its mmap threshold adapts upwards).
    buffer = torch.empty((min(step, rows.shape[0]), rows.shape[1]), dtype=dtype, device=rows.device)
    squares, sums = 0.0, []
    for start in range(0, rows.shape[0], step):
        block = buffer[: min(step, rows.shape[0] - start)]
        block.copy_(rows[start : start + step])
        sums.append(block.sum(1).double().cpu())
        squares += float(block.mul_(block).sum())
    return squares, torch.cat(sums)


def _linear(
    module: nn.Module, record: LayerRecord, cache: dict[int, tuple] | None = None
) -> tuple[float, float, float] | None:
    """``(expected_ratio, weight_ratio, expected_grad_ratio)`` of a layer with weights
    (its weight sums kept in ``cache`` for its next call)."""
    key = id(module)
    if cache is not None and key in cache:
        found = cache[key]
    else:
        rows = _weight_rows(module)
        found = (
            None if rows is None else (rows[0].shape[0], rows[1], rows[2], *_weight_sums(rows[0]))
        )
        if cache is not None:
            cache[key] = found
    if found is None:
        return None
    outputs, inputs, reach, squares, row_sums = found
    weight_ratio = math.sqrt(squares * reach / outputs)
    grad_ratio = math.sqrt(squares / inputs)
    expected = None
    s, m = record.in_std, record.in_mean or 0.0
    if s is not None and math.isfinite(s) and s > 0 and math.isfinite(m):
        means = m * row_sums * reach
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor) and bias.numel() == outputs:
            means = means + bias.detach().double().cpu().reshape(-1)
        spread = float(means.var(unbiased=False)) if outputs > 1 else 0.0
        expected = math.sqrt(s * s * squares * reach / outputs + spread) / s
    return expected, weight_ratio, grad_ratio  # type: ignore[return-value]


def _elementwise(module: nn.Module, record: LayerRecord) -> tuple[float, float] | None:
    """``(std ratio, derivative rms)`` of an elementwise activation on ``N(m, s^2)``."""
    s, m = record.in_std, record.in_mean or 0.0
    if s is None or not (math.isfinite(s) and s > 0 and math.isfinite(m)):
        return None
    z, weights = _gauss_rule()
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.float64
    y = (m + s * z).to(dtype).requires_grad_(True)
    try:
        with torch.enable_grad():
            f = module(y)
            (slope,) = torch.autograd.grad(f.sum(), y)
    except (RuntimeError, TypeError, ValueError):
        return None
    f, slope = f.detach().double().cpu(), slope.detach().double().cpu()
    if f.shape != z.shape:
        return None
    first, second = float(f @ weights), float((f * f) @ weights)
    return math.sqrt(max(second - first * first, 0.0)) / s, math.sqrt(float(slope**2 @ weights))


def _is_elementwise(module: nn.Module) -> bool:
    if isinstance(module, _ELEMENTWISE):
        return True
    if next(module.parameters(), None) is not None or isinstance(module, nn.MultiheadAttention):
        return False
    return bool(_ACTIVATION_NAME.search(type(module).__name__))


def expected_ratios(
    module: nn.Module, record: LayerRecord, train: bool, cache: dict[int, tuple] | None = None
) -> None:
    """Set ``expected_ratio``, ``weight_ratio`` and ``expected_grad_ratio`` of one call."""
    with torch.no_grad():
        linear = _linear(module, record, cache)
    if linear is not None:
        record.expected_ratio, record.weight_ratio, record.expected_grad_ratio = linear
        return
    if isinstance(module, _PASS):
        record.expected_ratio = record.expected_grad_ratio = 1.0
        return
    if _is_elementwise(module):
        found = _elementwise(module, record)
        if found is not None:
            record.expected_ratio, record.expected_grad_ratio = found


def annotate(model: nn.Module, result: ProbeResult) -> None:
    """Fill the verdict fields of ``result``'s leaf records and the kinds of its residual
    adds, from ``model`` (the weights probed) and what was measured."""
    modules = dict(model.named_modules())
    layers = result.layers
    resets: dict[int, str] = {}
    cache: dict[int, tuple] = {}
    for index, record in enumerate(layers):
        module = modules.get(record.path)
        if not record.leaf or module is None:
            continue
        try:
            expected_ratios(module, record, result.train_mode, cache)
        except (RuntimeError, ValueError, TypeError, IndexError):
            pass
        reset = is_reset(module, result.train_mode)
        if reset is not None:
            resets[index] = reset
    _branches(layers, result.residuals, resets)
    _references(result, resets)
    if result.loss is not None:
        _grad_references(result, resets)


def _branches(
    layers: list[LayerRecord], residuals: list[ResidualAdd], resets: dict[int, str]
) -> None:
    """Mark the calls of each residual branch, its last weighted call, and the add's kind."""
    for add in residuals:
        inside = [i for i in range(add.start, add.end) if layers[i].leaf]
        for i in inside:
            if layers[i].residual_branch is None:
                layers[i].residual_branch = add.path
        weighted = [i for i in inside if layers[i].weight_ratio is not None]
        if weighted:
            layers[weighted[-1]].branch_last = True
        after = next((i for i in range(add.end, len(layers)) if layers[i].leaf), None)
        if inside and resets.get(inside[0]) == "normalization":
            add.kind = "pre-LN"
        elif after is not None and resets.get(after) == "normalization":
            add.kind = "post-LN"


def _references(result: ProbeResult, resets: dict[int, str]) -> None:
    """Walk the calls in order: the reference each is judged against. A residual add sets
    none: its stream is judged by the residual rule, and what follows the stack keeps the
    reference that was in force before it (so a net whose blocks all shrink still shows it)."""
    layers = result.layers
    ok = result.input_std is not None and math.isfinite(result.input_std) and result.input_std > 0
    reference, reference_std = ("input", result.input_std) if ok else (None, None)
    for index, record in enumerate(layers):
        if not record.leaf:
            continue
        out = record.out_std
        fresh = out is not None and math.isfinite(out) and out > 0
        if index in resets and fresh:
            reference = f"{record.type} {record.path or '(root)'} output, a fresh reference"
            reference_std = out
        if record.residual_branch is not None:
            continue  # judged by its add; keeps reference None
        if reference is None:
            record.reference, record.reference_std = "none", None
        else:
            record.reference, record.reference_std = reference, reference_std


def _grad_references(result: ProbeResult, resets: dict[int, str]) -> None:
    """Walk the calls backward from the output: the gradient reference of each."""
    layers = result.layers
    root = next((r for r in layers if r.path == "" and r.grad_std), None)
    reference = root.grad_std if root is not None else 1.0
    for index in range(len(layers) - 1, -1, -1):
        record = layers[index]
        if not record.leaf:
            continue
        if record.residual_branch is None and record.grad_std is not None:
            record.grad_reference_std = reference
        incoming = record.in_grad_std
        if index in resets and incoming is not None and math.isfinite(incoming) and incoming > 0:
            reference = incoming
