"""Pilot tests of the module tree (our own line list on Textual's ScrollView): expand and
collapse, the move keys, the filter, counts that are never cut at 80 columns, the legend in
the help screen, and the palette's "Go to module"."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

from pilot import idle, wait_for
from rich.text import Text
from textual.command import CommandPalette

from inittui.tui.app import InitApp
from inittui.tui.keys import help_sections
from inittui.tui.legend import TREE_LEGEND
from inittui.tui.palette import GOTO_CANDIDATES, goto_query, module_candidates
from inittui.tui.screens.dialogs import HelpScreen
from inittui.tui.widgets.tree_lines import cut_middle

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "sample_models" / "mlp.py") + ":MLP"
SIZE = (80, 24)

LONG_MODEL = """
from torch import nn


class Long(nn.Module):
    def __init__(self):
        super().__init__()
        self.an_encoder_projection_with_a_name_far_too_long_for_the_pane = nn.Linear(1000, 1000)
        self.small = nn.Linear(2, 2)
"""

BIG_MODEL = """
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.act = nn.ReLU()


class Big(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(2600))
"""


def screen_text(app) -> str:
    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))).replace(
        "\xa0", " "
    )


def line(tree, y: int) -> str:
    """The text of line ``y`` of the tree as drawn (``y`` counted from the top of the pane)."""
    return tree.render_line(y).text


async def test_move_keys_and_expand_collapse():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        last = tree.last_line
        assert last == 18  # MLP, layers, layers.0 .. layers.16 (a small model opens expanded)
        await pilot.press("G")
        assert tree.cursor_path == "layers.16" and tree.cursor_line == last
        assert tree.scroll_offset.y > 0  # the last line is scrolled into view
        await pilot.press("g")
        assert tree.cursor_path == "" and tree.scroll_offset.y == 0
        await pilot.press("end")
        assert tree.cursor_path == "layers.16"
        await pilot.press("home", "j", "j", "j")
        assert tree.cursor_path == "layers.1"
        await pilot.press("k")
        assert tree.cursor_path == "layers.0"
        await pilot.press("pagedown")
        assert tree.cursor_line > 2
        await pilot.press("pageup", "pageup")
        assert tree.cursor_line == 0
        await pilot.press("j", "enter")  # enter on layers collapses it
        assert not tree.nodes["layers"].is_expanded and tree.last_line == 1
        await pilot.press("G")
        assert tree.cursor_path == "layers"
        await pilot.press("space")
        assert tree.nodes["layers"].is_expanded and tree.last_line == last
        await pilot.press("j", "j", "shift+down")  # layers.1, then its next sibling
        assert tree.cursor_path == "layers.2"
        await pilot.press("h")  # a leaf: left goes to the parent
        assert tree.cursor_path == "layers"
        await pilot.press("h")  # collapses it
        assert not tree.nodes["layers"].is_expanded
        await pilot.press("l")
        assert tree.nodes["layers"].is_expanded
        await pilot.press("G", "left")  # collapsing from a child: the cursor goes up
        assert tree.cursor_path == "layers"


async def test_cursor_stays_on_its_node_when_lines_above_change():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        assert tree.reveal("layers.5")
        detail = app.query_one("#detail-pane")
        assert detail.border_title.endswith("layers.5")
        tree.collapse(tree.nodes["layers"])  # the cursor was below: it goes to layers
        assert tree.cursor_path == "layers"
        await pilot.pause()
        assert detail.border_title.endswith("layers")


async def test_lines_show_guides_icons_and_a_count_column():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        width = tree.scrollable_content_region.width
        lines = [line(tree, y) for y in range(4)]
        assert all(len(text) == width for text in lines)
        assert lines[0].startswith("▼ MLP") and lines[0].endswith(" 33.9K")
        assert lines[1].startswith("└─▼ layers Sequential")
        assert lines[2].startswith("  ├─0 Linear") and lines[2].endswith(" 4.2K")
        assert lines[3].rstrip().endswith("1 ReLU")  # no parameters: an empty count cell
        assert tree.nodes["layers.0"].label.plain == "0 Linear 4.2K"


async def test_counts_are_never_cut_at_80_columns(tmp_path):
    source = tmp_path / "long.py"
    source.write_text(LONG_MODEL)
    app = InitApp(f"{source}:Long")
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        width = tree.scrollable_content_region.width
        text = line(tree, 1)
        assert len(text) == width
        assert text.rstrip().endswith(" 1.0M")  # the whole count, right-aligned
        assert "…" in text  # the name is cut in the middle instead
        assert text.startswith("├─an_encoder_proj")
        assert "Linear" in text  # the end of the label (its class) stays
        small = line(tree, 2)
        assert small.rstrip().endswith("  6")  # right-aligned in the same column
        assert text.rstrip().rindex("1.0M") + 3 == small.rstrip().rindex("6")


def test_cut_middle_keeps_both_ends():
    text = Text("an_encoder_projection Linear kaiming_normal·type")
    cut = cut_middle(text, 20)
    assert cut.cell_len == 20 and "…" in cut.plain
    assert cut.plain.startswith("an_encoder") and cut.plain.endswith("mal·type")
    assert cut_middle(text, 100) is text
    assert cut_middle(text, 4).plain == "an_…"  # too short to cut in the middle


async def test_filter_builds_its_own_tree_and_keys_move_through_it():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        tree = app.tree_widget
        await pilot.press("slash", *"Linear", "enter")
        assert tree.filter_count == 9 and not tree.typing
        assert tree.last_line == 10  # root, layers, 9 matches
        await pilot.press("G")
        assert tree.cursor_path == "layers.16"
        await pilot.press("g", "j", "j")
        assert tree.cursor_path == "layers.0"
        assert line(tree, 2).startswith("  ├─0 Linear")
        assert line(tree, 10).startswith("  └─16 Linear")  # the last match closes the guide
        await pilot.press("escape")
        await pilot.pause()
        assert tree.filter_query == "" and tree.last_line == 18
        assert tree.cursor_path == "layers.0"  # the cursor stays on its module


async def test_expanding_2600_children_draws_only_the_visible_lines(tmp_path):
    source = tmp_path / "big.py"
    source.write_text(BIG_MODEL)
    app = InitApp(f"{source}:Big")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session is not None)
        await idle(pilot)
        tree = app.tree_widget
        labelled: list[str] = []
        label_for = tree.label_for

        def counting(path: str, expanded: bool):
            labelled.append(path)
            return label_for(path, expanded)

        tree.label_for = counting
        await pilot.press("j")
        start = time.perf_counter()
        await pilot.press("l")
        assert tree.last_line == 2601 and len(tree.nodes["blocks"].children) == 2600
        assert len(labelled) < 40  # only the lines on screen were labelled
        await pilot.press("G")
        assert tree.cursor_path == "blocks.2599"
        assert len(labelled) < 80
        assert time.perf_counter() - start < 10  # generous: a shared, slow machine
        await pilot.press("h", "h")  # to the parent, then collapse it
        assert tree.cursor_path == "blocks" and tree.last_line == 1


def test_help_sections_hold_the_tree_legend():
    sections = dict(help_sections())
    assert sections["Tree markers"] == list(TREE_LEGEND)
    keys = {key for key, _ in sections["Module tree"]}
    assert {"g G / home end", "↑ ↓ j k", "pgup pgdn"} <= keys
    markers = {marker for marker, _ in TREE_LEGEND}
    assert {"scheme·type", "scheme+N", "!", "i", "4.2K"} <= markers


async def test_help_screen_shows_the_legend_and_j_k_scroll_it():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Help: this list of keys" in screen_text(app)
        scroll = app.screen.query_one("#help-scroll")
        assert scroll.scroll_y == 0
        await pilot.press("j", "j", "j")
        assert scroll.scroll_y == 3
        await pilot.press("k")
        assert scroll.scroll_y == 2
        await pilot.press("G")
        assert scroll.scroll_y == scroll.max_scroll_y > 0
        await pilot.press("g")
        seen = ""
        for _ in range(10):  # page through: the legend is between the tree and filter keys
            seen += screen_text(app)
            await pilot.press("pagedown")
        assert "Tree markers" in seen and "…decided by a type rule" in seen
        assert "scheme·type" in seen and "parameters in the module and below" in seen
        await pilot.press("g")
        assert scroll.scroll_y == 0


def test_module_candidates_are_bounded_and_fuzzy():
    paths = [f"blocks.{i}.{name}" for i in range(2600) for name in ("fc", "norm", "act")]
    start = time.perf_counter()
    found = module_candidates(paths, "b.1.n")
    assert len(found) == GOTO_CANDIDATES
    assert all("b" in p and ".n" in p for p in found)
    assert module_candidates(paths, "blocks.2599.norm")[0] == "blocks.2599.norm"
    assert module_candidates(paths, "") == []
    assert time.perf_counter() - start < 2  # a few ms on any machine
    assert goto_query("Go to module: layers.1") == "layers.1"
    assert goto_query("go to layers") == "layers"


async def test_palette_lists_app_actions_first_and_goes_to_a_module():
    app = InitApp(MLP)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: CommandPalette.is_open(app))
        await pilot.pause(0.3)
        from textual.command import CommandList

        options = app.screen.query_one(CommandList)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        titles = [prompt.splitlines()[0] for prompt in prompts]
        assert titles[0] == "Help"
        assert titles.index("Quit") < titles.index("Keys")  # Textual's own come after
        await pilot.press(*"layers.16")
        await pilot.pause(0.3)
        first = str(options.get_option_at_index(0).prompt)
        assert first.startswith("Go to module: layers.16")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not CommandPalette.is_open(app))
        assert app.tree_widget.cursor_path == "layers.16"
        assert app.tree_widget.has_focus
