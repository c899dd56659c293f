"""Plans as data: :class:`Rule` (one ``[[rule]]``) and :class:`Plan` (rules + seed).

A plan is a list of rules. Each rule selects modules (``type:Class``, a dotted-path glob or
an exact path), optionally filters their own parameters by a glob over the local name, and
names a scheme with its keyword arguments. For every parameter the last matching rule wins;
parameters no rule matches keep their values.

Extension keys (inittui's; they never change the meaning of the contract keys):

``per_gate = true``
    For RNN/LSTM/GRU (and their cells) ``weight_ih*``/``weight_hh*``: split the fused matrix
    along dim 0 into the module's gate blocks (LSTM: 4, i f g o; GRU: 3, r z n) and apply
    the scheme to each block, as ``for w in weight.chunk(4, 0): scheme_(w)``. Fans and
    expected std are then those of one block. On biases it is accepted and has no effect
    beyond the same chunking.
``split = 3`` or ``split = [512, 128, 128]``
    Any parameter: cut the tensor along its effective output dimension (dim 1 for a weight
    stored (in, out), transformers' ``Conv1D``; dim 0 otherwise, biases included) into N
    equal blocks or blocks of the given sizes, and treat each block as its own tensor for
    fans, expected std and drawing (MultiheadAttention's ``in_proj_weight``, GPT-2's
    ``c_attn``: q, k, v fused). ``per_gate`` is the same split by the module's gates.
``forget_bias = 1.0``
    LSTM/LSTMCell biases only: after the scheme, the forget-gate block (rows H..2H) of
    ``bias_ih*`` is set to the value and that of ``bias_hh*`` to 0, so that the effective
    forget bias (the two vectors add) is exactly the value.
``scale = 0.5``
    Multiply the initialized values by a constant (GPT-2's 1/sqrt(2 * n_layer) residual
    scaling, LSUV's per-layer factors).

Every float argument of a scheme, ``scale`` and ``forget_bias`` may also be a string
expression (``std = "0.02 / sqrt(2 * config.n_layer)"``, :mod:`.expr`): the rule keeps the
text; resolution evaluates it per parameter (:mod:`.expr_context`).

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from inittui.core.errors import InittuiError
from inittui.core.plan.expr import checked_expression
from inittui.core.prelude import DRAW_SCHEME

PLAN_VERSION = 1
CONTRACT_KEYS = ("select", "params", "scheme")
EXTENSION_KEYS = ("per_gate", "split", "forget_bias", "scale", "note")


@dataclass(frozen=True)
class Rule:
    """One ``[[rule]]`` of a plan. ``args`` are the scheme's keyword arguments."""

    select: str
    scheme: str
    params: str = "*"
    args: Mapping[str, object] = field(default_factory=dict)
    per_gate: bool = False
    split: int | tuple[int, ...] | None = None  # N equal blocks, or their sizes
    forget_bias: float | str | None = None  # a str: an expression (.expr)
    scale: float | str | None = None
    note: str | None = None

    def to_toml_dict(self) -> dict[str, object]:
        table: dict[str, object] = {"select": self.select}
        if self.params != "*":
            table["params"] = self.params
        table["scheme"] = self.scheme
        table.update(self.args)
        if self.per_gate:
            table["per_gate"] = True
        if self.split is not None:
            table["split"] = self.split if isinstance(self.split, int) else list(self.split)
        if self.forget_bias is not None:
            table["forget_bias"] = self.forget_bias
        if self.scale is not None:
            table["scale"] = self.scale
        if self.note:
            table["note"] = self.note
        return table

    def options(self) -> list[str]:
        """The extension keys in force, as text: ``per gate``, ``split 3``, ``forget_bias=1.0``,
        ``scale=0.5`` (every view of a rule shows them this way)."""
        extra = []
        if self.per_gate:
            extra.append("per gate")
        if self.split is not None:
            sizes = self.split if isinstance(self.split, int) else list(self.split)
            extra.append(f"split {sizes}")
        if self.forget_bias is not None:
            extra.append(f"forget_bias={_option(self.forget_bias)}")
        if self.scale is not None:
            extra.append(f"scale={_option(self.scale)}")
        return extra

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        extra = self.options()
        params = "" if self.params == "*" else f" [{self.params}]"
        tail = f" ({'; '.join(extra)})" if extra else ""
        return f"{self.select or '(root)'}{params} -> {self.scheme}({args}){tail}"


def _option(value: float | str) -> str:
    """An option as text: a number as it prints, an expression in quotes."""
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Plan:
    rules: tuple[Rule, ...] = ()
    seed: int = 0
    version: int = PLAN_VERSION
    # 2: parameters larger than one tile draw tile by tile; 1: every parameter whole, as
    # exports before draw scheme 2 (inittui.core.prelude.DRAW_SCHEME).
    draw_scheme: int = DRAW_SCHEME

    def with_rule(self, rule: Rule) -> Plan:
        return replace(self, rules=(*self.rules, rule))

    def without_rule(self, index: int) -> Plan:
        return replace(self, rules=self.rules[:index] + self.rules[index + 1 :])

    def with_seed(self, seed: int) -> Plan:
        return replace(self, seed=seed)


def rule_label(index: int, raw: Mapping[str, object] | Rule) -> str:
    select = raw.select if isinstance(raw, Rule) else raw.get("select", "?")
    return f"rule {index + 1} (select {select!r})"


def check_extension(label: str, key: str, value: object) -> object:
    if key == "per_gate":
        if not isinstance(value, bool):
            raise InittuiError(f"{label}: per_gate must be true or false, got {value!r}")
        return value
    if key == "split":
        return check_split(label, value)
    if key in ("forget_bias", "scale"):
        if isinstance(value, str):
            lead = f"{key} must be a finite number or an expression; "
            checked_expression(label, key, value, lead)  # the rule keeps the text
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise InittuiError(f"{label}: {key} must be a finite number, got {value!r}")
        return float(value)
    if key == "note":
        return str(value)
    raise AssertionError(key)


def check_split(label: str, value: object) -> int | tuple[int, ...]:
    """``split = N`` (an integer >= 1) or ``split = [n1, n2, ...]`` (positive integers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise InittuiError(
                f"{label}: split must be at least 1, got {value}; write e.g. split = 3"
            )
        return value
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            return tuple(value)
    raise InittuiError(
        f"{label}: split must be a number of equal blocks or a list of positive block sizes, "
        f"got {value!r}; write e.g. split = 3 or split = [512, 128, 128]"
    )


def check_split_rule(label: str, rule_keys: Mapping[str, object]) -> None:
    """``per_gate`` and ``split`` are two spellings of one thing: one of them per rule."""
    if rule_keys.get("per_gate") and rule_keys.get("split") is not None:
        raise InittuiError(
            f"{label}: per_gate and split both split the tensor; keep one of them "
            "(per_gate = true is the split by the module's gates)"
        )


def _finite(value: float) -> bool:
    """Finite as a float64 (an integer beyond float64's range, 10**400, is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def check_rule_numbers(plan: Plan) -> None:
    """A :class:`Rule` built in code is not validated yet: check its forget_bias/scale
    and split."""
    for index, rule in enumerate(plan.rules):
        label = rule_label(index, rule)
        if rule.split is not None:
            check_split(label, rule.split)
        check_split_rule(label, {"per_gate": rule.per_gate, "split": rule.split})
        for key in ("forget_bias", "scale"):
            if getattr(rule, key) is not None:
                check_extension(rule_label(index, rule), key, getattr(rule, key))
