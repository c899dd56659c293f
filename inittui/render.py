"""Rich rendering of core results for the command line; values print through
:mod:`inittui.core.formatting`, as in the TUI."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

from inittui.core.formatting import (
    LOG_HEADER,
    count,
    log_bar,
    number,
    shape,
    short,
    sparkline,
)
from inittui.lean_table import LeanTable


def console_width(stream) -> int:
    """The width to draw for: ``COLUMNS`` when it is a usable number (20 or more), else the
    terminal's width, else (a pipe or a file) wide enough that nothing is cut."""
    import os

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 20:
        return int(columns)
    try:
        tty = stream.isatty()
    except (AttributeError, OSError, ValueError):
        tty = False
    if not tty:
        return PIPE_WIDTH
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        width = 0
    if width < 20:
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, OSError, ValueError):
            width = 80
    return width if width >= 20 else 80


PIPE_WIDTH = 1000  # a pipe or file has no edge: tables keep every column whole


def stdout_console() -> Console:
    """A console on inittui's own stdout (not the model's: inittui.core.streams), as wide as
    :func:`console_width` says."""
    from inittui.core.streams import our_stdout

    file = our_stdout()
    return Console(file=file, width=console_width(file))


def _flag_text(flags: list[str]) -> Text:
    text = Text()
    for flag in flags:
        style = (
            "bold red"
            if flag.startswith(("nan", "inf"))
            else ("yellow" if flag in ("zero", "const", "lazy", "fan*", "fan?") else "cyan")
        )
        if text:
            text.append(" ")
        text.append(flag, style=style)
    return text


def render_inspect(report: dict, console: Console | None = None) -> None:
    """The module tree with each module's parameters: shape, fans, statistics, flags."""
    console = console or stdout_console()
    params_by_module: dict[str, list[dict]] = {}
    for param in report["parameters"]:
        params_by_module.setdefault(param["module"], []).append(param)

    title = (
        f"{report['model_class']}  {report['target']}  ·  "
        f"{report['total_params']:,} parameters  ·  {report['device']}"
    )
    console.print(Text(title, style="italic"), soft_wrap=True)
    table = LeanTable()
    wide = console.width >= 130
    medium = console.width >= 100
    table.add_column("module / parameter", shrink=16, order=1)
    table.add_column("type / shape", max_width=14, shrink=8, order=0)
    for column in ("params", "fan_in", "fan_out"):
        table.add_column(column, justify="right")
    for column in ("mean", "std"):
        table.add_column(column.rjust(8), justify="right")
    if wide:
        table.add_column("min".rjust(6), justify="right")
        table.add_column("max".rjust(6), justify="right")
    if medium:
        table.add_column("hist", max_width=12)
    table.add_column("flags")
    columns = len(table.columns)
    for module in report["modules"]:
        indent = "  " * module["depth"]
        name = module["path"].rsplit(".", 1)[-1] if module["path"] else "(root)"
        label: str | Text | tuple[str, str] = (indent + name, "bold")
        if module.get("aliases"):
            label = Text(indent + name, style="bold")
            label.append(f"  = {', '.join(module['aliases'])}", style="dim")
        table.add_row(
            label,
            (module["type"], "magenta"),
            count(module["num_params"]),
            *[""] * (columns - 3),
        )
        for param in params_by_module.get(module["path"], []):
            stats = param["stats"] or {}
            local = param["name"].rsplit(".", 1)[-1]
            label = indent + "  ." + local
            if param["aliases"]:
                label = Text(label)
                label.append(f" = {', '.join(param['aliases'])}", style="dim")
            hist = (stats.get("hist") or {}).get("counts") or []
            cells = [
                label,
                shape(param["shape"], cell=True),
                count(param["numel"]),
                "-" if param["fan_in"] is None else str(param["fan_in"]),
                "-" if param["fan_out"] is None else str(param["fan_out"]),
                short(stats.get("mean")),
                short(stats.get("std")),
            ]
            if wide:
                cells += [short(stats.get("min")), short(stats.get("max"))]
            if medium:
                cells.append((sparkline(hist, 12 if wide else 8), "green"))
            flags = param.get("flags", [])
            cells.append(_flag_text(flags) if flags else "")
            table.add_row(*cells)
    console.print()
    table.render(console)
    notes = [(p["name"], p["fan_note"]) for p in report["parameters"] if p.get("fan_note")]
    for name, note in notes:
        mark = "fan?" if note.startswith("unverified") else "fan*"
        console.print(Text(f"{mark} {name}: {note}", style="yellow"))
    if report["parameters"] and all(p["stats"] is None for p in report["parameters"]):
        console.print(Text("statistics: none (no data on this device, or --no-stats)", style="dim"))
    for line in init_lines(report, console.width):
        console.print(line)


INIT_GROUPS = 8  # "built by" lines before "... N more"
INIT_FLAGGED = 6  # groups of flagged parameters listed before "... N more"


def init_lines(report: dict, width: int = 80) -> list[Text]:
    """What construction did (``init_calls``): parameters grouped by the last call that
    wrote them, then each flagged parameter with its calls."""
    from inittui.core.provenance import call_text, last_call

    summary = report.get("init_summary") or {}
    if not summary.get("recorded") or not report["parameters"]:
        return []
    groups: dict[str, list[str]] = {}
    for param in report["parameters"]:
        last = last_call(param["init_calls"])
        label = "no call (values as created)" if last is None else call_text(last)
        groups.setdefault(label, []).append(param["name"])
    lines = [Text("built by (the last call that wrote each parameter, how many):", style="bold")]
    for label, names in list(groups.items())[:INIT_GROUPS]:
        line = Text(f"  {len(names):>5}  ", style="dim")
        line.append(label, style="cyan")
        example = f"  e.g. {names[0]}" if len(names) > 1 else f"  {names[0]}"
        if len(line) + len(example) <= width:
            line.append(example, style="dim")
        lines.append(line)
    if len(groups) > INIT_GROUPS:
        lines.append(
            Text(f"  ... {len(groups) - INIT_GROUPS} more (--json lists every call)", style="dim")
        )
    flagged: dict[tuple, list[str]] = {}  # (flags, calls) -> names
    for param in report["parameters"]:
        if param["init_flags"]:
            key = (tuple(param["init_flags"]), tuple(call_text(c) for c in param["init_calls"]))
            flagged.setdefault(key, []).append(param["name"])
    for (flags, calls), names in list(flagged.items())[:INIT_FLAGGED]:
        more = f", {len(names) - 1} more" if len(names) > 1 else ""
        lines.append(Text(f"{' '.join(flags)}: {names[0]}{more}", style="yellow"))
        lines.extend(Text(f"    {call}", style="dim") for call in calls or ("no call",))
    if len(flagged) > INIT_FLAGGED:
        hidden = sum(len(names) for names in list(flagged.values())[INIT_FLAGGED:])
        lines.append(Text(f"... {hidden} more flagged (--json lists them)", style="yellow"))
    return lines


def _fan_cells(param: dict) -> list[str]:
    """The fan_in and fan_out cells; ``*`` where they differ from torch's layout rule."""
    mark = "*" if "torch_fan_in" in param else ""
    return ["-" if param[key] is None else f"{param[key]}{mark}" for key in ("fan_in", "fan_out")]


def render_plan(report: dict, console: Console | None = None, show_undecided: bool = False) -> None:
    """One row per decided parameter: rule, scheme, fans, expected std; then the lints."""
    console = console or stdout_console()
    console.print(
        Text(f"{report['model_class']}  {report['target']}  ·  seed {report['seed']}", style="bold")
    )
    for rule in report["rules"]:
        keys = {k: v for k, v in rule.items() if k not in ("index", "select", "scheme", "params")}
        params = f" [{rule['params']}]" if "params" in rule else ""
        extra = " ".join(f"{k}={v}" for k, v in keys.items())
        console.print(
            f"  rule {rule['index']}: {rule['select'] or '(root)'}{params} -> "
            f"{rule['scheme']} {extra}".rstrip(),
            markup=False,
            highlight=False,
        )
    table = LeanTable()
    for column, justify in (
        ("parameter", "left"),
        ("shape", "left"),
        ("rule", "right"),
        ("scheme", "left"),
        ("fan_in", "right"),
        ("fan_out", "right"),
        ("exp std", "right"),
        ("bound", "right"),
    ):
        shrink, order = {"parameter": (16, 2), "scheme": (10, 0), "shape": (7, 1)}.get(
            column, (0, 0)
        )
        cut = "left" if column == "parameter" else "right"
        table.add_column(column, justify=justify, shrink=shrink, order=order, cut=cut)
    undecided = 0
    for param in report["parameters"]:
        if param["rule"] is None:
            undecided += 1
            if not show_undecided:
                continue
        scheme = param["scheme"] or Text("keeps its values", style="dim")
        if isinstance(scheme, str) and param.get("args"):
            scheme = (
                f"{scheme}("
                + ", ".join(
                    f"{k}={number(v) if isinstance(v, float) else v}"
                    for k, v in param["args"].items()
                )
                + ")"
            )
        if isinstance(scheme, str) and param.get("per_gate"):
            scheme += " per gate"
        if isinstance(scheme, str) and param.get("split"):
            scheme += f" split {param['split']['sizes']}"
        table.add_row(
            param["name"],
            shape(param["shape"] or (), cell=True),
            "-" if param["rule"] is None else str(param["rule"]),
            scheme,
            *_fan_cells(param),
            number(param.get("expected_std")),
            number(param.get("expected_bound")),
        )
    console.print()
    table.render(console)
    if undecided and not show_undecided:
        console.print(
            Text(
                f"{undecided} parameter(s) no rule decides keep their values "
                "(--explain lists them)",
                style="dim",
            )
        )
    for param in report["parameters"]:
        if "torch_fan_in" in param and (param["rule"] is not None or show_undecided):
            console.print(
                Text(
                    f"fan* {param['name']}: fan_in {param['fan_in']}, fan_out "
                    f"{param['fan_out']} from the {param['fan_source']} (torch's layout rule: "
                    f"fan_in {param['torch_fan_in']}, fan_out {param['torch_fan_out']})",
                    style="yellow",
                )
            )
    if show_undecided:
        _print_expressions(report, console)
        _print_splits(report, console)
    for lint in report["lints"]:
        style = "yellow" if lint["severity"] == "warning" else "dim"
        console.print(Text(f"{lint['severity']}: {lint['message']}", style=style))


def _print_expressions(report: dict, console: Console) -> None:
    """``--explain``: each parameter's expressions and their values."""
    for param in report["parameters"]:
        for key, item in param.get("expressions", {}).items():
            console.print(
                f"expr {param['name']}: {key} = {item['expression']} = {number(item['value'])}",
                markup=False,
                highlight=False,
            )


def _print_splits(report: dict, console: Console) -> None:
    """``--explain``: each split parameter's blocks with their fans and expected std."""
    for param in report["parameters"]:
        split = param.get("split")
        if not split:
            continue
        rows = zip(
            split["sizes"], split["fan_in"], split["fan_out"], split["expected_std"], strict=True
        )
        runs: list[list] = []  # equal blocks in a row print once: "3 x 32: ..."
        for row in rows:
            if runs and runs[-1][1] == row:
                runs[-1][0] += 1
            else:
                runs.append([1, row])
        blocks = ", ".join(
            f"{'' if count == 1 else f'{count} x '}{size}: fan_in {fan_in}, "
            f"fan_out {fan_out}, std {number(std)}"
            for count, (size, fan_in, fan_out, std) in runs
        )
        console.print(
            Text(f"split {param['name']} along dim {split['dim']}: {blocks}", style="dim")
        )


def render_preview(result, comparison=None, console: Console | None = None) -> None:
    """Per-layer output std (log-scale bar), planned beside current when a plan is given."""
    console = console or stdout_console()
    from inittui.core.probe.input_report import inputs_line

    head = (
        f"device {result.device} · input std {short(result.input_std)}"
        + " · "
        + ("train mode (batch statistics, dropout off)" if result.train_mode else "eval mode")
    )
    console.print(Text(head, style="bold"))
    console.print(Text(inputs_line(result.inputs, result.inputs_source), style="bold"))
    if result.loss:
        console.print(Text(f"backward: {result.loss}", style="dim"))
    flagged = {flag.path: flag.kind for flag in result.flags}
    table = LeanTable()
    table.add_column("layer", max_width=30, shrink=12, order=1, cut="left")
    table.add_column("type", max_width=12, shrink=6)
    if comparison is not None:
        table.add_column("current", justify="right")
    table.add_column("std" if comparison is None else "planned", justify="right")
    with_theory = any(layer.theory_std is not None for layer in result.layers if layer.leaf)
    if with_theory:
        table.add_column("theory", justify="right")
    table.add_fill_column(
        lambda value, width: Text(log_bar(value[0], width), style=value[1]),
        lambda width: LOG_HEADER if width >= len(LOG_HEADER) else "log10 std"[:width],
        min_width=9,
        max_width=24,
    )
    if comparison is not None:
        table.add_column("ratio", justify="right")
    if result.loss:
        table.add_column("grad std", justify="right")
    grad_theory = any(layer.grad_theory_std is not None for layer in result.layers if layer.leaf)
    if result.loss and grad_theory:
        table.add_column("grad theory", justify="right")
    table.add_column("zero", justify="right")
    table.add_column("flag")
    for layer in result.layers:
        if not layer.leaf:
            continue
        style = _FLAG_STYLES.get(flagged.get(layer.path, ""), "")
        name = layer.path + (f" #{layer.call}" if layer.call else "")
        cells: list = [name, layer.type]
        if comparison is not None:
            try:
                current = comparison.current.layer(layer.path, layer.call).out_std
            except KeyError:
                current = None
            cells.append(short(current))
        cells.append(short(layer.out_std))
        if with_theory:
            cells.append(short(layer.theory_std))
        cells.append((layer.out_std, style or "green"))
        if comparison is not None:
            try:
                cells.append(short(comparison.ratio(layer.path, layer.call)))
            except KeyError:
                cells.append("-")
        if result.loss:
            cells.append(short(layer.grad_std))
        if result.loss and grad_theory:
            cells.append(short(layer.grad_theory_std))
        cells.append(number(layer.zero_fraction, 2))
        cells.append(Text(flagged.get(layer.path, ""), style=style))
        table.add_row(*cells)
    console.print()
    table.render(console)
    console.print()
    if comparison is not None and comparison.note:
        console.print(Text(comparison.note, style="yellow"))
    for flag in result.flags:
        console.print(
            Text(
                f"{flag.kind}: {flag.detail}",
                style="yellow" if flag.kind.startswith("vanishing") else "red",
            )
        )
    if not result.flags:
        console.print(Text("no vanishing, exploding or NaN flags", style="dim"))


_FLAG_STYLES = {
    "vanishing": "yellow",
    "vanishing_grad": "yellow",
    "exploding": "red",
    "exploding_grad": "red",
    "nan": "bold red",
}


class StderrProgress:
    """A progress bar on stderr for long work (only when stderr is a terminal, so pipes and
    ``--json`` output stay clean). Use as a context manager; call it as ``progress(done, total)``.
    Ctrl-C cancels: the command exits with 'error: interrupted' and writes nothing."""

    def __init__(self, label: str, enabled: bool | None = None) -> None:
        import sys

        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label = label
        self._progress = None
        self._task = None

    def __enter__(self) -> StderrProgress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn(self.label),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                console=Console(stderr=True, width=console_width(sys.stderr)),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None)
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=max(total, 1))

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
