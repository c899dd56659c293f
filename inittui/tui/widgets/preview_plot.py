"""The preview pane's plot (``v``): output std (or gradient std) against depth, now vs plan
vs theory, drawn by :func:`inittui.tui.widgets.std_plot.plot_lines` at the pane's size."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from inittui.core.probe import Preview
from inittui.tui.widgets.preview import NOW_STYLE, PLAN_STYLE, THEORY_STYLE, row_flag
from inittui.tui.widgets.std_plot import Series, plot_lines

SERIES_STYLES = {"theory": THEORY_STYLE, "now": NOW_STYLE, "plan": PLAN_STYLE}
MARKERS = {"theory": "+", "now": "o", "plan": "x"}


def preview_series(preview: Preview, backward: bool) -> list[Series]:
    """theory, now and (with a plan) plan, in that drawing order (plan on top): output std,
    or with ``backward`` the gradient std."""
    rows = preview.rows
    if backward:
        fields = {"theory": "theory_grad", "now": "now_grad", "plan": "plan_grad"}
    else:
        fields = {"theory": "theory_std", "now": "now_std", "plan": "plan_std"}
    names = ["theory", "now"] + (["plan"] if preview.planned else [])
    return [Series(n, MARKERS[n], [getattr(r, fields[n]) for r in rows]) for n in names]


class PreviewPlot(Widget, can_focus=True):
    """The std-versus-depth plot of the last preview; ``mode`` is ``forward`` or
    ``backward``. Re-drawn at the widget's size on every render (so on every resize)."""

    DEFAULT_CSS = """
    PreviewPlot {
        height: 1fr;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.preview: Preview | None = None
        self.mode = "forward"

    def show(self, preview: Preview | None, mode: str | None = None) -> None:
        self.preview = preview
        if mode is not None:
            self.mode = mode
        self.refresh()

    def plot_text(self, width: int, height: int) -> Text:
        preview = self.preview
        if preview is None:
            return Text("p runs the preview; v shows its plot", style="dim")
        backward = self.mode == "backward"
        series = preview_series(preview, backward)
        flagged = [i for i, row in enumerate(preview.rows) if row_flag(row, preview.planned)]
        title = "log10 grad std by layer" if backward else "log10 std by layer"
        plot = plot_lines(series, width, height, flagged, title)
        text = Text(no_wrap=True)
        for number, (line, owners) in enumerate(zip(plot.lines, plot.owners, strict=True)):
            if number:
                text.append("\n")
            if number == 0:  # the legend: each marker in its series' colour
                self._legend(text, line, series)
                continue
            for char, owner in zip(line, owners, strict=True):
                if owner is not None:
                    style = SERIES_STYLES[series[owner].name]
                else:
                    style = "bold red" if char == "!" else "dim"
                text.append(char, style=style)
        return text

    @staticmethod
    def _legend(text: Text, line: str, series: list[Series]) -> None:
        start = 0
        for s in series:
            piece = f"{s.marker} {s.name}"
            at = line.find(piece, start)
            if at < 0:
                break
            text.append(line[start:at], style="dim")
            text.append(piece, style=f"bold {SERIES_STYLES[s.name]}")
            start = at + len(piece)
        text.append(line[start:], style="dim")

    def render(self) -> Text:
        width, height = self.size
        return self.plot_text(max(width, 10), max(height, 4))
