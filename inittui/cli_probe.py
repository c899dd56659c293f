"""The commands that run the model: ``preview``, ``check``, ``diff`` and ``lsuv`` (their
``--blocks K`` forms are in :mod:`inittui.cli_blocks`)."""

from __future__ import annotations

import argparse
import sys

from inittui.cli_common import (
    load,
    note_batch_moot,
    print_json,
    resolve,
    trace_input_options,
    user_error,
)

__all__ = ["cmd_check", "cmd_diff", "cmd_lsuv", "cmd_preview", "probe_run", "run_preview_for"]


def probe_run(args: argparse.Namespace):
    """Load, build inputs, probe current weights (and planned ones with --plan): a
    :class:`inittui.core.probe.PreviewRun`."""
    if args.batch is not None and args.batch < 1:
        raise user_error("--batch must be 1 or more")
    if args.plan:
        loaded, _tree, resolved = resolve(args)
    else:
        loaded, resolved = load(args), None
    if loaded.on_meta:
        raise user_error("the preview needs values: use --device cpu, cuda or mps, not meta")
    run = run_preview_for(args, loaded, resolved)
    note_batch_moot(args, run.result.inputs_source)
    return run


def run_preview_for(args: argparse.Namespace, loaded, resolved):
    """The preview of ``loaded`` (and of ``resolved`` applied) with the command's options:
    inputs, seed, backward, thresholds, mode; a progress bar on stderr. The model is the
    command's own: too big to copy, a plan is applied in place."""
    from inittui.core.probe import Thresholds, run_preview
    from inittui.render import StderrProgress

    with StderrProgress("preview") as progress:
        return run_preview(
            loaded,
            resolved,
            input_shapes=args.input_shape,
            input_dtype=args.input_dtype,
            inputs_file=args.inputs,
            batch=args.batch,
            seed=args.seed or 0,
            backward=args.backward,
            thresholds=Thresholds(vanishing=args.vanishing, exploding=args.exploding),
            train_mode=not args.eval,
            progress=progress,
            allow_in_place=True,
        )


def cmd_preview(args: argparse.Namespace) -> int:
    if args.blocks is not None:
        from inittui.cli_blocks import cmd_preview_blocks

        return cmd_preview_blocks(args, print_json)
    run = probe_run(args)
    if args.json:
        print_json(run.to_dict())
    else:
        from inittui.render import render_preview

        render_preview(run.result, run.comparison)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from inittui.core.probe import check_max_ratio, check_preview
    from inittui.core.probe.input_report import inputs_line

    if args.blocks is not None:
        from inittui.cli_blocks import cmd_check_blocks

        return cmd_check_blocks(args)
    check_max_ratio(args.max_ratio)
    result = probe_run(args).result
    verdict = check_preview(result, args.max_ratio)
    print(inputs_line(result.inputs, result.inputs_source))
    for line in verdict.lines():
        print(line)
    return 0 if verdict.passed else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from inittui.core.diff import check_sides, diff_preview, diff_states
    from inittui.core.fans import traced_tree
    from inittui.render import StderrProgress

    if args.batch is not None and args.batch < 1:
        raise user_error("--batch must be 1 or more")
    sides = check_sides(args.a, args.b, args.seed)  # a bad side fails before the build
    loaded = load(args)
    tree = traced_tree(loaded, *trace_input_options(args))
    with StderrProgress("diff") as progress:
        result = diff_states(loaded, *sides, tree=tree, seed=args.seed, progress=progress)
    if args.preview:
        options = dict(input_shapes=args.input_shape, input_dtype=args.input_dtype,
                       inputs_file=args.inputs, batch=args.batch, seed=args.seed or 0,
                       train_mode=not args.eval)  # fmt: skip
        result.preview = diff_preview(loaded, result, options)
        note_batch_moot(args, result.preview["inputs_source"])
    if args.json:
        print_json(result.to_dict())
    else:
        from inittui.render_diff import render_diff

        render_diff(result.to_dict())
    return 1 if args.fail_on_diff and result.differing else 0


def _positive_finite(value: float) -> bool:
    return value > 0 and value != float("inf")  # nan compares False


def cmd_lsuv(args: argparse.Namespace) -> int:
    from inittui.core.export import absolute, check_destination, write_text
    from inittui.core.plan import plan_to_toml
    from inittui.core.probe import lsuv, make_inputs
    from inittui.core.workspace import read_plan

    check_destination(args.plan_out, args.force, (".toml",), "plan")
    plan_out = absolute(args.plan_out)  # before model code, which may call os.chdir
    std = args.target_std
    if not (std > 0 and _positive_finite(std * std) and _positive_finite(args.tol)) or (
        args.max_iter < 1
    ):  # nan and inf too: the plan and the --json document must be finite
        raise user_error(
            "--target-std and --tol must be positive finite numbers (the variance "
            f"--target-std**2 too), --max-iter at least 1; got {args.target_std:g}, "
            f"{args.tol:g}, {args.max_iter}"
        )
    plan = read_plan(args.plan, args.seed) if args.plan else None
    built = None
    if args.blocks is not None:
        from inittui.cli_blocks import lsuv_blocks_load

        loaded, built = lsuv_blocks_load(args)
    else:
        loaded = load(args)
    if loaded.on_meta:
        raise user_error("LSUV needs values: use --device cpu, cuda or mps, not meta")
    if args.batch is not None and args.batch < 1:
        raise user_error("--batch must be 1 or more")
    inputs = make_inputs(
        loaded, args.input_shape, args.input_dtype, args.batch, args.seed or 0, args.inputs
    )
    note_batch_moot(args, inputs.source)
    result = lsuv(
        loaded.model,
        inputs,
        target_std=args.target_std,
        tol=args.tol,
        max_iter=args.max_iter,
        plan=plan,
    )
    write_text(plan_out, result.header() + plan_to_toml(result.plan), force=args.force)
    if args.json:
        print_json(result.to_dict() | ({"blocks": built.summary()} if built else {}))
    else:
        print(result.inputs_text)
        print(result.biases_text)
        print(f"target: variance {result.target_variance:g} (std {result.target_std:g}), "
              f"stop when |variance - {result.target_variance:g}| < {result.tol:g}")  # fmt: skip
        width = max((len(layer.path) for layer in result.layers), default=0)
        for layer in result.layers:
            mark = "ok" if layer.converged else "NOT converged"
            print(
                f"{layer.path:{width}s}  {layer.type:10s} iterations {layer.iterations:2d}  "
                f"variance {layer.first_variance:.4f} -> {layer.variance:.4f}  "
                f"std {layer.std:.4f}  scale {layer.scale:.4f}  {mark}"
            )
    print(f"wrote {args.plan_out}", file=sys.stderr)
    return 0
