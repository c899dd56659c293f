"""``inittui diff TARGET A B``: two states of one model's parameters compared per parameter.

A side is a plan file (``.toml``), ``preset:NAME``, a checkpoint (``.pt``, ``.pth``,
``.safetensors``) or ``current`` (the model as built). :func:`materialize_side` turns it
into the model's parameter values: ``current`` as built; a plan (or preset) as built, then
applied (:func:`inittui.core.apply.apply_plan`, what export and the checkpoint give; the
parameters it does not decide keep their built values); a checkpoint loaded into a copy.
:func:`diff_states` compares two sides (specs, :class:`Side` objects, a resolved plan such
as the TUI's working plan, or state dicts) with :mod:`inittui.core.diff_stats`;
:func:`diff_preview` runs the preview on both.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inittui.core.diff_stats import KS_ALPHA, KS_MAX_VALUES, SIGMAS, ParamDiff, compare_param
from inittui.core.errors import InittuiError
from inittui.core.loading import LoadedModel
from inittui.core.plan import ResolvedPlan, resolve_plan
from inittui.core.tree import ModelTree

SIDE_FORMS = (
    "a plan file (.toml), preset:NAME, a checkpoint (.pt, .pth or .safetensors) or the word "
    "current (the model as built)"
)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
KINDS = ("current", "plan", "preset", "checkpoint")


@dataclass(frozen=True)
class SideSpec:
    """What one side of a diff is: ``kind`` (``current``, ``plan``, ``preset``,
    ``checkpoint``) and ``source`` (as the user wrote it)."""

    kind: str
    source: str


def parse_side(text: str, label: str = "side") -> SideSpec:
    """``current``, ``preset:NAME``, ``*.toml``, ``*.pt``/``*.pth``/``*.safetensors``; else
    an :class:`InittuiError` listing the forms."""
    if text == "current":
        return SideSpec("current", text)
    if text.startswith("preset:"):
        return SideSpec("preset", text)
    suffix = Path(text).suffix.lower()
    if suffix == ".toml":
        return SideSpec("plan", text)
    if suffix in CHECKPOINT_SUFFIXES:
        return SideSpec("checkpoint", text)
    raise InittuiError(f"cannot tell what {label} {text!r} is; give {SIDE_FORMS}")


def check_sides(a: str, b: str, seed: int | None = None) -> tuple[SideSpec, SideSpec]:
    """Both sides parsed, their plans read and their checkpoints found, before any model is
    built: a typo is one line at once."""
    specs = (parse_side(a, "A"), parse_side(b, "B"))
    for label, spec in zip("AB", specs, strict=True):
        if spec.kind in ("plan", "preset"):
            from inittui.core.workspace import read_plan

            read_plan(spec.source, seed)
        elif spec.kind == "checkpoint":
            _checkpoint_exists(spec.source, label)
    return specs


def _checkpoint_exists(path: str, label: str) -> None:
    if not Path(path).expanduser().exists():
        raise InittuiError(f"checkpoint {path!r} (side {label}) not found; check the path")


@dataclass
class Side:
    """One side's parameter values, by first name (every unique parameter with data)."""

    kind: str
    source: str
    state: dict[str, torch.Tensor] = field(repr=False)
    resolved: ResolvedPlan | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source}


SideInput = str | SideSpec | Side | ResolvedPlan | Mapping[str, torch.Tensor]


def current_state(tree: ModelTree) -> dict[str, torch.Tensor]:
    """The model's own parameter tensors (no copy), by first name."""
    return {
        r.name: r.tensor.detach() for r in tree.parameters if r.has_data and r.tensor is not None
    }


def _params_of(model: nn.Module, tree: ModelTree) -> dict[str, torch.Tensor]:
    named = dict(model.named_parameters(remove_duplicate=False))
    return {
        r.name: named[r.name].detach() for r in tree.parameters if r.has_data and r.name in named
    }


def side_from_resolved(
    loaded: LoadedModel,
    tree: ModelTree,
    resolved: ResolvedPlan,
    kind: str = "plan",
    source: str = "working plan",
) -> Side:
    """The model as built with ``resolved`` applied to a copy (the model keeps its values)."""
    from inittui.core.apply import apply_plan

    _need_values(loaded)
    planned = copy.deepcopy(loaded.model)
    apply_plan(planned, resolved)
    return Side(kind, source, _params_of(planned, tree), resolved)


def materialize_side(
    loaded: LoadedModel,
    tree: ModelTree,
    spec: str | SideSpec,
    seed: int | None = None,
    label: str = "side",
) -> Side:
    """One side's values (see the module docstring). ``seed``, when given, replaces a
    plan's seed, as ``--seed`` does for the other commands."""
    if isinstance(spec, str):
        spec = parse_side(spec, label)
    if spec.kind == "current":
        _need_values(loaded)
        return Side("current", spec.source, current_state(tree))
    if spec.kind in ("plan", "preset"):
        from inittui.core.workspace import read_plan

        plan = read_plan(spec.source, seed)
        resolved = resolve_plan(plan, loaded.model, tree)
        return side_from_resolved(loaded, tree, resolved, spec.kind, spec.source)
    from inittui.core.checkpoints import load_checkpoint

    _need_values(loaded)
    _checkpoint_exists(spec.source, label)
    loaded_copy = copy.deepcopy(loaded.model)
    load_checkpoint(loaded_copy, spec.source)
    return Side("checkpoint", spec.source, _params_of(loaded_copy, tree))


def _need_values(loaded: LoadedModel) -> None:
    if loaded.on_meta:
        raise InittuiError("diff needs values: use --device cpu, cuda or mps, not meta")


def _as_side(
    loaded: LoadedModel, tree: ModelTree, side: SideInput, seed: int | None, label: str
) -> Side:
    if isinstance(side, Side):
        return side
    if isinstance(side, ResolvedPlan):
        return side_from_resolved(loaded, tree, side)
    if isinstance(side, (str, SideSpec)):
        return materialize_side(loaded, tree, side, seed, label)
    return Side("state", "state dict", {k: v.detach() for k, v in side.items()})


@dataclass
class DiffResult:
    """Every parameter's comparison, in model order, and the preview rows (``--preview``)."""

    target: str
    model_class: str
    seed: int
    a: Side
    b: Side
    params: list[ParamDiff]
    preview: dict[str, Any] | None = None

    @property
    def differing(self) -> list[ParamDiff]:
        return [p for p in self.params if p.differs]

    def summary(self) -> dict[str, Any]:
        return {
            "parameters": len(self.params),
            "differ": sum(p.differs for p in self.params),
            "identical": sum(p.identical for p in self.params),
            "subsampled": sum("subsampled" in p.flags for p in self.params),
            "sigmas": SIGMAS,
            "ks_alpha": KS_ALPHA,
            "ks_max_values": KS_MAX_VALUES,
        }

    def summary_line(self) -> str:
        s = self.summary()
        return (
            f"{s['differ']} of {s['parameters']} parameters differ beyond sampling error "
            f"({s['identical']} identical)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``diff --json`` document."""
        document = {
            "target": self.target,
            "model_class": self.model_class,
            "seed": self.seed,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "parameters": [p.to_dict() for p in self.params],
            "summary": self.summary(),
        }
        if self.preview is not None:
            document["preview"] = self.preview
        return document


def diff_states(
    loaded: LoadedModel,
    a: SideInput,
    b: SideInput,
    *,
    tree: ModelTree | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DiffResult:
    """Compare two sides of ``loaded``'s model per unique parameter (first name, tied
    aliases listed once), in model order. A side is a spec (``"current"``, a plan path,
    ``"preset:NAME"``, a checkpoint path), a :class:`Side`, a resolved plan (the TUI's
    working plan: applied to a copy) or a state dict by parameter name (names it lacks keep
    the model's values). ``progress(done, total)`` counts parameters."""
    from inittui.core.stats import compute_stats

    if tree is None:
        from inittui.core.fans import traced_tree

        tree = traced_tree(loaded)
    side_a = _as_side(loaded, tree, a, seed, "A")
    side_b = _as_side(loaded, tree, b, seed, "B")
    own = current_state(tree)
    records = [r for r in tree.parameters if r.name in own]
    values_a = [side_a.state.get(r.name, own[r.name]) for r in records]
    values_b = [side_b.state.get(r.name, own[r.name]) for r in records]
    stats_a = compute_stats([(r.name, t) for r, t in zip(records, values_a, strict=True)])
    stats_b = compute_stats([(r.name, t) for r, t in zip(records, values_b, strict=True)])
    params = []
    with torch.no_grad():
        for done, (record, x, y) in enumerate(zip(records, values_a, values_b, strict=True)):
            name = record.name
            params.append(
                compare_param(name, list(record.aliases), x, y, stats_a[name], stats_b[name])
            )
            if progress is not None:
                progress(done + 1, len(records))
    seed_used = seed if seed is not None else 0
    return DiffResult(loaded.target, loaded.model_class, seed_used, side_a, side_b, params)


@contextmanager
def _values_of(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """The model's parameters hold ``state``'s tensors (swapped in, not copied) inside."""
    named = dict(model.named_parameters(remove_duplicate=False))
    saved = {}
    try:
        for name, tensor in state.items():
            param = named.get(name)
            if param is not None and param.shape == tensor.shape and param.dtype == tensor.dtype:
                saved[name] = param.data
                param.data = tensor
        yield
    finally:
        for name, data in saved.items():
            named[name].data = data


def diff_preview(
    loaded: LoadedModel, result: DiffResult, preview_options: Mapping[str, Any]
) -> dict[str, Any]:
    """The preview (:func:`inittui.core.probe.run_preview`) with each side's values; its
    leaf calls paired: ``{"inputs_source", "layers": [{"path", "type", "call", "a_std",
    "b_std", "ratio"}]}``. ``preview_options`` are run_preview's keywords (inputs, seed,
    train mode...). The model keeps its values."""
    from inittui.core.probe import run_preview

    runs = []
    for side in (result.a, result.b):
        with _values_of(loaded.model, side.state):
            runs.append(run_preview(loaded, None, **preview_options).result)
    current, other = runs
    by_key = {(layer.path, layer.call): layer for layer in other.layers}
    leaves = [layer for layer in current.layers if layer.leaf] or list(current.layers)
    layers = []
    for layer in leaves:
        match = by_key.get((layer.path, layer.call))
        a_std = _finite(layer.out_std)
        b_std = _finite(match.out_std) if match is not None else None
        layers.append(
            {
                "path": layer.path,
                "type": layer.type,
                "call": layer.call,
                "a_std": a_std,
                "b_std": b_std,
                "ratio": b_std / a_std if a_std and b_std is not None else None,
            }
        )
    return {"inputs_source": current.inputs_source, "layers": layers}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
