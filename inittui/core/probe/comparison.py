"""Current weights against planned ones: :func:`compare` probes both (the plan applied to a
deep copy, or to the model itself when it is too large to copy) and pairs their output std
per call."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.errors import InittuiError
from inittui.core.formatting import size as _size_text
from inittui.core.loading import model_device
from inittui.core.plan import ResolvedPlan
from inittui.core.probe.memory import default_copy_limit, model_bytes
from inittui.core.probe.record import probe
from inittui.core.probe.results import (
    CancelFn,
    ProbeResult,
    ProgressFn,
    Thresholds,
    _finite,
    _lookup,
    _one_line,
)

# Why a compare that must not touch the model refuses (``allow_in_place=False``).
NOT_COPIED = (
    "{why} for the planned preview; the current weights were probed, use "
    "'inittui preview --plan' for the planned ones"
)
IN_PLACE_SUFFIX = "the plan was applied to the model itself, which now holds the planned weights"


@dataclass
class LayerRatio:
    path: str
    call: int
    type: str
    current_std: float | None
    planned_std: float | None
    ratio: float | None  # planned / current

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "call": self.call,
            "type": self.type,
            "current_std": _finite(self.current_std),
            "planned_std": _finite(self.planned_std),
            "ratio": _finite(self.ratio),
        }


@dataclass
class Comparison:
    """The probe on the current weights and on the planned ones. ``in_place`` is True when
    the plan was applied to the model itself (``note`` says why): the caller's model then
    holds the planned weights."""

    current: ProbeResult
    planned: ProbeResult
    ratios: list[LayerRatio]
    in_place: bool = False
    note: str | None = None

    def ratio(self, path: str, call: int = 0) -> float | None:
        return _lookup(self, self.ratios, (path, call)).ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_place": self.in_place,
            "note": self.note,
            "current": self.current.to_dict(),
            "planned": self.planned.to_dict(),
            "ratios": [item.to_dict() for item in self.ratios],
        }


def compare(
    model: nn.Module,
    plan_resolved: ResolvedPlan,
    inputs: Sequence[torch.Tensor],
    backward: bool = False,
    thresholds: Thresholds | None = None,
    train_mode: bool = False,
    seed: int = 0,
    max_copy_bytes: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    allow_in_place: bool = True,
) -> Comparison:
    """Probe the current weights and a deep copy with the plan applied; ``ratios`` holds
    planned/current output std per call, matched by ``(path, call)``.

    When the model is larger than ``max_copy_bytes`` (default :func:`default_copy_limit`)
    or cannot be copied, nothing is copied: the current weights are probed, then the plan
    is applied to ``model`` itself and probed again, with ``in_place=True`` (a cancel
    during that apply leaves the model partly initialized). With ``allow_in_place=False``
    that case is an :class:`InittuiError` instead and ``model`` is never modified.
    ``progress`` sees each of the two probes run from the start.
    """
    limit = default_copy_limit(model_device(model)) if max_copy_bytes is None else max_copy_bytes
    size = model_bytes(model)
    options = dict(
        backward=backward,
        thresholds=thresholds,
        progress=progress,
        cancel=cancel,
        train_mode=train_mode,
        seed=seed,
    )
    current = probe(model, inputs, **options)
    planned_model, why, refusal = _copy_for_plan(model, size, limit)
    if planned_model is None and not allow_in_place:
        raise InittuiError(refusal)
    target = model if planned_model is None else planned_model
    apply_plan(target, plan_resolved, cancel=cancel)
    planned = probe(target, inputs, **options)
    return Comparison(
        current=current,
        planned=planned,
        ratios=_ratios(current, planned),
        in_place=planned_model is None,
        note=None if why is None else f"{why}; {IN_PLACE_SUFFIX}",
    )


def _copy_for_plan(
    model: nn.Module, size: int, limit: int
) -> tuple[nn.Module | None, str | None, str]:
    """A deep copy of ``model`` to apply the plan to, or ``None``, why not (for the note of an
    in-place compare) and the error of a compare that may not work in place."""
    no_memory = NOT_COPIED.format(why="not enough memory to copy the model")
    if size > limit:
        why = f"the model ({_size_text(size)}) is larger than the copy limit ({_size_text(limit)})"
        return None, why, no_memory
    try:
        return copy.deepcopy(model), None, ""
    except MemoryError:
        return None, f"not enough memory to copy the model ({_size_text(size)})", no_memory
    except Exception as exc:  # noqa: BLE001 - custom modules may refuse deepcopy
        cannot = f"the model cannot be copied ({_one_line(exc)})"
        return None, cannot, NOT_COPIED.format(why=cannot)


def _ratios(current: ProbeResult, planned: ProbeResult) -> list[LayerRatio]:
    before = {(r.path, r.call): r for r in current.layers}
    ratios = []
    for record in planned.layers:
        old = before.get((record.path, record.call))
        old_std = old.out_std if old is not None else None
        new_std = record.out_std
        ratio = None
        if old_std is not None and new_std is not None and old_std > 0:
            ratio = new_std / old_std
        ratios.append(LayerRatio(record.path, record.call, record.type, old_std, new_std, ratio))
    return ratios
