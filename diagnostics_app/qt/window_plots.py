"""Plots and playback of the main window: which rows the plot area shows, the requests for
their data and what is done with it, and the player wired to the playhead.

The selection's rows go to the controller's plot loader; the loaded arrays go to the plot
area, and the decoded audio (when it was asked for) to the player, which then plays the
selected source from where the plot area was clicked. A mixin of
:class:`~diagnostics_app.qt.main_window.MainWindow`, apart from it because this is the one
part of the window that keeps state of its own (what is plotted, which source's audio the
player holds).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QStyle

from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.states import PENDING, WITH_DATA
from diagnostics_app.qt.window_host import WindowHost
from diagnostics_app.qt.workers import PlotResult

MAX_PLOTS = 8  # feature lanes shown at once
# a reload hands kept lanes their data for about this long per turn of the event loop
PLOT_UPDATE_BUDGET_MS = 4.0


class PlotPlaybackMixin(WindowHost):
    def _init_playback(self) -> None:
        if self.player.available:
            self.playback_label.setText("")
            return
        reason = self.player.unavailable_reason or "no audio output device"
        self.actionPlay.setEnabled(False)
        tip = f"Playback unavailable: {reason}"
        self.actionPlay.setToolTip(tip)
        self.actionPlay.setStatusTip(tip)
        self.playback_label.setText(f"<span style='color:#757575'>{html.escape(tip)}</span>")
        self.playback_label.setToolTip(tip)

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
        want_samples = self.player.available and self._samples_source != source
        self.controller.request_plot(source, title, rows, want_samples)

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
        if result.samples is not None and result.sample_rate:
            self.player.load(result.samples, result.sample_rate)
            self._samples_source = result.source_id
        for err in result.errors:
            self.statusBar().showMessage(err, 8000)

    @Slot()
    def _toggle_play(self) -> None:
        if not self.player.available:
            self.statusBar().showMessage(
                f"Playback unavailable: {self.player.unavailable_reason}", 5000
            )
            return
        if self._samples_source != self.selected_source():
            self.statusBar().showMessage("Audio for playback is still loading", 3000)
            return
        self.player.toggle()

    @Slot(float)
    def _on_seek(self, seconds: float) -> None:
        self._seek_position = seconds
        self.plot_area.set_playhead(seconds)
        if self.player.available and self._samples_source == self.selected_source():
            self.player.play(seconds)

    @Slot(float)
    def _on_play_position(self, seconds: float) -> None:
        self.plot_area.set_playhead(seconds)

    @Slot(str)
    def _on_play_error(self, message: str) -> None:
        self.statusBar().showMessage(f"Playback failed: {message}", 8000)

    @Slot(bool)
    def _on_play_state(self, playing: bool) -> None:
        style = self.style()
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.actionPlay.setIcon(style.standardIcon(icon))
