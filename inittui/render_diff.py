"""``inittui diff``'s text output: one row per parameter (both sides' std, their ratio, the
Kolmogorov-Smirnov distance, flags), the summary line, and with ``--preview`` both sides'
per-layer output std."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from inittui.core.formatting import number, shape, short
from inittui.lean_table import LeanTable
from inittui.render import stdout_console

_FLAG_STYLES = {"differs": "bold red", "identical": "green", "no_data": "yellow"}


def _flags(flags: list[str]) -> Text:
    text = Text()
    for flag in flags:
        if text:
            text.append(" ")
        text.append(flag, style=_FLAG_STYLES.get(flag, "dim"))
    return text


def render_diff(document: dict, console: Console | None = None) -> None:
    """The ``diff`` table from its ``--json`` document (:meth:`DiffResult.to_dict`)."""
    console = console or stdout_console()
    a, b = document["a"], document["b"]
    console.print(
        Text(f"{document['model_class']}  {document['target']}  ·  seed {document['seed']}",
             style="bold"),
        soft_wrap=True,
    )  # fmt: skip
    for label, side in (("A", a), ("B", b)):
        what = (
            "current (the model as built)"
            if side["kind"] == "current"
            else f"{side['kind']} {side['source']}"
        )
        console.print(f"  {label}: {what}", markup=False, highlight=False)
    wide = console.width >= 100
    table = LeanTable()
    table.add_column("parameter", shrink=14, order=2, cut="left")
    table.add_column("shape", shrink=6, order=1)
    if wide:
        table.add_column("mean A", justify="right")
        table.add_column("mean B", justify="right")
    table.add_column("std A", justify="right")
    table.add_column("std B", justify="right")
    table.add_column("B/A", justify="right")
    table.add_column("KS", justify="right")
    table.add_column("flags", shrink=7, order=0)
    for param in document["parameters"]:
        name: str | Text = param["name"]
        if param["aliases"] and wide:
            name = Text(param["name"])
            name.append(f" = {', '.join(param['aliases'])}", style="dim")
        cells: list = [name, shape(param["shape"], cell=True)]
        if wide:
            cells += [short(param["a"]["mean"]), short(param["b"]["mean"])]
        cells += [
            short(param["a"]["std"]),
            short(param["b"]["std"]),
            number(param["std_ratio"], 3),
            number(param["ks"], 2),
            _flags(param["flags"]),
        ]
        table.add_row(*cells)
    console.print()
    table.render(console)
    console.print()
    summary = document["summary"]
    console.print(
        Text(
            f"{summary['differ']} of {summary['parameters']} parameters differ beyond sampling "
            f"error ({summary['identical']} identical)",
            style="bold red" if summary["differ"] else "bold",
        )
    )
    _notes(document, console)
    if "preview" in document:
        _render_preview(document["preview"], console)


def _notes(document: dict, console: Console) -> None:
    summary = document["summary"]
    console.print(
        Text(
            f"differs: B/A out of its {summary['sigmas']:g}-sigma band, or KS > critical "
            f"at alpha {summary['ks_alpha']:g}",
            style="dim",
        )
    )
    if summary["subsampled"]:
        console.print(
            Text(
                f"subsampled: KS of {summary['subsampled']} parameter(s) on "
                f"{summary['ks_max_values']:,} values drawn per side (seeded, the same on "
                "every run)",
                style="dim",
            )
        )


def _render_preview(preview: dict, console: Console) -> None:
    console.print()
    source = preview.get("inputs_source") or "inferred"
    console.print(Text(f"preview: output std per layer, inputs from {source}", style="bold"))
    table = LeanTable()
    table.add_column("layer", max_width=40, shrink=12, order=1, cut="left")
    table.add_column("type", max_width=14, shrink=6)
    table.add_column("std A", justify="right")
    table.add_column("std B", justify="right")
    table.add_column("B/A", justify="right")
    for layer in preview["layers"]:
        name = layer["path"] + (f" #{layer['call']}" if layer["call"] else "")
        table.add_row(
            name,
            layer["type"],
            short(layer["a_std"]),
            short(layer["b_std"]),
            number(layer["ratio"], 3),
        )
    console.print()
    table.render(console)
