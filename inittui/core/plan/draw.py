"""A step's statistics and how its values are drawn: the scheme's expected statistics with
the fans it uses (a view of the tensor, or a direct fill, where they differ from torch's
layout rule), then the whole tensor's once scale, the forget rows and the padding row apply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from inittui.core.fans import permutation_for
from inittui.core.schemes import Expected, Scheme, fans
from inittui.core.schemes.args import fmt_num
from inittui.core.schemes.stats import scaled, with_rows_filled


def fan_expected(
    scheme: Scheme,
    args: Mapping[str, object],
    block_shape: tuple[int, ...],
    fan: tuple[int, int] | None,
    used: tuple[int | float | None, int | float | None],
) -> tuple[Expected, tuple[int, ...] | None, tuple[str, float] | None]:
    """The scheme's statistics with the fans it uses, and how the code draws them.

    Where the fans differ from torch's layout rule (and change the scheme's values), the
    draw goes through torch's own function on a permuted view of the tensor whose layout
    gives torch those fans (``p.t()`` for a weight stored (in, out)); when no view does (a
    transposed conv with stride, a grouped conv's fan_out), through
    ``torch.nn.init.normal_``/``uniform_`` with the computed std or bound."""
    plain = scheme.expected(block_shape, args)
    if not scheme.fan_based or fan is None or used == fan or math.prod(block_shape) == 0:
        return plain, None, None
    values = {**scheme.validate(args), "_fans": used}
    expected = scheme.stats(block_shape, values)  # type: ignore[misc]
    if (expected.std, expected.bound) == (plain.std, plain.bound):
        return plain, None, None
    fan_in, fan_out = used
    both = (
        f"fans from the computation: fan_in {fan_in}, fan_out {fan_out} "
        f"(torch's layout rule: {fan[0]}, {fan[1]})"
    )
    if scheme.fans_in_call:  # the statement passes the fans itself
        return replace(expected, formula=f"{expected.formula}; {both}"), None, None
    order = permutation_for(block_shape, fan_in, fan_out)  # type: ignore[arg-type]
    if order is not None:
        text = f"{expected.formula}; {both}: drawn on the view {view_expression(order)}"
        return replace(expected, formula=text), order, None
    if expected.bound is not None:
        fill = ("uniform", float(expected.bound))
        how = f"torch.nn.init.uniform_(-bound, bound) with bound = {fmt_num(fill[1])}"
    else:
        fill = ("normal", float(expected.std or 0.0))
        how = f"torch.nn.init.normal_(0, std) with std = {fmt_num(fill[1])}"
    text = (
        f"{expected.formula}; {both}: no view of the tensor gives torch's {scheme.function} "
        f"these fans, so the values are drawn with {how}"
    )
    return replace(expected, formula=text), None, fill


def view_expression(order: Sequence[int], name: str = "p") -> str:
    """``p.t()`` for a swapped matrix, else ``p.permute(1, 0, 2)``."""
    if tuple(order) == (1, 0):
        return f"{name}.t()"
    return f"{name}.permute({', '.join(map(str, order))})"


def step_expected(
    expected: Expected,
    shape: tuple[int, ...],
    scale: float | None,
    forget_block: tuple[int, int, float] | None,
    padding_idx: int | None = None,
) -> Expected:
    """The statistics of the whole tensor once the step ran: the scheme's for one block
    (every gate block alike), times ``scale``, then with the forget rows set and the
    Embedding's padding row zeroed (the std is over the whole tensor, zero row included)."""
    expected = scaled(expected, scale)
    if forget_block is not None:
        start, stop, value = forget_block
        expected = with_rows_filled(expected, shape[0], start, stop, value)
    if padding_idx is not None and shape and shape[0] > 0:
        expected = with_padding_row(expected, shape[0], padding_idx % shape[0])
    return expected


def with_padding_row(expected: Expected, rows: int, index: int) -> Expected:
    """The whole tensor's statistics once row ``index`` of ``rows`` is set back to 0."""
    filled = with_rows_filled(expected, rows, index, index + 1, 0.0)
    text = f"{expected.formula}; padding row {index} set back to 0"
    if expected.mean is not None and expected.std is not None:
        text += (
            f": over the whole tensor (zero row included, f = 1/{rows}) mean = (1 - f) * "
            f"{fmt_num(expected.mean)} = {fmt_num(filled.mean)}, std = sqrt((1 - f) * "
            f"(std^2 + mean^2) - mean'^2) = {fmt_num(filled.std)}"
        )
    return replace(filled, formula=text)


TILE_SCHEMES = frozenset(
    {
        "uniform",
        "normal",
        "trunc_normal",
        "constant",
        "ones",
        "zeros",
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "lecun_normal",
        "variance_scaling",
    }
)
"""The schemes whose values are drawn element by element, so a tile of the tensor can be
drawn alone (draw scheme 2); every other (orthogonal, sparse, eye, dirac) draws the whole
tensor."""


def tile_fill(
    scheme: Scheme,
    args: Mapping[str, object],
    shape: tuple[int, ...],
    view: Sequence[int] | None,
) -> tuple[str, float, tuple[int, int]]:
    """A fan-based torch function (xavier_*, kaiming_*, lecun_normal) lowered for one tile:
    ``("normal", std)`` or ``("uniform", bound)`` exactly as torch computes them on the whole
    tensor (or split block) of ``shape``, read through the permuted ``view`` when the step
    draws on one, with the fans torch uses there. A tile alone has other fans."""
    target = shape if view is None else tuple(shape[d] for d in view)
    used = fans(target)
    assert used is not None  # fan-based schemes need 2+ dims
    expected = scheme.stats(target, {**scheme.validate(args), "_fans": used})  # type: ignore[misc]
    if expected.bound is not None:
        return "uniform", float(expected.bound), used
    return "normal", float(expected.std or 0.0), used
