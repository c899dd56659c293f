"""PyTorch's own initialization per module type: :func:`default_init` and the ``default``
row of the scheme table, which resolves to a concrete row per parameter."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import nn

from inittui.core.schemes.row import Scheme
from inittui.core.schemes.stats import fans
from inittui.core.schemes.table import SCHEMES


def _rule(name: str, args: Mapping[str, object] | None = None) -> tuple[str, dict]:
    return name, SCHEMES[name].validate(args or {})


def _symmetric_uniform(bound: float) -> tuple[str, dict]:
    if bound == 0:
        return _rule("uniform", {"a": 0.0, "b": 0.0})
    return _rule("uniform", {"a": -bound, "b": bound})


def _torch_owned(module: nn.Module, method: str) -> bool:
    """Whether ``module``'s class runs torch's own ``method`` (not a user override)."""
    function = getattr(type(module), method, None)
    return function is not None and getattr(function, "__module__", "").startswith("torch.")


_NORM_TYPES: tuple[type, ...] = tuple(
    t
    for t in (
        getattr(nn.modules.batchnorm, "_NormBase", None),  # BatchNorm*, InstanceNorm*, Sync
        nn.LayerNorm,
        nn.GroupNorm,
        getattr(nn, "RMSNorm", None),
    )
    if t is not None
)
_CONV_BASE: type = nn.modules.conv._ConvNd
_NON_DYNAMICALLY_QUANTIZABLE = nn.modules.linear.NonDynamicallyQuantizableLinear


def default_init(module: nn.Module, param_name: str) -> tuple[str, dict] | None:
    """What PyTorch's own ``reset_parameters`` does to ``module``'s parameter ``param_name``.

    Returns ``(scheme, args)`` from the table (args normalized, every key present), or
    None when the module type is unknown, overrides torch's reset, or the parameter is
    not materialized yet (lazy modules). ``param_name`` is relative to ``module`` and may
    be dotted: a module that re-initializes its children's parameters gets its say first
    (``nn.Transformer`` sets every parameter with 2+ dims to xavier_uniform;
    ``nn.MultiheadAttention`` zeros ``out_proj.bias``), then the child that owns the
    parameter is asked.

    - Linear, Conv*d, ConvTranspose*d: weight kaiming_uniform(a=sqrt(5)), i.e.
      U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias uniform(-bound, bound) with
      bound = 1/sqrt(fan_in of the weight) (0 when fan_in is 0).
    - Bilinear: weight and bias uniform(+-1/sqrt(in1_features)).
    - Embedding, EmbeddingBag: normal(0, 1) (the padding row is left to the caller).
    - BatchNorm*, InstanceNorm*, LayerNorm, GroupNorm, RMSNorm: weight ones, bias zeros.
    - RNN, LSTM, GRU and their cells: every parameter uniform(+-1/sqrt(hidden_size)).
    - MultiheadAttention: in_proj_weight and q/k/v_proj_weight xavier_uniform,
      in_proj_bias and out_proj.bias zeros, bias_k/bias_v xavier_normal; out_proj.weight
      is Linear's. Asked directly, the ``NonDynamicallyQuantizableLinear`` out_proj
      answers zeros for its bias, since torch creates that class only inside
      MultiheadAttention, which always zeros it.
    - PReLU: constant(module.init), 0.25 by default.
    """
    head, dot, rest = param_name.partition(".")
    if dot:
        composite = _composite_default(module, param_name)
        if composite is not None:
            return composite
        child = module._modules.get(head)
        if child is None:
            raise ValueError(f"{type(module).__name__} has no submodule {head!r} ({param_name})")
        return default_init(child, rest)

    param = module._parameters.get(param_name)
    if param is None:
        raise ValueError(f"{type(module).__name__} has no parameter {param_name!r}")
    if isinstance(param, nn.parameter.UninitializedParameter):
        return None
    return _own_default(module, param_name)


def _composite_default(module: nn.Module, param_name: str) -> tuple[str, dict] | None:
    """Rules by which a module re-initializes its descendants' parameters."""
    if isinstance(module, nn.Transformer) and _torch_owned(module, "_reset_parameters"):
        param = module.get_parameter(param_name)
        if param.dim() > 1 and not isinstance(param, nn.parameter.UninitializedParameter):
            return _rule("xavier_uniform")
    if (
        isinstance(module, nn.MultiheadAttention)
        and _torch_owned(module, "_reset_parameters")
        and param_name == "out_proj.bias"
    ):
        return _rule("zeros")
    return None


def _own_default(module: nn.Module, name: str) -> tuple[str, dict] | None:
    """Rules for a parameter the module registered itself."""
    if isinstance(module, nn.MultiheadAttention):
        if not _torch_owned(module, "_reset_parameters"):
            return None
        if name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            return _rule("xavier_uniform")
        if name == "in_proj_bias":
            return _rule("zeros")
        if name in ("bias_k", "bias_v"):
            return _rule("xavier_normal")
        return None

    if isinstance(module, (nn.Linear, _CONV_BASE)):
        if not _torch_owned(module, "reset_parameters"):
            return None
        if name == "weight":
            return _rule("kaiming_uniform", {"a": math.sqrt(5)})
        if name == "bias":
            if isinstance(module, _NON_DYNAMICALLY_QUANTIZABLE):
                return _rule("zeros")
            fan = fans(module.weight.shape)
            fan_in = fan[0] if fan is not None else 0
            return _symmetric_uniform(1 / math.sqrt(fan_in) if fan_in > 0 else 0.0)
        return None

    if isinstance(module, nn.Bilinear):
        if not _torch_owned(module, "reset_parameters"):
            return None
        return _symmetric_uniform(1 / math.sqrt(module.weight.size(1)))

    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        if not _torch_owned(module, "reset_parameters") or name != "weight":
            return None
        return _rule("normal", {"mean": 0.0, "std": 1.0})

    if isinstance(module, _NORM_TYPES):
        if not _torch_owned(module, "reset_parameters"):
            return None
        return {"weight": _rule("ones"), "bias": _rule("zeros")}.get(name)

    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        if not _torch_owned(module, "reset_parameters"):
            return None
        hidden = module.hidden_size
        return _symmetric_uniform(1.0 / math.sqrt(hidden) if hidden > 0 else 0.0)

    if isinstance(module, nn.PReLU):
        if not _torch_owned(module, "reset_parameters") or name != "weight":
            return None
        return _rule("constant", {"val": float(getattr(module, "init", 0.25))})

    return None


def _resolve_default(module: nn.Module, local_name: str) -> tuple[Scheme, dict] | None:
    found = default_init(module, local_name)
    return None if found is None else (SCHEMES[found[0]], found[1])


def _norm_note(types: Sequence[type]) -> str | None:
    if any(issubclass(t, _NORM_TYPES) for t in types):
        return "Norm layers: default gives weight 1, bias 0."
    return None


DEFAULT = Scheme(
    name="default",
    summary="PyTorch's own reset_parameters per module type (norm: weight 1, bias 0)",
    args=(),
    uses_generator=False,
    dtypes="any",
    resolver=_resolve_default,
    scope_note=_norm_note,
)
"""The ``default`` row: what each module's own ``reset_parameters`` does."""
