"""Plots of the main window: which rows the plot area shows, the requests for their data and
what is done with it.

The selection's rows go to the controller's plot loader; the loaded arrays go to the plot
area. The selected source is opened in the player here too (its header only: nothing is
decoded until Play; :mod:`.window_playback`). A mixin of
:class:`~diagnostics_app.qt.main_window.MainWindow`, apart from it because this part of the
window keeps state of its own (what is plotted).
"""

from __future__ import annotations

from PySide6.QtCore import Slot

from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.states import PENDING, WITH_DATA
from diagnostics_app.qt.window_host import WindowHost
from diagnostics_app.qt.workers import PlotResult

MAX_PLOTS = 8  # feature lanes shown at once
# a reload hands kept lanes their data for about this long per turn of the event loop
PLOT_UPDATE_BUDGET_MS = 4.0


class PlotsMixin(WindowHost):
    def _plot_rows(self) -> list[Row]:
        """The rows the plot area shows: with data, or requested and on their way (empty
        lanes titled with their state, so lanes do not come and go during an analysis)."""
        rows = [
            r
            for r in self.selection_rows()
            if (r.updated is not None and r.state in WITH_DATA) or r.state in PENDING
        ]
        peaks = [r for r in rows if r.key.feature == "peaks"]
        others = [r for r in rows if r.key.feature != "peaks"][:MAX_PLOTS]
        return peaks[:1] + others

    def _update_plots(self, force: bool = False) -> None:
        source = self.selected_source()
        self._open_in_player(source)
        if source is None:
            if self._plot_source is not None:
                self.plot_area.clear()
                self._plot_source = None
                self._plot_signature = None
            return
        rows = self._plot_rows()
        signature = (
            self._selection,
            tuple((r.key, r.updated, r.state) for r in rows),
            self.controller.project.tempo_map,
        )
        if not force and signature == self._plot_signature:
            return
        self._plot_signature = signature
        assert self._selection is not None
        kind, ident = self._selection
        if kind == "track":
            track = self.controller.project.track(ident)
            title = f"{track.name} — {source}"
        else:
            title = source
        self.controller.request_plot(source, title, rows)

    @Slot(object)
    def _on_plot_loaded(self, result: PlotResult) -> None:
        """Hand the loaded arrays to the plot area: lanes of features shown before are kept
        and given the new data; the numpy work was done by the loader."""
        self._plot_source = result.source_id
        self.plot_area.show_plot(
            result.title,
            result.duration or 0.0,
            result.pyramid if result.pyramid is not None else result.peaks,
            result.peaks_step,
            result.channel_names,
            self.controller.project.tempo_map,
            result.features,
            budget_ms=PLOT_UPDATE_BUDGET_MS,
        )
        if result.pyramid is None and result.peaks is None and result.errors:
            self.plot_area.set_waveform_note(result.errors[0])  # e.g. the source is missing
        for err in result.errors:
            self.statusBar().showMessage(err, 8000)
