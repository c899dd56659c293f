"""The reports behind ``inittui inspect`` and ``inittui plan``: their ``--json`` documents
(docs/json.md describes every key; tests/test_docs.py keeps the two in agreement)."""

from __future__ import annotations

from collections.abc import Callable

from inittui.core.codegen import draws_by_tiles
from inittui.core.fans import traced_tree
from inittui.core.loading import LoadedModel
from inittui.core.plan import ResolvedPlan
from inittui.core.prelude import tile_count
from inittui.core.provenance import summary as init_summary
from inittui.core.stats import TensorStats, compute_stats
from inittui.core.tree import ModelTree, ParamRecord, param_tensors


def model_stats(
    tree: ModelTree,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict[str, TensorStats | None]:
    """Statistics of every parameter that holds data, keyed by the parameter's first name."""
    return compute_stats(list(param_tensors(tree)), progress=progress, cancel=cancel)


def param_flags(record: ParamRecord, stats: TensorStats | None) -> list[str]:
    """Short markers a reader should notice: nan, inf, all-zero, constant, tied, lazy, fan."""
    flags = []
    if record.uninitialized:
        flags.append("lazy")
    if stats is not None:
        if stats.nan:
            flags.append(f"nan:{stats.nan}")
        if stats.inf:
            flags.append(f"inf:{stats.inf}")
        if stats.zero_fraction == 1.0:
            flags.append("zero")
        elif stats.std == 0.0:
            flags.append("const")
    if record.aliases:
        flags.append("tied")
    if record.fan_note:
        flags.append("fan?" if record.fan_note.startswith("unverified") else "fan*")
    return flags


def fan_keys(fan_in, fan_out, torch_in, torch_out, source) -> dict:
    """``fan_in``/``fan_out`` (the fans the schemes use), ``fan_source``, and torch's
    layout fans as ``torch_fan_in``/``torch_fan_out`` only where they differ."""
    keys = {"fan_in": fan_in, "fan_out": fan_out, "fan_source": source}
    if (fan_in, fan_out) != (torch_in, torch_out):
        keys.update(torch_fan_in=torch_in, torch_fan_out=torch_out)
    return keys


def split_keys(step) -> dict:
    """``split`` of ``plan --json``: the blocks' dim, sizes, fans and expected std."""
    draws = step.block_draws or ()
    return {
        "dim": step.block_dim,
        "sizes": [stop - start for start, stop in step.blocks],
        "fan_in": [d.fan_in for d in draws],
        "fan_out": [d.fan_out for d in draws],
        "expected_std": [d.expected.std for d in draws],
    }


def _stats_dict(stats: TensorStats | None) -> dict | None:
    return None if stats is None else stats.to_dict()


def inspect_report(
    loaded: LoadedModel,
    tree: ModelTree | None = None,
    stats: dict[str, TensorStats | None] | None = None,
    depth: int | None = None,
) -> dict:
    """The ``inspect --json`` document (docs/json.md)."""
    tree = tree or traced_tree(loaded)
    if stats is None:
        stats = model_stats(tree)
    # --depth limits the module list; parameters and buffers stay complete so that
    # total_params is always the sum of the listed parameters' numel.
    modules = [m for m in tree.modules if depth is None or m.depth <= depth]
    return {
        "target": loaded.target,
        "model_class": loaded.model_class,
        "device": str(loaded.device),
        "dtype": None if loaded.dtype is None else str(loaded.dtype).removeprefix("torch."),
        "total_params": tree.total_params,
        "modules": [
            {
                "path": m.path,
                "type": m.type,
                "depth": m.depth,
                "num_params": m.num_params,
                "own_params": m.own_params,
                "children": m.children,
                "aliases": m.aliases,
            }
            for m in modules
        ],
        "parameters": [
            {
                "name": p.name,
                "module": p.module,
                "module_type": p.module_type,
                "shape": None if p.shape is None else list(p.shape),
                "dtype": p.dtype,
                "device": p.device,
                "numel": p.numel,
                "requires_grad": p.requires_grad,
                **fan_keys(p.fan_in, p.fan_out, p.torch_fan_in, p.torch_fan_out, p.fan_source),
                "aliases": p.aliases,
                "uninitialized": p.uninitialized,
                "fan_note": p.fan_note,
                "flags": param_flags(p, stats.get(p.name)),
                "stats": _stats_dict(stats.get(p.name)),
                "init_calls": [call.to_dict() for call in p.init_calls],
                "init_flags": list(p.init_flags),
            }
            for p in tree.parameters
        ],
        "buffers": [
            {
                "name": b.name,
                "shape": None if b.shape is None else list(b.shape),
                "dtype": b.dtype,
                "persistent": b.persistent,
            }
            for b in tree.buffers
        ],
        "init_summary": init_summary(
            getattr(loaded, "provenance", None), [p.name for p in tree.parameters]
        ),
    }


def plan_report(loaded: LoadedModel, tree: ModelTree, resolved: ResolvedPlan) -> dict:
    """``inittui plan --json``: for every parameter, the deciding rule, scheme, fans and
    expected std; the rules; the lints."""
    parameters = []
    for record in tree.parameters:
        step = resolved.step_for(record.name)
        index = resolved.decided_by.get(record.name)
        entry = {
            "name": record.name,
            "aliases": record.aliases,
            "module_type": record.module_type,
            "shape": None if record.shape is None else list(record.shape),
            "rule": None if index is None else index + 1,
            "scheme": None if index is None else resolved.plan.rules[index].scheme,
            **fan_keys(
                record.fan_in,
                record.fan_out,
                record.torch_fan_in,
                record.torch_fan_out,
                record.fan_source,
            ),
        }
        if step is not None:
            entry.pop("torch_fan_in", None)
            entry.pop("torch_fan_out", None)
            entry.update(
                {
                    "scheme": step.scheme,
                    "args": step.kwargs,
                    "from_default": step.from_default,
                    "per_gate": step.gates,
                    "scale": step.scale,
                    **fan_keys(
                        step.fan_in,
                        step.fan_out,
                        step.torch_fan_in,
                        step.torch_fan_out,
                        step.fan_source,
                    ),
                    "expected_mean": step.expected.mean if step.expected else None,
                    "expected_std": step.expected.std if step.expected else None,
                    "expected_bound": step.expected.bound if step.expected else None,
                    "formula": step.expected.formula if step.expected else None,
                    "seed": step.seed,
                }
            )
            if step.expressions:
                entry["expressions"] = {
                    key: {"expression": text, "value": value}
                    for key, text, value in step.expressions
                }
            if step.blocks and not step.gates:
                entry["split"] = split_keys(step)
            if draws_by_tiles(step, resolved.plan.draw_scheme):
                entry["tiles"] = tile_count(step.shape)
        parameters.append(entry)
    return {
        "target": loaded.target,
        "model_class": loaded.model_class,
        "seed": resolved.plan.seed,
        "draw_scheme": resolved.plan.draw_scheme,
        "rules": [
            {"index": i + 1, **rule.to_toml_dict()} for i, rule in enumerate(resolved.plan.rules)
        ],
        "parameters": parameters,
        "lints": [
            {
                "kind": lint.kind,
                "param": lint.param,
                "severity": lint.severity,
                "message": lint.message,
            }
            for lint in resolved.lints
        ],
    }
