"""The command line's grammar: the argparse parsers of ``inittui`` and its subcommands
(only ``argparse`` is imported here, so ``--help`` stays instant). :mod:`inittui.cli` gives
each subcommand its handler and runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

_Subparsers = argparse._SubParsersAction  # noqa: SLF001 - argparse's own return type

SUBCOMMANDS = ("inspect", "plan", "export", "preview", "check", "lsuv", "serve", "diff", "presets")

DESCRIPTION = """\
inittui: inspect, plan, preview and export PyTorch weight initialization.

  inittui TARGET [options] [--plan P]      open the terminal UI
  inittui inspect TARGET [--json] [--depth N]
                                           tree, shapes, fans, statistics
  inittui plan TARGET --plan P [--json]    which rule decides each parameter, fans,
                                           expected std, lints
  inittui export TARGET --plan P [--script OUT.py] [--checkpoint OUT.pt|.safetensors]
                                 [--plan-out OUT.toml] [--seed N] [--force]
  inittui preview TARGET [--plan P] [--backward] [--json]
                                           per-layer forward/backward variance
  inittui check TARGET [--plan P] [--max-ratio R]
                                           exit 1 if variance drifts beyond R per layer
  inittui lsuv TARGET --plan-out OUT.toml  LSUV: data-driven scales, written as a plan
  inittui serve TARGET [--port N]          the TUI in a browser (localhost)
  inittui diff TARGET A B [--preview] [--json]
                                           two states per parameter (plan, preset:NAME,
                                           checkpoint or current): std, ratio, KS
  inittui presets [NAME] [--json]          the shipped plans (--plan preset:NAME); NAME
                                           prints its TOML

TARGET is path/to/file.py:Name or package.module:Name, where Name is an nn.Module
subclass, a callable returning a module, or a module instance. A plan P is a TOML file
or a shipped preset, preset:NAME (inittui presets lists them).
"""


INPUTS_HELP = (
    "feed this batch: .pt (torch.load weights_only) or .safetensors holding a tensor, a "
    "tuple/list of tensors (positional) or a dict of tensors (keyword arguments)"
)


BATCH_HELP = (
    "batch size of inputs inferred from the first layer (default 8); moot with the "
    "model file's example_inputs, --input-shape or --inputs"
)


def version() -> str:
    """The installed distribution's version, else the package's ``__version__``."""
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version("inittui")
    except (ImportError, PackageNotFoundError):
        from inittui import __version__

        return __version__


class UsageError(Exception):
    """argparse's complaints, turned into our one-line error with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; see {self.prog} --help")


def _seed(text: str) -> int:
    """``--seed``: an integer 0..2**64 - 1, as in a plan (torch generators take 64 bits)."""
    from inittui.core.limits import seed_too_large

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer 0 or more, got {text!r}")
    problem = seed_too_large(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def _common_options() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    group = common.add_argument_group("model options")
    group.add_argument(
        "target", metavar="TARGET", help="path/to/file.py:Name or package.module:Name"
    )
    group.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="constructor argument (repeatable; VALUE is a Python literal, else a string)",
    )
    group.add_argument("--kwargs", metavar="JSON", help="constructor arguments as a JSON object")
    group.add_argument("--load", metavar="CKPT", help="load weights from .pt/.pth or .safetensors")
    group.add_argument(
        "--device", default="cpu", help="cpu, cuda, cuda:N, mps or meta (default cpu)"
    )
    group.add_argument("--dtype", help="float32, float64, bfloat16 or float16")
    group.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="SHAPE",
        help="input shape like 8,3,32,32 (repeatable, one per positional input)",
    )
    group.add_argument(
        "--input-dtype",
        metavar="DTYPE[,DTYPE...]",
        help="dtype of the inputs: one for all, or one per --input-shape in order "
        "(e.g. float32,long for an image and token ids)",
    )
    group.add_argument("--seed", type=_seed, help="seed for plans and generated inputs")
    group.add_argument("--debug", action="store_true", help="show tracebacks")
    return common


def build_parser(handlers: Mapping[str, Callable[[argparse.Namespace], int]]) -> _Parser:
    """``inittui COMMAND ...``: one subparser per command, ``handler`` set from ``handlers``."""
    common = _common_options()
    parser = _Parser(
        prog="inittui",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"inittui {version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    probe = _probe_options()
    for name in SUBCOMMANDS:
        _ADDERS[name](sub, common, probe).set_defaults(handler=handlers[name])
    return parser


def _add_inspect(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    inspect_cmd = sub.add_parser(
        "inspect",
        parents=[common],
        help="tree, shapes, fans, statistics",
        description="Show the module tree, every parameter's shape, fan_in/fan_out and statistics.",
    )
    inspect_cmd.add_argument("--json", action="store_true", help="print the JSON document only")
    inspect_cmd.add_argument("--depth", type=int, metavar="N", help="show modules up to depth N")
    inspect_cmd.add_argument("--no-stats", action="store_true", help="skip statistics (faster)")
    return inspect_cmd


def _add_plan(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    plan_cmd = sub.add_parser(
        "plan",
        parents=[common],
        help="explain a plan per parameter",
        description="Resolve a plan on the model: for every parameter, "
        "the rule that decides it, the scheme, fans and expected std; "
        "then the lints.",
    )
    plan_cmd.add_argument("--plan", required=True, metavar="PLAN", help="plan file (TOML)")
    plan_cmd.add_argument("--json", action="store_true", help="print JSON only")
    plan_cmd.add_argument(
        "--explain",
        action="store_true",
        help="also list parameters no rule decides (the default view lists decided ones)",
    )
    return plan_cmd


def _add_export(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    export_cmd = sub.add_parser(
        "export",
        parents=[common],
        help="write init script, checkpoint, plan",
        description="Apply a plan and write a "
        "standalone init script, a checkpoint and/or the plan.",
    )
    export_cmd.add_argument("--plan", required=True, metavar="PLAN", help="plan file (TOML)")
    export_cmd.add_argument("--script", metavar="OUT.py", help="write the init script here")
    export_cmd.add_argument("--checkpoint", metavar="OUT", help="write .pt or .safetensors")
    export_cmd.add_argument("--plan-out", metavar="OUT.toml", help="write the plan here")
    export_cmd.add_argument("--force", action="store_true", help="overwrite existing files")
    return export_cmd


def _add_preview(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    preview_cmd = sub.add_parser(
        "preview",
        parents=[common, probe],
        help="per-layer forward/backward variance",
        description="Run one forward (and with --backward one "
        "backward) pass and show each layer's output std.",
    )
    preview_cmd.add_argument("--json", action="store_true", help="print JSON only")
    return preview_cmd


def _add_check(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    check_cmd = sub.add_parser(
        "check",
        parents=[common, probe],
        help="exit 1 if variance drifts beyond --max-ratio",
        description="For CI: exit 1 when a flag fires or any layer's output std leaves "
        "[1/R, R] times its reference's (the input, or the last embedding or normalization), "
        "or its own input's times what its type and weights should give, or a residual "
        "stream outgrows its stack; with --backward the same for gradients. Else 0.",
    )
    check_cmd.add_argument(
        "--max-ratio",
        type=float,
        default=10.0,
        metavar="R",
        help="allowed factor either way for every rule (default 10)",
    )
    return check_cmd


def _add_lsuv(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    lsuv_cmd = sub.add_parser(
        "lsuv",
        parents=[common],
        help="LSUV init written as a plan",
        description="Layer-sequential unit-variance init (Mishkin & "
        "Matas 2016): orthogonal weights and zero biases, then per-layer scales until "
        "each Linear/Conv output variance is within --tol of the target; written as a "
        "plan that says which inputs it was calibrated on.",
    )
    lsuv_cmd.add_argument("--plan", metavar="PLAN", help="start from this plan")
    lsuv_cmd.add_argument("--plan-out", required=True, metavar="OUT.toml", help="write here")
    lsuv_cmd.add_argument(
        "--target-std",
        type=float,
        default=1.0,
        metavar="STD",
        help="each layer's output std; the target variance is its square (default %(default)g)",
    )
    lsuv_cmd.add_argument(
        "--tol",
        type=float,
        default=0.1,
        metavar="TOL",
        help="stop when |output variance - target variance| < TOL (default %(default)g)",
    )
    lsuv_cmd.add_argument(
        "--max-iter",
        type=int,
        default=10,
        metavar="N",
        help="rescalings per layer at most (default %(default)s)",
    )
    lsuv_cmd.add_argument("--batch", type=int, metavar="N", help=BATCH_HELP)
    lsuv_cmd.add_argument("--inputs", metavar="FILE", help=INPUTS_HELP)
    lsuv_cmd.add_argument("--blocks", type=int, metavar="K", help=BLOCKS_HELP)
    lsuv_cmd.add_argument("--force", action="store_true", help="overwrite --plan-out")
    lsuv_cmd.add_argument("--json", action="store_true", help="print JSON only")
    return lsuv_cmd


def _add_serve(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    serve_cmd = sub.add_parser(
        "serve",
        parents=[common],
        help="the TUI in a browser",
        description="Serve the TUI in a browser with textual-serve. The printed URL carries a "
        "token: only who has it can open the page.",
    )
    serve_cmd.add_argument("--plan", metavar="PLAN", help="open this plan file in each tab")
    serve_cmd.add_argument(
        "--host",
        default="localhost",
        help="bind address (default %(default)s); any other address is reachable from the network",
    )
    serve_cmd.add_argument(
        "--port",
        type=int,
        default=8000,
        metavar="N",
        help="port (default %(default)s); 0 picks any free port",
    )
    serve_cmd.add_argument(
        "--max-sessions",
        type=int,
        default=4,
        metavar="N",
        help="browser tabs served at once, each its own process (default %(default)s)",
    )
    return serve_cmd


def _add_diff(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    diff_cmd = sub.add_parser(
        "diff",
        parents=[common],
        help="compare two states per parameter",
        description="Compare two states of the model per parameter: A and B are each a plan "
        "file (.toml), preset:NAME, a checkpoint (.pt, .pth, .safetensors) or current (the "
        "model as built). Shows each side's mean and std, the std ratio B/A, the "
        "Kolmogorov-Smirnov distance and flags where they differ beyond sampling error. "
        "Exit status 0 (a report) unless --fail-on-diff.",
    )
    diff_cmd.add_argument("a", metavar="A", help="plan .toml, preset:NAME, checkpoint or current")
    diff_cmd.add_argument("b", metavar="B", help="the same forms as A")
    diff_cmd.add_argument("--json", action="store_true", help="print JSON only")
    diff_cmd.add_argument(
        "--preview", action="store_true", help="also each side's per-layer output std"
    )
    diff_cmd.add_argument(
        "--fail-on-diff",
        action="store_true",
        help="exit 1 when any parameter differs beyond sampling error (for CI)",
    )
    diff_cmd.add_argument("--batch", type=int, metavar="N", help=BATCH_HELP)
    diff_cmd.add_argument("--inputs", metavar="FILE", help=INPUTS_HELP)
    diff_cmd.add_argument(
        "--eval", action="store_true", help="preview in eval mode (default: train mode)"
    )
    return diff_cmd


BLOCKS_HELP = (
    "build the model on meta and run only the first K of its repeated blocks (a 70B config "
    "on a laptop); per-block ratios extrapolated to the full depth, labelled as such"
)


def _probe_options() -> _Parser:
    """The options preview and check share."""
    probe_options = _Parser(add_help=False)
    group = probe_options.add_argument_group("preview options")
    group.add_argument("--blocks", type=int, metavar="K", help=BLOCKS_HELP)
    group.add_argument("--plan", metavar="PLAN", help="also preview the model with this plan")
    group.add_argument(
        "--backward", action="store_true", help="one backward pass: output-gradient std per layer"
    )
    group.add_argument("--batch", type=int, metavar="N", help=BATCH_HELP)
    group.add_argument("--inputs", metavar="FILE", help=INPUTS_HELP)
    group.add_argument(
        "--vanishing",
        type=float,
        default=0.1,
        metavar="X",
        help="flag a layer whose output std falls below X times the input's (default %(default)g)",
    )
    group.add_argument(
        "--exploding",
        type=float,
        default=10.0,
        metavar="X",
        help="flag a layer whose output std rises above X times the input's (default %(default)g)",
    )
    mode = group.add_mutually_exclusive_group()
    mode.add_argument(
        "--eval",
        action="store_true",
        help="probe in eval mode: normalization uses its running statistics (default: batch "
        "statistics, dropout off)",
    )
    mode.add_argument("--train", action="store_true", help="the default mode, stated")
    return probe_options


def build_tui_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="inittui", parents=[_common_options()], description="Open the terminal UI on a model."
    )
    parser.add_argument("--plan", metavar="PLAN", help="open this plan file")
    return parser


def _add_presets(sub: _Subparsers, common: _Parser, probe: _Parser) -> _Parser:
    presets_cmd = sub.add_parser(
        "presets",
        help="the shipped plans (preset:NAME)",
        description="List the plans shipped with inittui, one line each; --plan preset:NAME "
        "uses one wherever a plan file is accepted. With NAME, print its TOML to start from.",
    )
    presets_cmd.add_argument("name", nargs="?", metavar="NAME", help="print this preset's TOML")
    presets_cmd.add_argument("--json", action="store_true", help="print the listing as JSON")
    presets_cmd.add_argument("--debug", action="store_true", help="show tracebacks")
    return presets_cmd


_ADDERS: dict[str, Callable[[_Subparsers, _Parser, _Parser], _Parser]] = {
    "inspect": _add_inspect,
    "plan": _add_plan,
    "export": _add_export,
    "preview": _add_preview,
    "check": _add_check,
    "lsuv": _add_lsuv,
    "serve": _add_serve,
    "diff": _add_diff,
    "presets": _add_presets,
}
