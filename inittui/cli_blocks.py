"""``preview``/``check``/``lsuv --blocks K``: the commands on K of a model's repeated blocks,
built on meta (:mod:`inittui.core.probe.blocks`), with the per-block ratios and their
extrapolation to the full depth (:mod:`inittui.core.probe.block_ratios`)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from inittui.core.errors import InittuiError


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def blocks_load(args: argparse.Namespace, plan_option: str | None):
    """The meta build, the plan resolved on the full model, the kept blocks materialised:
    ``(loaded, built)`` with ``loaded`` on ``--device``."""
    from inittui.core.fans import traced_tree
    from inittui.core.loading import build_kwargs, load_model, parse_device
    from inittui.core.plan import resolve_plan
    from inittui.core.plan.expr_context import constructor_arguments
    from inittui.core.probe.blocks import (
        DEFAULT_PLAN,
        build_blocks,
        check_blocks_option,
        find_stack,
    )
    from inittui.core.workspace import read_plan
    from inittui.render import StderrProgress

    if args.blocks < 1:
        raise InittuiError(f"--blocks must be 1 or more, got {args.blocks}")
    if args.load:
        raise InittuiError("--blocks builds the model on meta: --load CKPT cannot go with it")
    device = parse_device(args.device)
    if device.type == "meta":
        raise InittuiError("--blocks needs values: use --device cpu, cuda or mps, not meta")
    plan = read_plan(plan_option, args.seed) if plan_option else None
    defaults_plan = read_plan(DEFAULT_PLAN, plan.seed if plan is not None else args.seed)
    kwargs = build_kwargs(args.arg, args.kwargs)
    with StderrProgress("building the model on meta"):
        loaded = load_model(args.target, kwargs, device="meta", dtype=args.dtype,
                            seed=args.seed or 0)  # fmt: skip
    found = find_stack(loaded.model)
    check_blocks_option(args.blocks, found[0] if found else None, loaded.model_class)
    tree = traced_tree(loaded, args.input_shape, args.input_dtype)
    given = constructor_arguments(loaded)
    defaults = resolve_plan(defaults_plan, loaded.model, tree, constructor_args=given)
    planned = defaults if plan is None else resolve_plan(plan, loaded.model, tree,
                                                         constructor_args=given)  # fmt: skip
    return build_blocks(loaded, args.blocks, planned, defaults, device, plan is not None)


def blocks_probe(args: argparse.Namespace):
    """The preview on the kept blocks: ``(run, built, extrapolation, meter)``."""
    from inittui.cli_probe import run_preview_for
    from inittui.core.probe.block_ratios import BlockMeter, extrapolate

    if args.batch is not None and args.batch < 1:
        raise InittuiError("--batch must be 1 or more")
    loaded, built = blocks_load(args, args.plan)
    meter = BlockMeter(built.blocks)
    meter.install()
    try:
        run = run_preview_for(args, loaded, None)
    finally:
        meter.remove()
    measures = meter.ordered()
    return run, built, extrapolate(measures, built.stack.total), measures


def blocks_document(built, extrapolation, measures) -> dict[str, Any]:
    """The ``blocks`` object of the ``--json`` documents (see docs/json.md)."""
    ex = extrapolation
    return {
        **built.summary(),
        "label": ex.label,
        "model": ex.model,
        "model_detail": ex.detail,
        "per_block": [m.to_dict() for m in measures],
        "std_in": _finite(ex.std_in),
        "final_std": _finite(ex.final_std),
        "final_ratio": _finite(ex.final_ratio),
        "grad_out_std": _finite(ex.grad_out),
        "grad_final_std": _finite(ex.grad_final),
        "grad_final_ratio": _finite(ex.grad_final_ratio),
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def block_lines(built, extrapolation, measures) -> list[str]:
    """The per-block ratios and the extrapolated numbers, each labelled."""
    lines = []
    for m in measures:
        grad = ""
        if m.grad_ratio is not None:
            grad = (f"; gradient {_fmt(m.grad_out_std)} -> {_fmt(m.grad_in_std)} "
                    f"(x{_fmt(m.grad_ratio)}, out -> in)")  # fmt: skip
        carry = f", carry {m.carry:.3f}" if m.carry is not None else ""
        lines.append(f"block {m.path}: std {_fmt(m.in_std)} -> {_fmt(m.out_std)} "
                     f"(x{_fmt(m.ratio)}){carry}{grad}")  # fmt: skip
    ex = extrapolation
    if ex.final_std is None:
        return [*lines, f"{ex.label}: nothing to extrapolate ({ex.detail})"]
    lines.append(
        f"{ex.label} ({ex.detail}): std after {ex.total} blocks ~ {_fmt(ex.final_std)}, "
        f"x{_fmt(ex.final_ratio)} the first block's input std {_fmt(ex.std_in)}"
    )
    if ex.grad_final is not None:
        lines.append(
            f"{ex.label}: gradient at the first block's input ~ {_fmt(ex.grad_final)}, "
            f"x{_fmt(ex.grad_final_ratio)} the last block's output gradient {_fmt(ex.grad_out)}"
        )
    return lines


def extrapolation_problems(extrapolation, max_ratio: float) -> list[str]:
    """check's verdicts on the full depth: the extrapolated std (and gradient) against the
    first block's input (the last block's output gradient) within ``[1/R, R]``."""
    ex, problems = extrapolation, []
    for what, ratio, value in (
        ("std after the last block", ex.final_ratio, ex.final_std),
        ("gradient at the first block", ex.grad_final_ratio, ex.grad_final),
    ):
        if ratio is None and value is None:
            continue
        if ratio is None or not (1 / max_ratio <= ratio <= max_ratio):
            problems.append(
                f"{what} ({ex.label}, {ex.model}) ~ {_fmt(value)}, x{_fmt(ratio)} its "
                f"start, beyond {max_ratio:g}x"
            )
    return problems


def cmd_preview_blocks(args: argparse.Namespace, print_json) -> int:
    run, built, ex, measures = blocks_probe(args)
    if args.json:
        document = run.to_dict()
        document["extrapolated"] = True
        document["blocks"] = blocks_document(built, ex, measures)
        print_json(document)
        return 0
    from inittui.render import render_preview

    for line in built.lines():
        print(line)
    render_preview(run.result, None)
    for line in block_lines(built, ex, measures):
        print(line)
    return 0


def cmd_check_blocks(args: argparse.Namespace) -> int:
    import dataclasses

    from inittui.core.probe import check_max_ratio, check_preview
    from inittui.core.probe.input_report import inputs_line

    check_max_ratio(args.max_ratio)
    run, built, ex, measures = blocks_probe(args)
    verdict = check_preview(run.result, args.max_ratio)
    extra = extrapolation_problems(ex, args.max_ratio)
    verdict = dataclasses.replace(verdict, problems=[*verdict.problems, *extra])
    for line in built.lines():
        print(line)
    print(inputs_line(run.result.inputs, run.result.inputs_source))
    for line in block_lines(built, ex, measures):
        print(line)
    for line in verdict.lines():
        print(line)
    return 0 if verdict.passed else 1


def lsuv_blocks_load(args: argparse.Namespace):
    """LSUV's model with ``--blocks``: the kept blocks, their build said on stderr."""
    loaded, built = blocks_load(args, args.plan)
    for line in built.lines():
        print(line, file=sys.stderr)
    return loaded, built
