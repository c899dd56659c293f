"""Helpers that the printed init code may call, beside ``torch.nn.init``.

Each helper is a top-level function that uses only ``torch`` (expected as a global, as in
an exported script) and imports anything else it needs (``math``) inside its body, so that
:func:`helper_source` can copy its source verbatim into a standalone script. Nothing here
depends on the rest of inittui. Names start with an underscore so that they do not clash
with a user's names in a script.

The helpers exist where calling ``torch.nn.init`` directly would fail or would not be
reproducible:

- ``_orthogonal_``: ``torch.nn.init.orthogonal_`` needs a QR factorization, which torch does
  not implement for float16/bfloat16 (``"geqrf_cpu" not implemented for 'Half'``), and it
  writes through ``tensor.view_as``, which fails on a non-contiguous tensor.
- ``_sparse_``: ``torch.nn.init.sparse_`` draws the zero pattern from the global RNG
  (``torch.randperm(rows)`` without the generator), so a per-parameter generator alone
  does not reproduce it.
- ``_variance_scaling_``: torch has no ``variance_scaling_``; the helper is JAX's
  definition drawn with torch's own ``trunc_normal_``/``normal_``/``uniform_``, with the
  fans passed in (the step's effective fans, which torch's layout rule may not give).

Every other ``torch.nn.init`` function works on float16/bfloat16 on CPU (checked by the
tests) and is called directly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

import torch

__all__ = ["RUNTIME_HELPERS", "helper_source"]


def _orthogonal_(tensor, gain=1.0, generator=None):
    """``torch.nn.init.orthogonal_`` that also works on float16/bfloat16 and strided tensors.

    Fills ``tensor`` with a (semi) orthogonal matrix scaled by ``gain`` (Saxe et al. 2013,
    "Exact solutions to the nonlinear dynamics of learning in deep linear neural
    networks"); trailing dimensions are flattened. For float16/bfloat16 the matrix is
    computed in float32 (torch has no QR for half types) and cast back, so the result is
    exactly ``orthogonal_`` of a float32 tensor followed by ``.to(dtype)``. A
    non-contiguous tensor is filled through a contiguous buffer of the same dtype, giving
    the values a contiguous tensor of that shape would get.
    """
    half = tensor.dtype in (torch.float16, torch.bfloat16)
    if not half and tensor.is_contiguous():
        return torch.nn.init.orthogonal_(tensor, gain=gain, generator=generator)
    work_dtype = torch.float32 if half else tensor.dtype
    work = torch.empty(tensor.shape, dtype=work_dtype, device=tensor.device)
    torch.nn.init.orthogonal_(work, gain=gain, generator=generator)
    with torch.no_grad():
        tensor.copy_(work)
    return tensor


def _sparse_(tensor, sparsity, std=0.01, generator=None):
    """``torch.nn.init.sparse_`` that takes the zero pattern from ``generator`` too.

    Fills the 2-D ``tensor`` with N(0, std^2) values, then zeroes ``ceil(sparsity * rows)``
    randomly chosen entries in every column (Martens 2010, "Deep learning via
    Hessian-free optimization"). torch draws the zero rows with ``torch.randperm(rows)``
    from the global RNG even when a generator is given; this helper passes the generator
    on, and is otherwise torch's algorithm step for step: with ``generator=None`` it gives
    bit-identical results to ``torch.nn.init.sparse_``.
    """
    import math

    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if tensor.is_meta:
        return tensor
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    perm_device = generator.device if generator is not None else torch.device("cpu")
    with torch.no_grad():
        tensor.normal_(0, std, generator=generator)
        for col_idx in range(cols):
            row_indices = torch.randperm(rows, generator=generator, device=perm_device)
            zero_indices = row_indices[:num_zeros]
            tensor[zero_indices, col_idx] = 0
    return tensor


def _variance_scaling_(
    tensor,
    variance_scale=1.0,
    mode="fan_in",
    distribution="truncated_normal",
    fan_in=None,
    fan_out=None,
    generator=None,
):
    """``jax.nn.initializers.variance_scaling(scale, mode, distribution)`` with torch's draws
    (``variance_scale`` is JAX's ``scale``).

    n = fan_in, fan_out or (fan_in + fan_out) / 2 (``mode``); the values have std
    sqrt(variance_scale / n). ``truncated_normal``: a normal truncated at 2 of its own stds, whose
    std is first divided by 0.87962566103423978 (the std of a standard normal truncated
    to [-2, 2], scipy.stats.truncnorm.std(a=-2, b=2)) so that the result's std is
    sqrt(variance_scale / n); ``untruncated_normal``: N(0, variance_scale / n);
    ``uniform``: U(-sqrt(3 * variance_scale / n), sqrt(3 * variance_scale / n)). ``fan_in``/``fan_out`` default to
    torch's layout rule (``torch.nn.init._calculate_fan_in_and_fan_out``).
    """
    import math

    if tensor.numel() == 0:  # as torch's fan-based functions: nothing to fill
        return tensor
    if fan_in is None or fan_out is None:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(tensor)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = variance_scale / n
    if distribution == "truncated_normal":
        std = math.sqrt(variance) / 0.87962566103423978
        return torch.nn.init.trunc_normal_(
            tensor, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std, generator=generator
        )
    if distribution == "untruncated_normal":
        std = math.sqrt(variance)
        return torch.nn.init.normal_(tensor, mean=0.0, std=std, generator=generator)
    bound = math.sqrt(3.0 * variance)
    return torch.nn.init.uniform_(tensor, a=-bound, b=bound, generator=generator)


RUNTIME_HELPERS: dict[str, Callable[..., torch.Tensor]] = {
    "_orthogonal_": _orthogonal_,
    "_sparse_": _sparse_,
    "_variance_scaling_": _variance_scaling_,
}


def helper_source(names: Iterable[str]) -> str:
    """The source of the named helpers, in table order, each once, ready to paste in a script.

    The text assumes ``import torch`` at the top of the script and nothing else. Unknown
    names raise ``KeyError`` listing the helpers that exist.
    """
    wanted = set(names)
    unknown = sorted(wanted - RUNTIME_HELPERS.keys())
    if unknown:
        raise KeyError(
            f"unknown runtime helper(s) {', '.join(unknown)}; known: {', '.join(RUNTIME_HELPERS)}"
        )
    blocks = [
        inspect.getsource(function).rstrip() + "\n"
        for name, function in RUNTIME_HELPERS.items()
        if name in wanted
    ]
    return "\n\n".join(blocks)
