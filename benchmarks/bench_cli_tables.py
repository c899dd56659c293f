"""Benchmark: printing ``inittui inspect``'s table for a 10,402-module model.

    python benchmarks/bench_cli_tables.py [--blocks 2600] [--width 120]

Builds the inspect report of ``BigModel(blocks)`` (the TUI benchmark's model: blocks of
Linear, LayerNorm, ReLU; 20,802 table rows) once, then prints it to an in-memory
terminal of ``--width`` columns, with colours, two ways (best of 3 each):

* ``render_inspect``: inittui's table (``LeanTable``: one pass over the cells, one
  ``Text`` for the whole table);
* baseline: the same rows and columns in a ``rich.table.Table`` (what ``inspect`` used
  before; rich measures every cell of every column to lay the table out).

Prints both times and ``ratio lean/rich`` (lower is better), and checks that both tables
hold the same rows.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from inittui.core.formatting import count, shape, short  # noqa: E402
from inittui.render import render_inspect  # noqa: E402


def rich_table(report: dict, console: Console) -> None:
    """The baseline: the inspect rows in a rich Table."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", collapse_padding=True)
    table.add_column("module / parameter", no_wrap=True, overflow="ellipsis")
    table.add_column("type / shape", no_wrap=True, overflow="ellipsis", max_width=14)
    for column in ("params", "fan_in", "fan_out", "mean", "std"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("flags", no_wrap=True)
    params: dict[str, list[dict]] = {}
    for param in report["parameters"]:
        params.setdefault(param["module"], []).append(param)
    for module in report["modules"]:
        indent = "  " * module["depth"]
        name = module["path"].rsplit(".", 1)[-1] if module["path"] else "(root)"
        table.add_row(
            Text(indent + name, style="bold"),
            Text(module["type"], style="magenta"),
            count(module["num_params"]),
            "",
            "",
            "",
            "",
            "",
        )
        for param in params.get(module["path"], []):
            stats = param["stats"] or {}
            table.add_row(
                indent + "  ." + param["name"].rsplit(".", 1)[-1],
                shape(param["shape"] or (), cell=True),
                count(param["numel"]),
                str(param["fan_in"] or "-"),
                str(param["fan_out"] or "-"),
                short(stats.get("mean")),
                short(stats.get("std")),
                " ".join(param.get("flags", [])),
            )
    console.print(table)


def timed(fn, report: dict, width: int) -> tuple[float, str]:
    best, text = float("inf"), ""
    for _ in range(3):
        out = io.StringIO()
        console = Console(file=out, width=width, force_terminal=True, color_system="truecolor")
        start = time.perf_counter()
        fn(report, console)
        best = min(best, time.perf_counter() - start)
        text = out.getvalue()
    return best, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=2600)
    parser.add_argument("--width", type=int, default=120)
    args = parser.parse_args()

    from inittui.core.loading import load_model
    from inittui.core.summary import inspect_report

    target = f"{ROOT / 'benchmarks' / 'bench_tui_keys.py'}:BigModel"
    loaded = load_model(target, {"blocks": args.blocks})
    report = inspect_report(loaded)
    rows = len(report["modules"]) + len(report["parameters"])
    lean, lean_text = timed(render_inspect, report, args.width)
    rich, rich_text = timed(rich_table, report, args.width)
    # Both hold every row: the last parameter's name appears once per row it names.
    assert lean_text.count(".bias") == rich_text.count(".bias") == 2 * args.blocks
    print(f"inspect table of {len(report['modules']):,} modules, {rows:,} rows, {args.width} cols")
    print(f"  render_inspect (LeanTable)  {lean * 1000:9.1f} ms")
    print(f"  rich.table.Table (baseline) {rich * 1000:9.1f} ms")
    print(f"ratio lean/rich = {lean / rich:.3f}")


if __name__ == "__main__":
    main()
