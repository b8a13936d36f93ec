"""Plots of the main window: which rows the plot area shows, the requests for their data and
what is done with it.

The selection's rows go to the controller's plot loader; the loaded arrays go to the plot
area. The selected source is opened in the player here too (its header only: nothing is
decoded until Play; :mod:`.window_playback`). A mixin of
:class:`~diagnostics_app.qt.main_window.MainWindow`, apart from it because this part of the
window keeps state of its own (what is plotted).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu

from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.states import PENDING, WITH_DATA
from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.qt.plots.range_shading import row_changes
from diagnostics_app.qt.plots.ruler import BARS
from diagnostics_app.qt.window_host import WindowHost
from diagnostics_app.qt.workers import PlotResult, feature_label

MAX_PLOTS = 8  # feature lanes shown at once
# a reload hands kept lanes their data for about this long per turn of the event loop; 0: one
# lane per turn, so each lane is repainted on its own before the next one takes its data (a
# 4 ms budget gave one turn several lanes, then one paint of all of them: 10-15 ms in a row)
PLOT_UPDATE_BUDGET_MS = 0.0


def lane_prefix(row: Row) -> tuple[object, ...]:
    """The start of the keys of a row's lanes in the plot area (the peaks row: the waveform)."""
    if row.key.feature == "peaks":
        return ("waveform",)
    return (feature_label(row), row.key.feature)


class PlotsMixin(WindowHost):
    hover_label: QLabel
    actionRulerBars: QAction

    def _init_plots(self, view_menu: QMenu) -> None:
        """The crosshair readout in the status bar, and the ruler's mode (View menu, the
        ruler's context menu; remembered in the settings)."""
        self.hover_label = QLabel(self)
        self.hover_label.setObjectName("hoverLabel")
        self.hover_label.setToolTip("Under the mouse: time and value")
        self.statusBar().insertPermanentWidget(1, self.hover_label)
        self.hover_label.setContentsMargins(12, 0, 6, 0)  # apart from the playhead's time
        self.plot_area.hoverChanged.connect(
            lambda text: self.hover_label.setText(f"Cursor {text}" if text else "")
        )
        self.actionRulerBars = QAction("Ruler in &Bars.Beats", self)
        self.actionRulerBars.setObjectName("actionRulerBars")
        self.actionRulerBars.setCheckable(True)
        self.actionRulerBars.setStatusTip(
            "Label the time ruler in bars.beats of the tempo map (else m:ss.mmm)"
        )
        self.actionRulerBars.toggled.connect(self._set_ruler_bars)
        view_menu.addSeparator()
        view_menu.addAction(self.actionRulerBars)
        self.plot_area.rulerModeChanged.connect(lambda mode: self._set_ruler_bars(mode == BARS))
        self._update_ruler_mode()

    def _has_tempo_map(self) -> bool:
        project = self.controller.project
        return project.tempo_map_given or project.tempo_map != TempoMap()

    def _update_ruler_mode(self) -> None:
        """The action and the ruler follow the setting and whether there is a tempo map."""
        bars, available = self.controller.settings.ruler_bars, self._has_tempo_map()
        self.actionRulerBars.setEnabled(available)
        blocked = self.actionRulerBars.blockSignals(True)
        self.actionRulerBars.setChecked(bars and available)
        self.actionRulerBars.blockSignals(blocked)
        self.plot_area.set_ruler_mode(bars, available)

    @Slot(bool)
    def _set_ruler_bars(self, bars: bool) -> None:
        if bars != self.controller.settings.ruler_bars:
            self.controller.settings = replace(self.controller.settings, ruler_bars=bars)
            if self.settings_store is not None:
                self.settings_store.save(self.controller.settings)
        self._update_ruler_mode()

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
        # the lanes' state marks follow the rows now, not only when their data is reloaded
        # (a reload may be superseded, fail, or bring nothing new for a lane)
        self.plot_area.set_lane_marks({lane_prefix(r): (r.state == "stale", r.state) for r in rows})
        self.plot_area.range_shading.set_changes({lane_prefix(r): row_changes(r) for r in rows})
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
