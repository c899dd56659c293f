"""The headless twin of the app's session-level actions: open a model with its plan, open
another plan, move the model to another device.

The TUI's workers and the CLI's commands call these (and the other core entry points:
:func:`inittui.core.plan.resolve_plan`, :func:`inittui.core.summary.model_stats`, the
preview in :mod:`inittui.core.probe`, :mod:`inittui.core.export`), so that what a user does
in the app can be done, with the same result, in a script.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Mapping
from dataclasses import dataclass

from inittui.core.errors import InittuiError
from inittui.core.fans import traced_tree
from inittui.core.loading import LoadedModel, load_model, move_to_device, parse_device
from inittui.core.plan import Plan, ResolvedPlan, load_plan, parse_plan, resolve_plan
from inittui.core.plan.expr_context import constructor_arguments
from inittui.core.tree import ModelTree
from inittui.presets import PresetError, is_preset, preset_name, preset_text


@dataclass(frozen=True)
class OpenedModel:
    """A built model, its tree, and its plan resolved against it. ``plan_error`` is the
    reason a plan file given to :func:`open_model` was refused (the plan is then empty)."""

    loaded: LoadedModel
    tree: ModelTree
    resolved: ResolvedPlan
    plan_error: str | None = None

    @property
    def plan(self) -> Plan:
        return self.resolved.plan


def read_plan(path: str, seed: int | None = None) -> Plan:
    """The plan file at ``path``, or the shipped preset ``preset:NAME``
    (:mod:`inittui.presets`); ``seed`` (when given) replaces the plan's seed."""
    plan = load_preset(path) if is_preset(path) else load_plan(path)
    return plan if seed is None else plan.with_seed(seed)


def load_preset(path: str) -> Plan:
    """The preset ``preset:NAME`` as a plan; an unknown name is one line listing them."""
    name = preset_name(path)
    try:
        text = preset_text(name)
    except PresetError as exc:
        raise InittuiError(str(exc)) from None
    return parse_plan(text, path)


def open_model(
    target: str,
    kwargs: Mapping[str, object] | None = None,
    *,
    device: str | None = "cpu",
    dtype: str | None = None,
    checkpoint: str | None = None,
    seed: int | None = None,
    plan_path: str | None = None,
    keep_bad_plan: bool = True,
    freeze_heap: bool = False,
) -> OpenedModel:
    """Build ``target`` (the global RNG seeded by ``seed``, default 0), walk its tree and
    resolve the plan at ``plan_path`` (or an empty plan). A plan that cannot be read or
    resolved raises, unless ``keep_bad_plan``: then the model opens with an empty plan and
    ``plan_error`` says why (what the app wants: the model is still worth seeing).

    ``freeze_heap`` moves every object alive after the build out of the garbage
    collector's reach (``gc.freeze``): for a caller that keeps the model as long as it runs,
    it saves the collector walking a big model's modules and tensors again and again (a
    third of building a 10,000-module tree); ``gc.unfreeze`` hands them back."""
    loaded = load_model(
        target,
        dict(kwargs or {}),
        device=device,
        dtype=dtype,
        checkpoint=checkpoint,
        seed=seed or 0,
    )
    if freeze_heap:
        gc.freeze()
    tree = traced_tree(loaded)  # fans from one meta forward when inputs are known
    empty = Plan(seed=seed or 0)
    args = constructor_arguments(loaded)  # what expressions' arg.NAME read
    if plan_path:
        try:
            plan = read_plan(plan_path, seed)
            resolved = resolve_plan(plan, loaded.model, tree, constructor_args=args)
            return OpenedModel(loaded, tree, resolved)
        except InittuiError as exc:
            if not keep_bad_plan:
                raise
            return OpenedModel(loaded, tree, resolve_plan(empty, loaded.model, tree), str(exc))
    return OpenedModel(loaded, tree, resolve_plan(empty, loaded.model, tree))


def move_model(loaded: LoadedModel, device: str) -> tuple[LoadedModel, ModelTree]:
    """The model moved to ``device`` (``cpu``, ``cuda:1``, ``mps``...) and its new tree."""
    target = parse_device(device)
    model = move_to_device(loaded.model, target)
    moved = dataclasses.replace(loaded, model=model, device=target)
    return moved, traced_tree(moved)
