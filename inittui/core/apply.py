"""Run a resolved plan (the IR) on a model: the in-app apply.

Each step executes exactly the lines :func:`inittui.core.codegen.step_source` prints into
the exported script, with the same prelude functions, so the two cannot disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import CodeType

import torch
from torch import nn

from inittui.core.codegen import step_source
from inittui.core.errors import CancelledError, InittuiError
from inittui.core.plan import InitStep, ResolvedPlan
from inittui.core.prelude import DRAW_SCHEME, PRELUDE_NAMESPACE, _check_params
from inittui.core.runtime import RUNTIME_HELPERS


@functools.lru_cache(maxsize=65536)
def _compiled(source: str) -> CodeType:
    return compile(source, "<inittui step>", "exec")


def check_model(model: nn.Module, steps: list[InitStep]) -> dict[str, torch.Tensor]:
    """The model's parameters by every name; InittuiError when the plan does not fit."""
    try:
        return _check_params(model, {step.param: step.shape for step in steps})
    except ValueError as exc:
        raise InittuiError(f"{exc}; rebuild the plan for this model") from None


def apply_plan(
    model: nn.Module,
    resolved: ResolvedPlan | list[InitStep],
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> int:
    """Initialize ``model`` in place; returns the number of parameters initialized.

    Everything is checked before the first parameter is touched. ``cancel`` is polled
    between parameters; on cancel, :class:`CancelledError` is raised and the parameters
    already written keep their new values (apply to a copy to keep the original).
    """
    steps = resolved.steps if isinstance(resolved, ResolvedPlan) else list(resolved)
    if seed is None:
        seed = resolved.plan.seed if isinstance(resolved, ResolvedPlan) else 0
    draw_scheme = resolved.plan.draw_scheme if isinstance(resolved, ResolvedPlan) else DRAW_SCHEME
    params = check_model(model, steps)
    namespace = {"torch": torch, **RUNTIME_HELPERS, **PRELUDE_NAMESPACE}
    total = len(steps)
    with torch.no_grad():
        for done, step in enumerate(steps):
            if cancel is not None and cancel():
                raise CancelledError(f"apply cancelled after {done} of {total} parameters")
            source = step_source(step, draw_scheme)
            exec(_compiled(source), {**namespace, "params": params, "seed": seed})
            if progress is not None:
                progress(done + 1, total)
    return total
