"""The preview pane: a table fitted to its width on every resize, unique layer names, text
flag markers, n/N, worst-first sort, first/last row, and the std-versus-depth plot (v)."""

from __future__ import annotations

from pathlib import Path

from pilot import idle, wait_for

from inittui.core.formatting import fit_middle, short, unique_suffixes
from inittui.core.plan import Plan, Rule, plan_to_toml
from inittui.core.probe import Preview, PreviewFlag, PreviewRow
from inittui.tui.app import InitApp
from inittui.tui.widgets.preview import PreviewTable, preview_layout, row_flag
from inittui.tui.widgets.preview_plot import PreviewPlot
from inittui.tui.widgets.std_plot import BrailleCanvas, Series, plot_lines

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
GPT2 = str(ROOT / "tests" / "models" / "hf.py") + ":gpt2"


# --------------------------------------------------------------------------- pure parts


def test_unique_suffixes_tell_gpt2_blocks_apart():
    paths = [
        "transformer.wte",
        "transformer.h.0.attn.c_attn",
        "transformer.h.1.attn.c_attn",
        "transformer.h.0.mlp.c_proj",
        "transformer.h.1.mlp.c_proj",
        "transformer.ln_f",
        "layers.0",
        "",
    ]
    names = unique_suffixes(paths)
    assert names == [
        "wte",
        "h.0.attn.c_attn",
        "h.1.attn.c_attn",
        "h.0.mlp.c_proj",
        "h.1.mlp.c_proj",
        "ln_f",
        "layers.0",
        "(root)",
    ]
    assert unique_suffixes(["a.b", "a.b"]) == ["b", "b"]  # repeated calls share the name


def test_fit_middle_keeps_the_index_and_the_tail():
    assert fit_middle("h.0.attn.c_attn", 15) == "h.0.attn.c_attn"
    assert fit_middle("h.0.attn.c_attn", 12) == "h.0.…c_attn"
    assert fit_middle("h.1.attn.c_attn", 12) == "h.1.…c_attn"
    assert fit_middle("abcdefghijkl", 6) == "abc…kl"
    for width in range(1, 16):
        assert len(fit_middle("h.0.attn.c_attn", width)) <= width


def test_layout_at_80_columns_keeps_now_plan_ratio_and_flags():
    columns, bar = preview_layout(37, planned=True, backward=True, longest=15)
    keys = [c.key for c in columns]
    assert keys[:5] == ["layer", "now", "plan", "ratio", "flag"]
    assert sum(c.width for c in columns) <= 37 and bar == 0
    wide, wide_bar = preview_layout(110, planned=True, backward=True, longest=15)
    assert [c.key for c in wide] == [
        "layer", "now", "plan", "ratio", "flag", "theory", "now_grad", "plan_grad"
    ]  # fmt: skip
    assert sum(c.width for c in wide) <= 110 and wide_bar > 0


def test_row_flag_is_text():
    row = PreviewRow(
        "a", "Linear", 0, 1.0, 1e9, flags=[PreviewFlag("a", "exploding", "", "planned")]
    )
    assert row_flag(row, planned=True) == ("error", "explode")
    fixed = PreviewRow("a", "Linear", 0, 1e9, 1.0, flags=[PreviewFlag("a", "exploding", "", "now")])
    assert row_flag(fixed, planned=True) == ("info", "explode")
    off = PreviewRow("a", "Linear", 0, 1.0, None, theory_std=0.1)
    assert row_flag(off, planned=False) == ("info", "theory")
    assert row_flag(PreviewRow("a", "Linear", 0, 1.0, None, theory_std=0.9), False) is None


def test_braille_canvas_dots():
    canvas = BrailleCanvas(2, 1)
    canvas.set(0, 0)
    canvas.set(1, 3)
    assert canvas.char(0, 0) == chr(0x2800 + 0x01 + 0x80)
    assert canvas.char(1, 0) == " "
    canvas.line(0, 0, 3, 3)
    assert canvas.char(1, 0) != " "


def test_plot_has_markers_legend_and_decade_axis():
    values = [0.5 * 0.5**i for i in range(12)]
    series = [
        Series("theory", "+", values),
        Series("now", "o", [v * 1.1 for v in values]),
        Series("plan", "x", [1.0] * 12),
    ]
    plot = plot_lines(series, 38, 12, flagged=[3])
    text = "\n".join(plot.lines)
    assert plot.lines[0].startswith("+ theory  o now  x plan")
    for marker in "+ox":
        assert marker in "\n".join(plot.lines[1:])
    assert "1e0" in text and "1e-2" in text and "└" in text and "!" in plot.lines[-2]
    assert plot.lines[-1].lstrip().startswith("0") and plot.lines[-1].rstrip().endswith("11")
    assert all(len(line) == 38 for line in plot.lines)


# --------------------------------------------------------------------------- the app


def row_line(table: PreviewTable, position: int) -> str:
    """What the table draws for the row at display ``position`` (on screen)."""
    table.scroll_to(y=position, animate=False, force=True)
    y = position - int(table.scroll_offset.y) + 1
    return "".join(segment.text for segment in table.render_line(y))


def planned_mlp(tmp_path) -> InitApp:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_to_toml(Plan((Rule("type:Linear", "zeros", params="bias"),
                                        Rule("layers.4", "normal", args={"std": 1.0},
                                             params="weight")))))  # fmt: skip
    return InitApp(MLP, plan_path=str(plan))


async def run_preview(pilot) -> PreviewTable:
    await idle(pilot)
    await pilot.press("p")
    await idle(pilot)
    table = pilot.app.query_one("#preview", PreviewTable)
    await wait_for(pilot, lambda: table.preview is not None)
    table.focus()
    await pilot.pause()
    return table


async def test_resize_relays_out_and_values_are_not_cut(tmp_path):
    app = planned_mlp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await run_preview(pilot)
        wide = [c.key for c in table.columns]
        assert "theory" in wide
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert table.size.width < 60
        keys = [c.key for c in table.columns]
        assert keys[:5] == ["layer", "now", "plan", "ratio", "flag"]
        assert sum(c.width for c in table.columns) <= table.size.width
        for position, row in enumerate(table.rows):
            line = row_line(table, position)
            assert short(row.now_std) in line and short(row.plan_std) in line, line
            assert short(row.ratio) in line
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        await pilot.pause()
        assert [c.key for c in table.columns] == wide


async def test_gpt2_rows_read_differently():
    app = InitApp(GPT2)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await run_preview(pilot)
        rows = table.rows
        attn = [i for i, row in enumerate(rows) if row.path.endswith("attn.c_attn")]
        assert len(attn) >= 2
        shown = [table.label(i) for i in attn]
        assert len(set(shown)) == len(shown), shown
        assert all(row_line(table, i).startswith(" " + table.label(i)) for i in attn)


async def test_flag_jumps_sort_and_first_last(tmp_path):
    app = planned_mlp(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await run_preview(pilot)
        planned = table.preview.planned
        flagged = [i for i, r in enumerate(table.rows) if row_flag(r, planned)]
        assert flagged  # the MLP vanishes, the plan's std=1 layer explodes
        await pilot.press("n")
        assert table.cursor == flagged[0]
        await pilot.press("N")
        assert table.cursor == flagged[-1]
        assert any(m in row_line(table, flagged[0]) for m in ("!!", "! ", "~ "))
        await pilot.press("G")
        assert table.cursor == table.row_count - 1
        await pilot.press("g")
        assert table.cursor == 0
        await pilot.press("end")
        assert table.cursor == table.row_count - 1 and table.scroll_offset.x == 0
        await pilot.press("home")
        assert table.cursor == 0
        order = [r.path for r in table.rows]
        await pilot.press("w")
        worst = table.rows
        assert abs(worst[0].ratio - 1) >= abs(worst[-1].ratio - 1)
        assert [r.path for r in worst] != order
        assert app.tree_widget.cursor_path == worst[0].path or table.cursor_path
        await pilot.press("w")
        assert [r.path for r in table.rows] == order


async def test_v_toggles_the_plot(tmp_path):
    app = planned_mlp(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_preview(pilot)
        plot = app.query_one("#preview-plot", PreviewPlot)
        await pilot.press("v")
        await pilot.pause()
        assert plot.display and not app.query_one("#preview").display and plot.has_focus
        text = plot.plot_text(*plot.size).plain
        assert "+ theory" in text and "o now" in text and "x plan" in text
        assert "1e0" in text and "└" in text and "layer" in text
        await pilot.press("v")  # no backward pass: back to the table
        await pilot.pause()
        assert not plot.display and app.query_one("#preview").has_focus
        await pilot.press("b")  # backward: v cycles table -> forward -> backward
        await idle(pilot)
        await pilot.press("v", "v")
        await pilot.pause()
        assert plot.mode == "backward" and "grad" in plot.plot_text(*plot.size).plain


def test_preview_plot_without_preview_says_how():
    plot = PreviewPlot()
    assert "p runs the preview" in plot.plot_text(40, 10).plain
    empty = Preview([], [], "", False, "cpu", False)
    plot.preview = empty
    assert "no positive std" in plot.plot_text(40, 10).plain
