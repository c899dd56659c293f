"""Verdicts that know the architecture: each layer judged against its own input, its own
theory and the reference in force where it runs, never the model input alone.

The rules (:func:`judge`), each a factor that must stay within ``[low, high]`` (the
``--vanishing``/``--exploding`` thresholds for flags, ``1/R..R`` for ``inittui check``):

* ``reference``: the output std over the reference's std. The reference is the model input
  until an Embedding (its output std is its reference), a normalization layer (a fresh
  reference, its own output) sets a new one; a residual add does not. Calls inside a
  residual branch are not judged by it: their add is (``residual``).
* ``theory``: the output std over the input std the call consumed, over the ratio its type
  and weights should give (``expected_ratio``: Linear/Conv ``sqrt(sum W^2 / outputs)`` with
  the input's mean and the bias, activations by integration of their own function on a
  Gaussian of the input's mean and std, Dropout/Identity 1).
* ``weights``: a Linear/Conv's own scale, ``sqrt(fan_in) x weight rms`` (the std it gives a
  zero-mean unit input); He/Glorot-style inits give about 1. A residual branch's last
  weighted layer may be small (GPT-2's ``1/sqrt(2 n_layer)``, Fixup, zero-init).
* ``residual``: the stream after a residual add against ``entry std x sqrt(depth + 1)``
  (exploding), and against the stream before it (vanishing).
* ``gradient reference`` and ``gradient theory``: the backward twins, with the gradient at
  the model output as the first reference (a normalization's input gradient sets a fresh
  one) and He's backward ratio ``sqrt(sum W^2 / inputs)`` (``fan_out x Var(w)``) or an
  activation's ``sqrt(E[phi'(x)^2])``.

Only the records are read here: :mod:`inittui.core.probe.expectations` fills their fields
from the model during the probe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from inittui.core.probe.results import Flag, LayerRecord, ResidualAdd

_PRIORITY = {"weights": 0, "theory": 1, "reference": 2, "residual": 3}


@dataclass(frozen=True)
class Verdict:
    """One rule broken by one call (or one residual add)."""

    path: str
    type: str
    kind: str
    rule: str
    ratio: float
    expected: float
    reference: str | None
    reason: str
    order: tuple[float, ...]

    def flag(self) -> Flag:
        return Flag(
            self.path,
            self.kind,
            f"{self.reason} at {self.path or '(root)'} ({self.type}); it starts here",
            rule=self.rule,
            ratio=self.ratio,
            expected_ratio=self.expected,
            reference=self.reference,
        )

    def problem(self, low: float, high: float) -> str:
        """One ``inittui check`` line."""
        return (
            f"{self.path or '(root)'} ({self.type}): {self.reason} (allowed {_allowed(low, high)})"
        )


def _allowed(low: float, high: float) -> str:
    if math.isclose(low * high, 1.0, rel_tol=1e-9):
        return f"1/{high:g}..{high:g}"
    return f"{low:g}..{high:g}"


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def judge(
    layers: Sequence[LayerRecord],
    residuals: Sequence[ResidualAdd],
    input_std: float | None,
    low: float,
    high: float,
) -> list[Verdict]:
    """Every rule broken by more than ``[low, high]``, forward calls in call order, then
    the residual adds, then the backward verdicts."""
    found: list[Verdict] = []
    for index, record in enumerate(layers):
        if record.leaf and not record.nonfinite:
            found += _forward(index, record, input_std, low, high)
            found += _backward(index, record, low, high)
    for add in residuals:
        found += _residual(add, low, high)
    return found


def _kind(factor: float, low: float, high: float, suffix: str = "") -> str | None:
    if factor < low:
        return "vanishing" + suffix
    if factor > high:
        return "exploding" + suffix
    return None


def _forward(
    index: int, record: LayerRecord, input_std: float | None, low: float, high: float
) -> list[Verdict]:
    out = record.out_std
    if out is None or not math.isfinite(out):
        return []
    found = []

    def add(kind: str | None, rule: str, ratio: float, expected: float, ref, reason) -> None:
        if kind is not None:
            order = (0.0, float(index), float(_PRIORITY[rule]))
            found.append(
                Verdict(record.path, record.type, kind, rule, ratio, expected, ref, reason, order)
            )

    weight = record.weight_ratio
    if weight is not None and math.isfinite(weight):
        kind = _kind(weight, low, high)
        if kind == "exploding" or (kind == "vanishing" and not record.branch_last):
            add(
                kind,
                "weights",
                weight,
                1.0,
                None,
                f"its weights scale a unit input's std by {weight:.3g}x (sqrt(fan_in) x weight "
                "rms) where He/Glorot-style inits give ~1x",
            )
    expected = record.expected_ratio
    if _ok(expected) and _ok(record.in_std):
        ratio = out / record.in_std
        what = f"{record.type} with these weights" if weight is not None else record.type
        add(
            _kind(ratio / expected, low, high),
            "theory",
            ratio,
            expected,
            "its input",
            f"output std {out:.4g} is {ratio:.3g}x its input's where {what} should give "
            f"~{expected:.3g}x",
        )
    if record.residual_branch is not None and record.reference is None:
        return found  # inside a residual branch: its add judges the stream
    base = record.reference_std if record.reference is not None else input_std
    if not _ok(base):
        return found
    ratio = out / base
    if record.reference in (None, "input"):
        reason = f"output std {out:.4g} is {ratio:.3g}x the input's"
    else:
        reason = f"output std {out:.4g} is {ratio:.3g}x its reference's ({record.reference}, std {base:.3g})"
    add(_kind(ratio, low, high), "reference", ratio, 1.0, record.reference or "input", reason)
    return found


def _backward(index: int, record: LayerRecord, low: float, high: float) -> list[Verdict]:
    grad = record.grad_std
    if grad is None or not math.isfinite(grad):
        return []
    found = []
    order = (1.0, float(-index))
    expected = record.expected_grad_ratio
    if _ok(expected) and _ok(grad) and record.in_grad_std is not None:
        ratio = record.in_grad_std / grad
        kind = _kind(ratio / expected, low, high, "_grad")
        if kind is not None:
            found.append(
                Verdict(
                    record.path,
                    record.type,
                    kind,
                    "gradient theory",
                    ratio,
                    expected,
                    "its output's gradient",
                    f"gradient std at its input is {ratio:.3g}x the one at its output where "
                    f"{record.type} should give ~{expected:.3g}x (He's backward: fan_out x Var(w))",
                    (*order, 1.0),
                )
            )
    base = record.grad_reference_std
    if _ok(base):
        ratio = grad / base
        kind = _kind(ratio, low, high, "_grad")
        if kind is not None:
            found.append(
                Verdict(
                    record.path,
                    record.type,
                    kind,
                    "gradient reference",
                    ratio,
                    1.0,
                    "output gradient",
                    f"gradient std {grad:.3g} at its output is {ratio:.3g}x the reference "
                    f"gradient's ({base:.3g}: at the model output, or at the input of the "
                    "normalization after it)",
                    (*order, 2.0),
                )
            )
    return found


def _residual(add: ResidualAdd, low: float, high: float) -> list[Verdict]:
    out, stream, expected = add.out_std, add.stream_std, add.expected_std
    if out is None or not math.isfinite(out):
        return []
    order = (0.0, add.end - 0.5, float(_PRIORITY["residual"]))
    where = f"{add.kind} residual add {add.depth} of its stack"
    if _ok(expected) and out / expected > high:
        ratio = out / expected
        return [
            Verdict(
                add.path,
                where,
                "exploding",
                "residual",
                ratio,
                1.0,
                "residual stream",
                f"residual stream std {out:.3g} after the add is {ratio:.3g}x the ~{expected:.3g} "
                f"expected (entering std {add.entry_std:.3g} x sqrt({add.depth + 1}); "
                f"branch std {add.branch_std or 0:.3g})",
                order,
            )
        ]
    if _ok(stream) and out / stream < low:
        ratio = out / stream
        return [
            Verdict(
                add.path,
                where,
                "vanishing",
                "residual",
                ratio,
                1.0,
                "residual stream",
                f"residual stream std {out:.3g} after the add is {ratio:.3g}x the stream's "
                f"before it ({stream:.3g})",
                order,
            )
        ]
    return []
