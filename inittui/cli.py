"""Command line: ``inittui TARGET`` opens the TUI; subcommands run the same core headless.

Heavy imports (torch, rich, textual) are deferred into the commands so that ``--help`` is
instant. Bad input: exit status 2 and one line ``error: ...`` on stderr; a traceback only
with ``--debug``.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence

from inittui.cli_common import load as _load
from inittui.cli_common import print_json as _print_json
from inittui.cli_common import resolve as _resolve
from inittui.cli_common import trace_input_options as _trace_input_options
from inittui.cli_common import user_error as _user_error
from inittui.cli_parser import SUBCOMMANDS, UsageError, build_tui_parser
from inittui.cli_parser import build_parser as _build_parser
from inittui.cli_probe import cmd_check as _cmd_check
from inittui.cli_probe import cmd_diff as _cmd_diff
from inittui.cli_probe import cmd_lsuv as _cmd_lsuv
from inittui.cli_probe import cmd_preview as _cmd_preview

__all__ = ["SUBCOMMANDS", "UsageError", "build_parser", "build_tui_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``inittui COMMAND`` parser, each subcommand with its handler here."""
    return _build_parser(HANDLERS)


# --------------------------------------------------------------------------- commands


def _cmd_plan(args: argparse.Namespace) -> int:
    from inittui.core.plan import nonfinite_lints
    from inittui.core.summary import model_stats, plan_report

    loaded, tree, resolved = _resolve(args)
    resolved = resolved.with_lints(nonfinite_lints(model_stats(tree)))
    report = plan_report(loaded, tree, resolved)
    if args.json:
        _print_json(report)
    else:
        from inittui.render import render_plan

        render_plan(report, show_undecided=args.explain)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from inittui.core.export import ExportPaths, check_outputs, export_outputs

    paths = ExportPaths(args.script, args.checkpoint, args.plan_out)
    if not paths.items():
        raise _user_error(
            "nothing to export; give --script OUT.py, --checkpoint OUT.pt "
            "or OUT.safetensors, and/or --plan-out OUT.toml"
        )
    # Check every destination before loading anything: no work is wasted, nothing is written.
    # Write to the absolute paths: model code that calls os.chdir cannot redirect them.
    absolute = check_outputs(paths, args.force, meta_device=args.device == "meta")
    loaded, _tree, resolved = _resolve(args)
    written = export_outputs(
        loaded.model,
        resolved,
        absolute,
        target=loaded.target,
        model_class=loaded.model_class,
        force=args.force,
        copy_model=False,  # the process ends here: no second copy of a big model
    )
    for lint in resolved.lints:
        if lint.severity == "warning":
            print(f"warning: {lint.message}", file=sys.stderr)
    from pathlib import Path

    for (_, given), _path in zip(paths.items(), written, strict=True):
        print(f"wrote {Path(given).expanduser()}", file=sys.stderr)  # as the user wrote it
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from inittui.core.fans import traced_tree
    from inittui.core.summary import inspect_report, model_stats

    if args.depth is not None and args.depth < 0:
        raise _user_error("--depth must be 0 or more")
    loaded = _load(args)
    tree = traced_tree(loaded, *_trace_input_options(args))
    if args.no_stats:
        stats = {}
    else:
        from inittui.render import StderrProgress

        with StderrProgress("statistics") as progress:
            stats = model_stats(tree, progress=progress)
    report = inspect_report(loaded, tree, stats, depth=args.depth)
    if args.json:
        _print_json(report)
    else:
        from inittui.render import render_inspect

        render_inspect(report)
    return 0


def _precheck(args: argparse.Namespace) -> dict[str, object]:
    """Check the options the TUI would only reject later, so a typo is one line."""
    from inittui.core.loading import build_kwargs, parse_device, parse_dtype, split_target
    from inittui.core.probe import parse_input_dtypes, parse_input_shape

    split_target(args.target)
    kwargs = build_kwargs(args.arg, args.kwargs)
    parse_device(args.device)
    parse_dtype(args.dtype)
    for shape in args.input_shape:
        parse_input_shape(shape)
    if args.input_dtype:
        parse_input_dtypes(args.input_dtype)
    return kwargs


def _cmd_serve(args: argparse.Namespace) -> int:
    from inittui.core.workspace import read_plan

    if not 0 <= args.port < 65536:
        raise _user_error(f"--port must be 0..65535 (0: any free port), got {args.port}")
    if args.max_sessions < 1:
        raise _user_error(f"--max-sessions must be at least 1, got {args.max_sessions}")
    _precheck(args)
    if args.plan:
        read_plan(args.plan)
    from inittui.tui.serve import bind, serve

    sock = bind(args.host, args.port)  # a taken port fails now, before the model is built
    # Each browser tab builds the model: build it here once, so a wrong TARGET, --arg or
    # --load is one line now rather than an error inside every tab; then let it go.
    loaded = _load(args)
    del loaded
    gc.unfreeze()
    gc.collect()

    argv = [args.target]
    for item in args.arg:
        argv += ["--arg", item]
    for flag, value in (
        ("--kwargs", args.kwargs),
        ("--load", args.load),
        ("--device", args.device),
        ("--dtype", args.dtype),
        ("--plan", args.plan),
        ("--input-dtype", args.input_dtype),
        ("--seed", args.seed),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for shape in args.input_shape:
        argv += ["--input-shape", shape]
    serve(argv, host=args.host, port=args.port, max_sessions=args.max_sessions, sock=sock)
    return 0


def _cmd_tui(args: argparse.Namespace) -> int:
    # Check what can be checked before the screen takes over, so a typo is one line.
    kwargs = _precheck(args)
    _require_terminal()
    from inittui.tui.app import run_app

    return run_app(
        args.target,
        kwargs,
        device=args.device,
        dtype=args.dtype,
        checkpoint=args.load,
        plan_path=args.plan,
        input_shapes=args.input_shape,
        input_dtype=args.input_dtype,
        seed=args.seed,
        exit_process=True,  # q: the shell prompt at once (inittui.tui.jobs.end_process)
    )


def _require_terminal() -> None:
    """The TUI needs a terminal on stdin and stdout, unless a Textual driver of its own is
    set (``inittui serve``: textual-serve starts each tab with ``TEXTUAL_DRIVER`` set to
    its web driver and pipes for stdin and stdout)."""
    import os

    if os.environ.get("TEXTUAL_DRIVER"):
        return
    for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)):
        try:
            tty = stream is not None and stream.isatty()
        except (AttributeError, OSError, ValueError):
            tty = False
        if not tty:
            raise _user_error(
                f"inittui TARGET opens the terminal UI, but {name} is not a terminal; "
                "use a headless command (inittui inspect, plan, export, preview, check or "
                "lsuv TARGET) or inittui serve TARGET"
            )


# --------------------------------------------------------------------------- main


def _check_not_a_misspelled_command(first: str) -> None:
    """``inittui inspekt ...``: a word close to a subcommand, with no ':' (so not a
    TARGET), is a typo, not a model to open."""
    import difflib

    if not first.isidentifier():  # a path, a TARGET or an option
        return
    close = difflib.get_close_matches(first, SUBCOMMANDS, n=1)
    if close:
        raise UsageError(
            f"unknown command {first!r}; did you mean {close[0]!r}? see inittui --help"
        )


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def one_line(text: str) -> str:
    """``text`` with control characters (newlines, ANSI escapes, NUL, DEL) written as
    Python escapes, so an echoed value cannot break the line or paint the terminal."""
    return text.translate(_CONTROL)


# Headless commands: model code may print; stdout is kept for our own output.
_CLEAN_STREAMS = ("inspect", "plan", "export", "preview", "check", "lsuv", "diff", "presets")


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from inittui.core.streams import PipeClosed

    debug = getattr(args, "debug", False)
    try:
        if getattr(args, "command", None) in _CLEAN_STREAMS:
            return _run_clean(handler, args)
        return handler(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (BrokenPipeError, PipeClosed):
        return 0  # the reader has all it wanted (inittui inspect M | head -1): no error
    except SystemExit as exc:  # no handler exits on purpose: the user's model code did
        if debug:  # re-raising would end the process silently with the model's code
            import traceback

            traceback.print_exc()
        print(
            f"error: the model's code called sys.exit({one_line(repr(exc.code))}); remove that "
            "call (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit 2
        from inittui.core.errors import InittuiError

        if debug:
            raise
        if isinstance(exc, InittuiError):
            message = str(exc)
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            message = (
                f"unexpected {type(exc).__name__}{': ' + first if first else ''} "
                "(run with --debug for the traceback)"
            )
        print(f"error: {one_line(message)}", file=sys.stderr)
        return 2


def _run_clean(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a headless command with fd 1 on stderr (inittui.core.streams) and warnings
    recorded: shown as one ``warning:`` line each when the command succeeds, dropped when
    it fails (the error line says what matters)."""
    import warnings

    from inittui.core.streams import command_streams

    with warnings.catch_warnings(record=True) as caught:
        with command_streams():
            code = handler(args)
    shown = set()
    for item in caught:
        if issubclass(item.category, (DeprecationWarning, PendingDeprecationWarning)):
            continue
        text = str(item.message).strip().splitlines()
        line = f"warning: {item.category.__name__}: {text[0] if text else ''}"
        if line not in shown:
            shown.add(line)
            print(one_line(line), file=sys.stderr)
    return code


def _cmd_presets(args: argparse.Namespace) -> int:
    from inittui.core.streams import our_stdout
    from inittui.presets import PRESETS, PresetError, preset_text

    if args.name is not None:
        if args.json:
            raise _user_error("--json lists the presets; give no NAME with it")
        try:
            our_stdout().write(preset_text(args.name))
        except PresetError as exc:
            raise _user_error(str(exc)) from None
        return 0
    if args.json:
        listing = [{"name": name, "mirrors": what} for name, what in PRESETS.items()]
        _print_json({"presets": listing})
        return 0
    width = max(map(len, PRESETS))
    out = our_stdout()
    for name, what in PRESETS.items():
        out.write(f"{name:<{width}}  {what}\n")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "inspect": _cmd_inspect,
    "plan": _cmd_plan,
    "export": _cmd_export,
    "preview": _cmd_preview,
    "check": _cmd_check,
    "lsuv": _cmd_lsuv,
    "serve": _cmd_serve,
    "diff": _cmd_diff,
    "presets": _cmd_presets,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:
        from inittui.cli_parser import version

        print(f"inittui {version()}")
        return 0
    try:
        if argv and argv[0] in SUBCOMMANDS or not argv or argv[0] in ("-h", "--help"):
            parser = build_parser()
            if not argv:
                parser.print_help()
                return 0
            args = parser.parse_args(argv)
            return _run(args.handler, args)
        _check_not_a_misspelled_command(argv[0])
        args = build_tui_parser().parse_args(argv)
        return _run(_cmd_tui, args)
    except UsageError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    finally:
        gc.unfreeze()  # what _load froze is the caller's again (main can run in-process)


if __name__ == "__main__":
    raise SystemExit(main())
