"""Playback in the main window: the player wired to the selection, the playhead and the
transport.

The selected source is opened in the player when the selection changes (its header only;
:meth:`~diagnostics_app.qt.playback.Player.open_source`): nothing is decoded until Play. The
playhead follows the player in every lane and in the status bar (``playheadLabel``, m:ss.mmm);
Space plays and pauses, Home and End move the playhead to the start and the end, a click on
the plots plays from there. Without an output device everything but the sound still works (the
playhead moves) and the status bar says why there is no sound. A mixin of
:class:`~diagnostics_app.qt.main_window.MainWindow`.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel, QStyle

from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.timefmt import format_time
from diagnostics_app.qt.window_host import WindowHost

NOTICE_MS = 10_000  # how long a playback notice stays in the status bar


def format_playhead(seconds: float) -> str:
    """``m:ss.mmm`` (minutes unbounded)."""
    return format_time(seconds, 3)


class PlaybackMixin(WindowHost):
    _player_source: str | None
    playhead_label: QLabel

    def _init_playback(self) -> None:
        """The playback labels, and why there is no sound (no device) or why the remembered
        device is not used (gone: the default plays instead)."""
        self._player_source = None
        self.playhead_label = QLabel(format_playhead(0.0), self)
        self.playhead_label.setObjectName("playheadLabel")
        self.playhead_label.setToolTip("Playhead")
        self.statusBar().insertPermanentWidget(0, self.playhead_label)
        self.player.noticeOccurred.connect(self._on_play_notice)
        self.plot_area.selectionChanged.connect(self._on_plot_selection)
        self._update_selection_actions()
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

    def _show_device_notice(self) -> None:
        """The remembered output device is gone: the default plays, and the status bar says so."""
        if self.player.available and self.player.device_notice:
            self._on_play_notice(self.player.device_notice)

    def _open_in_player(self, source: str | None) -> None:
        """Make ``source`` the player's (its header only), when it is not already."""
        if source == self._player_source:
            return
        self._player_source = source
        path = None
        if source is not None:
            try:
                path = self.controller.project.audio_path(source)
            except DiagnosticsError:
                path = None  # a source known only from the store: nothing to play
        if path is None:
            self.player.close_source()
        else:
            self.player.open_source(path)
        self._rebuild_channels_menu()  # every channel heard again

    # -- transport ------------------------------------------------------------------------

    @Slot()
    def _toggle_play(self) -> None:
        if not self.player.available:
            self.statusBar().showMessage(
                f"Playback unavailable: {self.player.unavailable_reason}", 5000
            )
            return
        if self.player.duration() <= 0:
            self.statusBar().showMessage("Nothing to play: no audio file for this source", 3000)
            return
        self.player.toggle()

    @Slot()
    def _go_to_start(self) -> None:
        self._move_playhead(0.0)

    @Slot()
    def _go_to_end(self) -> None:
        self._move_playhead(self.player.duration() or self.plot_area.duration())

    def _move_playhead(self, seconds: float) -> None:
        """Seek (playing goes on from there) and show the playhead."""
        if self.player.duration() > 0:
            self.player.seek(seconds)
        else:
            self._on_play_position(seconds)
        self.plot_area.show_time(seconds)

    # -- the time-range selection ------------------------------------------------------------

    def _update_selection_actions(self) -> None:
        selected = self.plot_area.selection() is not None
        for action in (self.actionPlaySelection, self.actionLoopSelection):
            action.setEnabled(selected and self.player.available)
        self.actionClearSelection.setEnabled(selected)

    @Slot(object)
    def _on_plot_selection(self, selection: tuple[float, float] | None) -> None:
        """A new selection: the loop (when on) follows it; none: the loop is off."""
        self._update_selection_actions()
        if selection is None:
            self.actionLoopSelection.setChecked(False)
            self.player.set_loop(None)
        elif self.actionLoopSelection.isChecked():
            self._loop_selection(True)

    @Slot(bool)
    def _loop_selection(self, on: bool) -> None:
        """Loop the selection while playing (a playhead outside it moves to its start)."""
        selection = self.plot_area.selection()
        if not on or selection is None:
            self.actionLoopSelection.setChecked(False)
            self.player.set_loop(None)
            return
        start, end = selection
        self.player.set_loop(start, end)
        if not start <= self.player.position() <= end:
            self.player.seek(start)

    @Slot()
    def _play_selection(self) -> None:
        """Play the selection once, then stop at its end."""
        selection = self.plot_area.selection()
        if selection is None or not self.player.available or self.player.duration() <= 0:
            return
        self.player.play_range(*selection)

    @Slot()
    def _clear_selection(self) -> None:
        self.plot_area.set_selection(None)

    @Slot(float)
    def _on_seek(self, seconds: float) -> None:
        """A click on the plots: play from there (without a device: move the playhead)."""
        if self.player.available and self.player.duration() > 0:
            self.player.play(seconds)
        elif self.player.duration() > 0:
            self.player.seek(seconds)
        else:
            self._on_play_position(seconds)

    @Slot(float)
    def _on_play_position(self, seconds: float) -> None:
        self._seek_position = seconds
        self.plot_area.set_playhead(seconds)
        self.playhead_label.setText(format_playhead(seconds))

    @Slot(str)
    def _on_play_error(self, message: str) -> None:
        self.statusBar().showMessage(f"Playback failed: {message}", 8000)

    @Slot(str)
    def _on_play_notice(self, message: str) -> None:
        self.statusBar().showMessage(f"Playback: {message}", NOTICE_MS)

    @Slot(bool)
    def _on_play_state(self, playing: bool) -> None:
        style = self.style()
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.actionPlay.setIcon(style.standardIcon(icon))
