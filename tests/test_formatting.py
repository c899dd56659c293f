"""inittui.core.formatting: one printed form per kind of value, the same in the CLI and TUI."""

from __future__ import annotations

import io
import math
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from inittui.core import formatting as fmt

finite = st.floats(allow_nan=False, allow_infinity=False)


# ---------------------------------------------------------------------------------------------
# property tests


@given(st.integers(0, 10**15))
def test_count_has_one_decimal_below_100_and_a_unit(n):
    text = fmt.count(n)
    if n < 1000:
        assert text == str(n)
        return
    match = re.fullmatch(r"(\d+(?:\.\d)?)([KMBT])", text)
    assert match, text
    value, unit = float(match[1]), match[2]
    size = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[unit]
    assert value < 1000 or unit == "T"  # 999_950 is "1.0M", never "1000K"
    assert ("." in match[1]) == (value < 100)
    assert abs(value * size - n) <= (0.05 if value < 100 else 0.5) * size * 1.0001, (n, text)


@pytest.mark.parametrize(
    "n, text",
    [(999, "999"), (4160, "4.2K"), (123_456, "123K"), (99_960, "100K"), (999_950, "1.0M")],
)
def test_count_examples(n, text):
    assert fmt.count(n) == text


@given(st.floats(-1e300, 1e300), st.integers(2, 6))
def test_number_round_trips_to_its_digits(value, digits):
    text = fmt.number(value, digits)
    kept = min(digits, max(digits - 1, 2))  # significant digits in the fixed / exponent form
    assert float(text) == pytest.approx(value, rel=10 ** (1 - kept), abs=0)
    if value != 0 and 1e-3 <= abs(value) < 10 ** (digits - 1):
        assert "e" not in text
    if abs(value) < 1e-3 or abs(value) >= 10**digits:
        assert "e" in text or value == 0


@given(st.one_of(st.just(0.0), st.floats(min_value=1e-99, max_value=9.9e99)))
def test_short_fits_seven_characters(value):
    assert len(fmt.short(value)) <= 7


@pytest.mark.parametrize(
    "value, text", [(None, "-"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
def test_number_of_missing_and_non_finite(value, text):
    assert fmt.number(value) == fmt.short(value) == text


@given(st.lists(st.integers(0, 10**6), max_size=80), st.integers(1, 40))
def test_sparkline_width_levels_and_blanks(counts, width):
    line = fmt.sparkline(counts, width)
    assert len(line) <= width and set(line) <= set(fmt.BLOCKS)
    if len(counts) <= width:
        assert len(line) == len(counts)
        for c, cell in zip(counts, line, strict=True):
            assert (cell == " ") == (c == 0)  # an empty bin is blank, any other shows
    if any(counts):
        assert "█" in line


def test_sparkline_merges_equal_groups():
    # 32 bins into 12 cells: groups of 3; the short last group (2 bins) is scaled to 3
    assert fmt.sparkline([1] * 32, 12) == "█" * 11
    assert fmt.sparkline([0, 0, 5, 10], 16) == "  ▄█"


@given(st.one_of(st.none(), st.floats()), st.integers(1, 40))
def test_log_bar_width_and_monotonic(value, width):
    bar = fmt.log_bar(value, width)
    assert len(bar) == width
    if value is None or not math.isfinite(value) or value <= 0:
        assert bar == " " * width
    else:
        assert bar.strip()  # any positive std shows at least one eighth
        if math.isfinite(value * 10):
            longer = fmt.log_bar(value * 10, width)
            assert len(longer.rstrip()) >= len(bar.rstrip())


def test_log_bar_half_width_is_std_one():
    assert fmt.log_bar(1.0, 24) == "█" * 12 + " " * 12
    assert fmt.log_bar(1e3, 6) == "█" * 6


@given(st.one_of(st.none(), st.lists(st.integers(0, 5000), max_size=4)))
def test_shape_prose_is_the_tuple_and_cell_the_cross(dims):
    prose, cell = fmt.shape(dims), fmt.shape(dims, cell=True)
    if dims is None:
        assert (prose, cell) == ("(uninitialized)", "uninitialized")
    else:
        assert prose == repr(tuple(dims))
        assert cell == ("×".join(map(str, dims)) or "scalar")


@given(st.integers(0, 2**60))
def test_size_units(nbytes):
    text = fmt.size(nbytes)
    value, unit = text.split(" ")
    scale = 1024 ** ["B", "KB", "MB", "GB", "TB", "PB"].index(unit)
    assert float(value) == pytest.approx(nbytes / scale, rel=0.06, abs=0.06)


# ---------------------------------------------------------------------------------------------
# the CLI tables and the TUI print the same text for the same value


def test_cli_table_and_tui_detail_print_a_tensor_alike():
    from inittui.render import render_inspect
    from inittui.tui.widgets import describe
    from inittui.tui.widgets.text import count, num, sparkline

    torch.manual_seed(0)
    weight = torch.randn(300, 500) * 1e-5  # a std in exponent form
    from inittui.core.stats import tensor_stats

    stats = tensor_stats(weight)
    report = {
        "model_class": "M",
        "target": "m.py:M",
        "total_params": weight.numel(),
        "device": "cpu",
        "modules": [{"path": "", "depth": 0, "type": "M", "num_params": weight.numel()}],
        "parameters": [
            {
                "module": "",
                "name": "weight",
                "aliases": [],
                "shape": [300, 500],
                "numel": weight.numel(),
                "fan_in": 500,
                "fan_out": 300,
                "stats": stats.to_dict(),
                "flags": [],
            }
        ],
    }
    out = io.StringIO()
    render_inspect(report, Console(file=out, width=160, color_system=None))
    row = next(line for line in out.getvalue().splitlines() if ".weight" in line).split()
    # .weight  300×500  150K  500  300  mean  std  min  max  hist
    cells = row[1:3] + row[5:9]
    cli = dict(zip(["shape", "params", "mean", "std", "min", "max"], cells, strict=True))
    cli["hist"] = row[9] if len(row) > 9 else ""

    bounds = f"[{num(stats.min)}, {num(stats.max)}] "
    tui = describe._stats_lines("now", stats, "blue", width=12 + 6 + len(bounds)).plain
    assert cli["params"] == count(weight.numel()) == "150K"
    assert cli["shape"] == fmt.shape((300, 500), cell=True)
    assert "e-0" in cli["std"]
    for key in ("std", "mean"):
        assert f"{key} {cli[key]}" in tui
    assert f"[{cli['min']}, {cli['max']}]" in tui
    spark = sparkline(stats.hist_counts, 12)
    assert spark.strip() == cli["hist"] and spark in tui


def test_cli_preview_and_tui_preview_print_a_std_alike():
    from inittui.tui.widgets.preview import _cell

    for value in (0.00323, 0.318, 3.2e-05, 1234.5, None):
        cell = _cell(value, "blue", None, 6).plain
        assert cell == f" {fmt.log_bar(value, 6)} {fmt.short(value):>7}"
