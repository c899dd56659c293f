"""The preview and the check as one headless action each, for the CLI and the TUI alike.

:func:`run_preview` builds the inputs, probes the current weights and, given a resolved
plan, the planned ones (:func:`compare`); :func:`preview_rows` pairs the two per layer
call for a table; :func:`check_preview` turns a probe into the ``inittui check`` verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inittui.core.errors import InittuiError
from inittui.core.loading import LoadedModel
from inittui.core.plan import ResolvedPlan
from inittui.core.probe.comparison import Comparison, compare
from inittui.core.probe.inputs import describe_inputs, make_inputs
from inittui.core.probe.record import probe
from inittui.core.probe.results import CancelFn, ProbeResult, ProgressFn, Thresholds
from inittui.core.probe.verdicts import Verdict, judge


@dataclass(frozen=True)
class PreviewRun:
    """One preview: its inputs (``"(8, 64) float32 from example_inputs"`` and the source
    alone), what was measured and where. ``result`` is the planned probe when a plan was
    compared (``comparison`` then holds both), else the current one."""

    inputs_description: str
    inputs_source: str | None
    result: ProbeResult
    comparison: Comparison | None
    device: str
    backward: bool

    @property
    def current(self) -> ProbeResult:
        return self.result if self.comparison is None else self.comparison.current

    def to_dict(self) -> dict[str, Any]:
        """The ``preview --json`` document: the probe's own, plus the current weights'
        probe, the ratios and whether the plan went in place when a plan was compared."""
        document = self.result.to_dict()
        if self.comparison is not None:
            document["plan_applied"] = True
            document["current"] = self.comparison.current.to_dict()
            document["ratios"] = [item.to_dict() for item in self.comparison.ratios]
            document["in_place"] = self.comparison.in_place
            document["note"] = self.comparison.note
        return document


def run_preview(
    loaded: LoadedModel,
    resolved: ResolvedPlan | None,
    *,
    input_shapes: Sequence[str] | None = None,
    input_dtype: str | None = None,
    inputs_file: str | None = None,
    batch: int | None = None,
    seed: int = 0,
    backward: bool = False,
    thresholds: Thresholds | None = None,
    train_mode: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    allow_in_place: bool = False,
) -> PreviewRun:
    """Probe ``loaded.model`` on inputs from :func:`make_inputs`; with ``resolved``, also
    the planned weights (:func:`compare`). By default normalization layers use batch
    statistics and dropout is off (``train_mode``); ``train_mode=False`` is eval mode.
    Unless ``allow_in_place``, a model that cannot be copied is an :class:`InittuiError`
    and the model is never modified; with it, the plan is applied to the model itself
    (``comparison.in_place`` says so). An :class:`InittuiError` raised after the inputs
    were made carries their source as ``inputs_source`` (for
    :func:`inittui.core.probe.failure.classify_failure`)."""
    inputs = make_inputs(loaded, input_shapes or None, input_dtype, batch, seed, inputs_file)
    options = dict(
        backward=backward,
        thresholds=thresholds,
        train_mode=train_mode,
        seed=seed,
        progress=progress,
        cancel=cancel,
    )
    comparison = None
    try:
        if resolved is None:
            result = probe(loaded.model, inputs, **options)
        else:
            comparison = compare(
                loaded.model, resolved, inputs, allow_in_place=allow_in_place, **options
            )
            result = comparison.planned
    except InittuiError as exc:
        exc.inputs_source = inputs.source  # type: ignore[attr-defined] # see probe.failure
        raise
    return PreviewRun(
        inputs_description=describe_inputs(inputs),
        inputs_source=inputs.source,
        result=result,
        comparison=comparison,
        device=str(loaded.device),
        backward=backward,
    )


# --------------------------------------------------------------------------- table rows


@dataclass(frozen=True)
class PreviewFlag:
    path: str
    kind: str
    detail: str
    which: str  # "now" or "planned"


@dataclass
class PreviewRow:
    """One leaf call: its output std (and gradient std) now and with the plan, and the
    theory's prediction (:func:`inittui.core.probe.theory.theory_std`) for the weights the
    table compares: the planned ones when a plan was compared, else the current ones."""

    path: str
    type: str
    call: int
    now_std: float | None
    plan_std: float | None
    now_grad: float | None = None
    plan_grad: float | None = None
    flags: list[PreviewFlag] = field(default_factory=list)
    theory_std: float | None = None
    theory_grad: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.now_std and self.plan_std is not None:
            return self.plan_std / self.now_std
        return None


@dataclass
class Preview:
    rows: list[PreviewRow]
    flags: list[PreviewFlag]
    description: str
    backward: bool
    device: str
    planned: bool  # whether the plan decides anything (else planned == now)


def preview_rows(run: PreviewRun) -> Preview:
    """One row per leaf call of the current probe (every call when no call is a leaf),
    paired with the planned probe's call of the same ``(path, call)``; flags tagged
    ``now`` and, when a plan was compared, ``planned``."""
    current, planned = run.current, run.result
    compared = run.comparison is not None
    leaves = [layer for layer in current.layers if layer.leaf] or list(current.layers)
    planned_by_key = {(layer.path, layer.call): layer for layer in planned.layers}
    flags = [PreviewFlag(f.path, f.kind, f.detail, "now") for f in current.flags]
    if compared:
        flags += [PreviewFlag(f.path, f.kind, f.detail, "planned") for f in planned.flags]
    rows = []
    for layer in leaves:
        other = planned_by_key.get((layer.path, layer.call))
        judged = other if compared and other is not None else layer
        rows.append(
            PreviewRow(
                path=layer.path,
                type=layer.type,
                call=layer.call,
                now_std=layer.out_std,
                plan_std=other.out_std if other is not None else None,
                now_grad=layer.grad_std,
                plan_grad=other.grad_std if other is not None else None,
                flags=[f for f in flags if f.path == layer.path],
                theory_std=judged.theory_std,
                theory_grad=judged.grad_theory_std,
            )
        )
    return Preview(rows, flags, run.inputs_description, run.backward, run.device, compared)


# --------------------------------------------------------------------------- check


@dataclass(frozen=True)
class CheckVerdict:
    """``inittui check``: the problems found (flags first, then every rule of
    :func:`inittui.core.probe.verdicts.judge` a call or a residual add breaks by more than
    ``max_ratio`` either way), over ``leaves`` leaf calls. ``fresh_references`` counts the
    embeddings and normalizations that set a new reference."""

    problems: list[str]
    leaves: int
    max_ratio: float
    input_std_source: str
    fresh_references: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """What ``inittui check`` prints, one line each."""
        if self.problems:
            return [f"fail: {line}" for line in self.problems] + [
                f"check failed: {len(self.problems)} problem(s) in {self.leaves} layers"
            ]
        source = self.input_std_source or "input"
        if not self.fresh_references:
            return [
                f"check passed: {self.leaves} layers within {self.max_ratio:g}x of the input "
                f"std ({source}), no flags"
            ]
        return [
            f"check passed: {self.leaves} layers within {self.max_ratio:g}x of their "
            f"references ({source}, then {self.fresh_references} embeddings or "
            "normalizations) and of their own theory, no flags"
        ]


def check_max_ratio(max_ratio: float) -> None:
    """Refuse a ``--max-ratio`` that is not a finite number above 1."""
    if not max_ratio > 1 or not math.isfinite(max_ratio):
        raise InittuiError("--max-ratio must be a number above 1, e.g. --max-ratio 10")


def check_preview(result: ProbeResult, max_ratio: float) -> CheckVerdict:
    """The verdict on ``result``: its flags, and each rule a leaf call (or a residual add)
    breaks by more than ``max_ratio`` either way -- its output std against its reference
    (the input std for records without one), against its own input and theory, its weights'
    scale, the residual stream's growth, and with a backward pass the same for gradients."""
    check_max_ratio(max_ratio)
    problems = [f"{flag.kind} at {flag.path}: {flag.detail}" for flag in result.flags]
    low, high = 1 / max_ratio, max_ratio
    verdicts = judge(result.layers, result.residuals, result.input_std, low, high)
    problems += [verdict.problem(low, high) for verdict in sorted(verdicts, key=_order)]
    leaves = sum(1 for layer in result.layers if layer.leaf)
    fresh = {
        layer.reference
        for layer in result.layers
        if layer.leaf and layer.reference not in (None, "input", "none")
    }
    return CheckVerdict(problems, leaves, max_ratio, result.input_std_source, len(fresh))


def _order(verdict: Verdict) -> tuple[float, ...]:
    return verdict.order
