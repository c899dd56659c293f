"""Rich rendering of core results for the command line (the TUI has its own widgets)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

SPARK = "▁▂▃▄▅▆▇█"


def fmt_num(value: float | None, digits: int = 4) -> str:
    """Compact number: 0.0442, -1.2e-05, 3.1e+04; '-' for None."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.{max(digits - 2, 1)}e}"


def fmt_count(n: int) -> str:
    """12,345 -> '12.3K'; 7e10 -> '70.0B'."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def sparkline(counts: list[int]) -> str:
    if not counts:
        return ""
    top = max(counts) or 1
    return "".join(
        SPARK[min(len(SPARK) - 1, int(c / top * (len(SPARK) - 1) + 0.999))] if c else " "
        for c in counts
    )


def _flag_text(flags: list[str]) -> Text:
    text = Text()
    for flag in flags:
        style = (
            "bold red"
            if flag.startswith(("nan", "inf"))
            else ("yellow" if flag in ("zero", "const", "lazy", "fan*") else "cyan")
        )
        if text:
            text.append(" ")
        text.append(flag, style=style)
    return text


def render_inspect(report: dict, console: Console | None = None) -> None:
    """The module tree with each module's parameters: shape, fans, statistics, flags."""
    console = console or Console()
    params_by_module: dict[str, list[dict]] = {}
    for param in report["parameters"]:
        params_by_module.setdefault(param["module"], []).append(param)

    title = (
        f"{report['model_class']}  {report['target']}  ·  "
        f"{report['total_params']:,} parameters  ·  {report['device']}"
    )
    table = Table(
        title=title,
        title_justify="left",
        show_lines=False,
        pad_edge=False,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
    )
    wide = console.width >= 130
    medium = console.width >= 100
    fixed = 68 + (10 if medium else 0) + (16 if wide else 0)
    table.add_column(
        "module / parameter",
        no_wrap=True,
        overflow="ellipsis",
        max_width=max(16, console.width - fixed),
    )
    table.add_column("type / shape", no_wrap=True, overflow="ellipsis", max_width=14)
    for column in ("params", "fan_in", "fan_out"):
        table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for column in ("mean", "std"):
        table.add_column(column, justify="right", no_wrap=True, min_width=8)
    if wide:
        table.add_column("min", justify="right", no_wrap=True, min_width=6)
        table.add_column("max", justify="right", no_wrap=True, min_width=6)
    if medium:
        table.add_column("hist", no_wrap=True, max_width=12)
    table.add_column("flags", no_wrap=True)
    columns = len(table.columns)

    for module in report["modules"]:
        indent = "  " * module["depth"]
        name = module["path"].rsplit(".", 1)[-1] if module["path"] else "(root)"
        label = Text(indent + name, style="bold")
        if module.get("aliases"):
            label.append(f"  = {', '.join(module['aliases'])}", style="dim")
        table.add_row(
            label,
            Text(module["type"], style="magenta"),
            fmt_count(module["num_params"]),
            *[""] * (columns - 3),
        )
        for param in params_by_module.get(module["path"], []):
            stats = param["stats"] or {}
            local = param["name"].rsplit(".", 1)[-1]
            label = Text(indent + "  ." + local)
            if param["aliases"]:
                label.append(f" = {', '.join(param['aliases'])}", style="dim")
            shape = (
                "uninitialized"
                if param["shape"] is None
                else "×".join(str(s) for s in param["shape"]) or "scalar"
            )
            hist = (stats.get("hist") or {}).get("counts") or []
            cells = [
                label,
                shape,
                fmt_count(param["numel"]),
                "-" if param["fan_in"] is None else str(param["fan_in"]),
                "-" if param["fan_out"] is None else str(param["fan_out"]),
                fmt_num(stats.get("mean"), 3),
                fmt_num(stats.get("std"), 3),
            ]
            if wide:
                cells += [fmt_num(stats.get("min"), 3), fmt_num(stats.get("max"), 3)]
            if medium:
                cells.append(Text(sparkline(_shrink(hist, 12 if wide else 8)), style="green"))
            cells.append(_flag_text(param.get("flags", [])))
            table.add_row(*cells)
    console.print(table)
    notes = [(p["name"], p["fan_note"]) for p in report["parameters"] if p.get("fan_note")]
    for name, note in notes:
        console.print(Text(f"fan* {name}: {note}", style="yellow"))
    if report["parameters"] and all(p["stats"] is None for p in report["parameters"]):
        console.print(Text("statistics: none (no data on this device, or --no-stats)", style="dim"))


def _shrink(counts: list[int], width: int) -> list[int]:
    if len(counts) <= width:
        return counts
    step = len(counts) / width
    return [sum(counts[int(i * step) : int((i + 1) * step)]) for i in range(width)]


def render_plan(report: dict, console: Console | None = None, show_undecided: bool = False) -> None:
    """One row per decided parameter: rule, scheme, fans, expected std; then the lints."""
    console = console or Console()
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
    table = Table(show_lines=False, pad_edge=False, header_style="bold", box=box.SIMPLE_HEAD)
    for column, justify in (
        ("parameter", "left"),
        ("shape", "left"),
        ("rule", "right"),
        ("scheme", "left"),
        ("fan_in", "right"),
        ("fan_out", "right"),
        ("expected std", "right"),
        ("bound", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=column != "scheme")
    undecided = 0
    for param in report["parameters"]:
        if param["rule"] is None:
            undecided += 1
            if not show_undecided:
                continue
        shape = "×".join(map(str, param["shape"] or [])) or "scalar"
        scheme = param["scheme"] or Text("keeps its values", style="dim")
        if isinstance(scheme, str) and param.get("args"):
            scheme = (
                f"{scheme}("
                + ", ".join(
                    f"{k}={fmt_num(v) if isinstance(v, float) else v}"
                    for k, v in param["args"].items()
                )
                + ")"
            )
        if isinstance(scheme, str) and param.get("per_gate"):
            scheme += " per gate"
        table.add_row(
            param["name"],
            shape,
            "-" if param["rule"] is None else str(param["rule"]),
            scheme,
            "-" if param["fan_in"] is None else str(param["fan_in"]),
            "-" if param["fan_out"] is None else str(param["fan_out"]),
            fmt_num(param.get("expected_std")),
            fmt_num(param.get("expected_bound")),
        )
    console.print(table)
    if undecided and not show_undecided:
        console.print(
            Text(
                f"{undecided} parameter(s) no rule decides keep their values "
                "(--explain lists them)",
                style="dim",
            )
        )
    for lint in report["lints"]:
        style = "yellow" if lint["severity"] == "warning" else "dim"
        console.print(Text(f"{lint['severity']}: {lint['message']}", style=style))


def log_bar(std: float | None, width: int = 24, lo: float = 1e-3, hi: float = 1e3) -> str:
    """A bar whose length is log10(std) between lo and hi; '·' marks std = 1."""
    import math

    if std is None or std <= 0 or not math.isfinite(std):
        return "?" if std is None or not math.isfinite(std or 0) else ""
    span = math.log10(hi) - math.log10(lo)
    filled = (math.log10(min(max(std, lo), hi)) - math.log10(lo)) / span * width
    cells = int(round(filled))
    return "█" * cells + " " * (width - cells)


def render_preview(result, comparison=None, console: Console | None = None) -> None:
    """Per-layer output std (log-scale bar), planned beside current when a plan is given."""
    console = console or Console()
    head = (
        f"device {result.device} · inputs "
        + ", ".join(f"{tuple(i.shape)} {i.dtype}" for i in result.inputs)
        + f" ({result.inputs_source}) · input std {fmt_num(result.input_std, 3)}"
        + f" · {'train' if result.train_mode else 'eval'} mode"
    )
    console.print(Text(head, style="bold"))
    if result.loss:
        console.print(Text(f"backward: {result.loss}", style="dim"))
    flagged = {flag.path: flag.kind for flag in result.flags}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", collapse_padding=True)
    table.add_column("layer", no_wrap=True, overflow="ellipsis", max_width=30)
    table.add_column("type", no_wrap=True, max_width=12)
    if comparison is not None:
        table.add_column("current", justify="right")
    table.add_column("std" if comparison is None else "planned", justify="right")
    with_theory = any(layer.theory_std is not None for layer in result.layers if layer.leaf)
    if with_theory:
        table.add_column("theory", justify="right")
    table.add_column("log10 std: -3 … 0 … +3", no_wrap=True)
    if comparison is not None:
        table.add_column("ratio", justify="right")
    if result.loss:
        table.add_column("grad std", justify="right")
    table.add_column("zero", justify="right")
    table.add_column("flag", no_wrap=True)
    for layer in result.layers:
        if not layer.leaf:
            continue
        style = {"vanishing": "yellow", "exploding": "red", "nan": "bold red"}.get(
            flagged.get(layer.path, ""), ""
        )
        name = layer.path + (f" #{layer.call}" if layer.call else "")
        cells: list = [name, layer.type]
        if comparison is not None:
            try:
                current = comparison.current.layer(layer.path, layer.call).out_std
            except KeyError:
                current = None
            cells.append(fmt_num(current, 3))
        cells.append(fmt_num(layer.out_std, 3))
        if with_theory:
            cells.append(fmt_num(layer.theory_std, 3))
        cells.append(Text(log_bar(layer.out_std), style=style or "green"))
        if comparison is not None:
            try:
                cells.append(fmt_num(comparison.ratio(layer.path, layer.call), 3))
            except KeyError:
                cells.append("-")
        if result.loss:
            cells.append(fmt_num(layer.grad_std, 3))
        cells.append(fmt_num(layer.zero_fraction, 2))
        cells.append(Text(flagged.get(layer.path, ""), style=style))
        table.add_row(*cells)
    console.print(table)
    if comparison is not None and comparison.note:
        console.print(Text(comparison.note, style="yellow"))
    for flag in result.flags:
        console.print(
            Text(
                f"{flag.kind}: {flag.detail}", style="yellow" if flag.kind == "vanishing" else "red"
            )
        )
    if not result.flags:
        console.print(Text("no vanishing, exploding or NaN flags", style="dim"))


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
                console=Console(stderr=True),
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
