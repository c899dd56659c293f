"""The preview pane's actions (a mixin of :class:`~inittui.tui.app.InitApp`): ``p`` runs
the preview, ``b`` toggles the backward pass, ``v`` switches between the table and the
std-versus-depth plot; below 120 columns the focused pane takes room from the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events

from inittui.tui.widgets.preview import PreviewTable
from inittui.tui.widgets.preview_plot import PreviewPlot

if TYPE_CHECKING:
    from textual.app import App

    _Base = App[int]
else:
    _Base = object


class PreviewPane(_Base):
    """The preview pane's view and actions."""

    def show_preview_view(self) -> None:
        table = self.query_one("#preview", PreviewTable)
        plot = self.query_one("#preview-plot", PreviewPlot)
        plotted = self.preview_view != "table"
        refocus = table.has_focus or plot.has_focus
        plot.show(table.preview, self.preview_view if plotted else None)
        table.display = not plotted
        plot.display = plotted
        if refocus:
            (plot if plotted else table).focus()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self.fit_preview_pane()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self.call_after_refresh(self.fit_preview_pane)

    def fit_preview_pane(self, width: int | None = None) -> None:
        """Below 120 columns the focused preview pane takes room from the tree and the
        detail (its table re-lays out to the new width)."""
        pane = self.query_one("#preview-pane")
        focused = pane.screen.focused
        inside = focused is not None and pane in focused.ancestors_with_self
        narrow = (self.size.width if width is None else width) < 120
        pane.screen.set_class(inside and narrow, "-preview-focus")

    def action_preview(self) -> None:
        session = self.require_session()
        if session is None:
            return
        if "device" in self.running:
            self.notify("wait: the model is moving to another device", severity="warning")
            return
        self.start_preview(session, self.backward)

    def action_toggle_backward(self) -> None:
        self.backward = not self.backward
        self.notify(f"backward pass {'on' if self.backward else 'off'}", timeout=2)
        if self.session is not None and self.session.preview is not None:
            self.action_preview()
        else:
            self.set_status(self.idle_status())

    def action_toggle_plot(self) -> None:
        """The preview pane: table -> plot of the output std -> (after a backward pass) plot
        of the gradient std -> table."""
        table = self.query_one("#preview", PreviewTable)
        if table.preview is None:
            self.notify("no preview yet: p runs it, then v plots it", timeout=3)
            return
        views = ["table", "forward"] + (["backward"] if table.preview.backward else [])
        self.preview_view = views[(views.index(self.preview_view) + 1) % len(views)]
        self.show_preview_view()
