"""What the headless commands share: loading the model, resolving the plan, the traced
inputs' options, printing JSON, a user error, the ``--batch`` note."""

from __future__ import annotations

import argparse
import gc
import sys

__all__ = [
    "load",
    "note_batch_moot",
    "print_json",
    "resolve",
    "trace_input_options",
    "user_error",
]


def load(args: argparse.Namespace):
    from inittui.core.loading import build_kwargs, load_model
    from inittui.render import StderrProgress

    kwargs = build_kwargs(args.arg, args.kwargs)
    with StderrProgress("loading the model"):  # a pulsing bar: construction can take a while
        loaded = load_model(
            args.target,
            kwargs,
            device=args.device,
            dtype=args.dtype,
            checkpoint=args.load,
            seed=args.seed or 0,
        )
    # The model lives as long as the command: keep the garbage collector from walking its
    # modules and tensors again and again (a third of building a 10,000-module tree).
    gc.freeze()
    return loaded


def resolve(args: argparse.Namespace, loaded=None):
    """Load the plan (first: a bad plan fails before the model is built), then resolve."""
    from inittui.core.fans import traced_tree
    from inittui.core.plan import resolve_plan
    from inittui.core.plan.expr_context import constructor_arguments
    from inittui.core.workspace import read_plan

    plan = read_plan(args.plan, args.seed)
    loaded = loaded or load(args)
    tree = traced_tree(loaded, *trace_input_options(args))
    args_given = constructor_arguments(loaded)  # what expressions' arg.NAME read
    return loaded, tree, resolve_plan(plan, loaded.model, tree, constructor_args=args_given)


def trace_input_options(args: argparse.Namespace) -> tuple:
    """The inputs of the fans' traced forward: ``--input-shape``/``--input-dtype`` where
    the command has them (inittui.core.fans.traced_tree)."""
    return getattr(args, "input_shape", None), getattr(args, "input_dtype", None)


def print_json(document: dict) -> None:
    import json

    from inittui.core.streams import our_stdout

    our_stdout().write(json.dumps(document, indent=2, allow_nan=False, default=str) + "\n")


def user_error(message: str) -> Exception:
    from inittui.core.errors import InittuiError

    return InittuiError(message)


def note_batch_moot(args: argparse.Namespace, source: str | None) -> None:
    """``--batch`` sizes only inputs inferred from the first layer: say so when the inputs
    came from elsewhere (example_inputs, --input-shape, --inputs)."""
    if args.batch is not None and source and not source.startswith("inferred"):
        where = source.split()[0] if source.startswith("--") else source
        print(f"note: --batch {args.batch} is not used: the inputs come from {where}",
              file=sys.stderr)  # fmt: skip
