"""Splits: a fused tensor cut into blocks along its effective output dimension, each block
its own tensor for fans, expected statistics and drawing (``split = 3``,
``split = [512, 128, 128]``; ``per_gate = true`` is the split by an RNN's gates).

:func:`split_of` turns a rule into the blocks of one parameter (or refuses in one line),
:func:`block_draws` makes one :class:`BlockDraw` per block (its fans, statistics and draw),
:func:`pooled` the whole tensor's statistics from its blocks'. The resolver
(:func:`inittui.core.plan.resolve.make_step`) calls them; codegen prints the draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from torch import nn

from inittui.core.fans import _CONV_TRANSPOSE, is_conv1d_layout, permutation_for, whole
from inittui.core.plan.draw import fan_expected
from inittui.core.plan.model import Rule
from inittui.core.plan.select import gate_count
from inittui.core.schemes import Scheme, fans
from inittui.core.schemes.args import fmt_num
from inittui.core.schemes.stats import Expected
from inittui.core.tree import ParamRecord


@dataclass(frozen=True)
class Split:
    """The blocks of one parameter: ``sizes`` along ``dim``; ``gates`` when per_gate."""

    dim: int
    sizes: tuple[int, ...]
    gates: bool = False

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        out, start = [], 0
        for size in self.sizes:
            out.append((start, start + size))
            start += size
        return tuple(out)


@dataclass(frozen=True)
class BlockDraw:
    """One block of a split step: its fans (the scheme's and torch's layout rule's), its
    statistics, and how its values are drawn (as :class:`InitStep`'s ``fan_view`` /
    ``fan_fill`` for a whole tensor)."""

    start: int
    stop: int
    fan_in: int | float | None
    fan_out: int | float | None
    torch_fan_in: int | None
    torch_fan_out: int | None
    expected: Expected
    fan_view: tuple[int, ...] | None = None
    fan_fill: tuple[str, float] | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start


def output_dim(module: nn.Module, local: str, shape: Sequence[int], fans: tuple | None) -> int:
    """The parameter's effective output dimension: 1 for a weight stored (in, out)
    (transformers' ``Conv1D``, a transposed conv) or whose computed fans are torch's read
    transposed; else 0 (torch's layout (out, in, ...), biases)."""
    if len(shape) < 2:
        return 0
    if local == "weight" and (is_conv1d_layout(module) or isinstance(module, _CONV_TRANSPOSE)):
        return 1
    if fans is not None and fans[0] is not None:
        order = permutation_for(shape, fans[0], fans[1])
        if order is not None:
            return order[0]
    return 0


def split_of(
    rule: Rule, module: nn.Module, local: str, name: str, shape: tuple[int, ...], fans: tuple | None
) -> Split | str | None:
    """The rule's split of this parameter, None without one, or why it cannot split it."""
    if rule.per_gate:
        gates = gate_count(module, local)
        if gates is None:
            return (
                f"per_gate applies to RNN/LSTM/GRU weight_ih/weight_hh/bias "
                f"parameters, not {name} ({type(module).__name__})"
            )
        size = shape[0] // gates
        return Split(0, (size,) * gates, gates=True)
    if rule.split is None:
        return None
    if not shape:
        return f"split needs a tensor with dimensions, {name} is a scalar (0-dim); drop split"
    dim = output_dim(module, local, shape, fans)
    length = shape[dim]
    if isinstance(rule.split, int):
        if length % rule.split:
            return (
                f"split = {rule.split} does not divide {name}'s output dim {dim} of size "
                f"{length}; give a divisor of {length} or the block sizes"
            )
        return Split(dim, (length // rule.split,) * rule.split)
    sizes = tuple(rule.split)
    if sum(sizes) != length:
        return (
            f"split = {list(sizes)} adds up to {sum(sizes)} but {name}'s output dim {dim} has "
            f"{length}; give sizes that add up to {length}"
        )
    return Split(dim, sizes)


def block_shape(shape: Sequence[int], split: Split, size: int) -> tuple[int, ...]:
    return tuple(size if d == split.dim else s for d, s in enumerate(shape))


def block_fans(
    used: tuple[int | float | None, int | float | None], length: int, size: int
) -> tuple[int | float | None, int | float | None]:
    """A block's fans: fan_in stays, fan_out scales with the block's share of the output
    dim (for a Linear it becomes the block's size, for a conv its channels times the kernel)."""
    fan_in, fan_out = used
    if fan_out is None or length == 0:
        return fan_in, fan_out
    return fan_in, whole(fan_out * size / length)


def pooled(draws: Sequence[BlockDraw], split: Split) -> Expected:
    """The whole tensor's statistics from its blocks' (unequal blocks can differ)."""
    first = draws[0].expected
    if all(d.expected == first for d in draws):
        if len(draws) == 1 or split.gates:
            return first
        text = f"{first.formula}; per block of {len(draws)} along dim {split.dim}"
        return replace(first, formula=text)
    total = sum(d.size for d in draws)
    parts = "; ".join(
        f"block {i} ({d.size}): fan_in {d.fan_in}, fan_out {d.fan_out}, "
        f"std {fmt_num(d.expected.std) if d.expected.std is not None else '-'}"
        for i, d in enumerate(draws)
    )
    mean = std = None
    moments = [(d.size, d.expected.mean, d.expected.std) for d in draws]
    if total and all(m is not None and s is not None for _, m, s in moments):
        mean = sum(n * m for n, m, _ in moments) / total  # type: ignore[operator]
        second = sum(n * (s * s + m * m) for n, m, s in moments) / total  # type: ignore[operator]
        std = math.sqrt(max(second - mean * mean, 0.0))
    bounds = [d.expected.bound for d in draws]
    lows = [d.expected.low for d in draws]
    highs = [d.expected.high for d in draws]
    text = (
        f"{first.formula.split(';')[0]}; split along dim {split.dim} into {list(split.sizes)}: "
        f"{parts}; over the tensor std = sqrt(sum n_i (std_i^2 + mean_i^2) / n - mean^2) = "
        f"{fmt_num(std) if std is not None else '-'}"
    )
    return Expected(
        mean=mean,
        std=std,
        bound=None if None in bounds else max(bounds),  # type: ignore[type-var]
        formula=text,
        low=None if None in lows else min(lows),  # type: ignore[type-var]
        high=None if None in highs else max(highs),  # type: ignore[type-var]
    )


def block_draws(
    scheme: Scheme,
    args: Mapping[str, object],
    record: ParamRecord,
    shape: tuple[int, ...],
    split: Split,
    from_default: bool,
) -> tuple[BlockDraw, ...]:
    """Each block as its own tensor: its fans (the effective ones with the output dim cut
    to the block; torch's for gates and ``default``), statistics and draw."""
    draws = []
    for start, stop in split.ranges:
        part = block_shape(shape, split, stop - start)
        fan = fans(part)
        if fan is None or split.gates or from_default or record.fan_in is None:
            used = (None, None) if fan is None else fan
        else:
            length = shape[split.dim]
            used = block_fans((record.fan_in, record.fan_out), length, stop - start)
        expected, view, fill = fan_expected(scheme, args, part, fan, used)
        torch_in, torch_out = (None, None) if fan is None else fan
        draws.append(BlockDraw(start, stop, *used, torch_in, torch_out, expected, view, fill))
    return tuple(draws)


def split_text(dim: int, sizes: Sequence[int], gates: bool) -> str:
    """``4 gate blocks``, ``3 blocks along dim 1``, ``blocks [64, 16, 16] along dim 0``."""
    if gates:
        return f"{len(sizes)} gate blocks"
    if len(set(sizes)) == 1:
        return f"{len(sizes)} blocks along dim {dim}"
    return f"blocks {list(sizes)} along dim {dim}"
