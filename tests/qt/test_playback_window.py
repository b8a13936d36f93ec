"""The main window's side of playback, on a real PortAudio stream (ALSA's ``null`` device,
see :mod:`tests.qt.test_playback`): the selected source is opened in the player (nothing
decoded until Play), the transport keys, the time-range selection (loop, play once), channel
mute and solo, and the output device in Settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import soundfile as sf
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QAction, QMouseEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from diagnostics_app.core.playback_stream import FileSource
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.playback import Player
from diagnostics_app.qt.settings import AppSettings, SettingsStore
from diagnostics_app.qt.window_playback import format_playhead
from tests.qt.test_playback import WAIT_MS, alsa_null, until_stopped

__all__ = ["alsa_null"]  # the fixture, used by name

WindowMaker = Callable[..., MainWindow]


def player_path(player: Player) -> Path | None:
    engine = player.engine
    source = engine.source if engine is not None else None
    return source.path if isinstance(source, FileSource) else None


def open_window(make_window: WindowMaker, qtbot: QtBot, source: str, **kw: Any) -> MainWindow:
    window = make_window(**kw)
    window.select(("source", source))
    path = Path(window.controller.project.audio_path(source))
    qtbot.waitUntil(lambda: player_path(window.player) == path, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.plot_area.duration() > 0, timeout=WAIT_MS)
    return window


def test_format_playhead() -> None:
    assert format_playhead(0.0) == "0:00.000"
    assert format_playhead(61.2345) == "1:01.234"
    assert format_playhead(59.9996) == "1:00.000"
    assert format_playhead(3725.5) == "62:05.500"


def test_selecting_a_source_opens_it_and_decodes_nothing_until_play(
    alsa_null: None, make_window: WindowMaker, qtbot: QtBot
) -> None:
    window = open_window(make_window, qtbot, "drums")
    player = window.player
    assert player.available
    window.select(("source", "bass"))  # another source: opened, its header only
    path = Path(window.controller.project.audio_path("bass"))
    assert player_path(player) == path
    assert player.engine is not None and player.engine._thread is None  # nothing decoded
    stats = player.stats()
    assert stats is not None and stats.delivered_frames == 0
    assert player.duration() == sf.info(str(path)).duration
    until_stopped(qtbot, player, window.actionPlay.trigger)
    stats = player.stats()
    assert stats is not None and stats.delivered_frames == sf.info(str(path)).frames
    assert window.playhead_label.text() == format_playhead(player.duration())
    assert window.findChild(type(window.playhead_label), "playheadLabel") is window.playhead_label


def test_home_and_end_move_the_playhead(
    alsa_null: None, make_window: WindowMaker, qtbot: QtBot
) -> None:
    window = open_window(make_window, qtbot, "drums")
    player, area = window.player, window.plot_area
    end = player.duration()
    assert end > 0
    area.set_time_range(2.0, 4.0)
    window.activateWindow()
    area.setFocus()
    qtbot.waitUntil(area._canvas.hasFocus)
    qtbot.keyClick(area._canvas, Qt.Key.Key_End)
    assert player.position() == end
    assert area.playhead() == end
    assert window.playhead_label.text() == format_playhead(end)
    lo, hi = area.time_range()
    assert hi == end and abs((hi - lo) - 2.0) < 1e-6  # scrolled to the playhead, same zoom
    qtbot.keyClick(area._canvas, Qt.Key.Key_Home)
    assert player.position() == 0.0 and area.playhead() == 0.0
    assert window.playhead_label.text() == "0:00.000"
    assert area.time_range()[0] == 0.0
    window.actionGoToEnd.trigger()  # from the menu, wherever the focus is
    assert player.position() == end
    # while playing, Home goes on playing from the start (a loop keeps the stream busy)
    player.set_loop(10.0, 12.0)
    assert player.play(10.0)
    seen: list[float] = []
    player.positionChanged.connect(seen.append)
    window.actionGoToStart.trigger()
    assert seen[0] == 0.0 and player.is_playing()
    qtbot.waitUntil(lambda: len(seen) > 3, timeout=WAIT_MS)
    assert player.is_playing() and all(p <= 12.0 for p in seen)
    player.pause()


def shift_drag(area: Any, lane: Any, t0: float, t1: float, shift: Any = None) -> None:
    """A Shift+drag (``shift``: other modifiers) with the left button on ``lane`` from time
    ``t0`` to ``t1``, as the canvas's viewport receives it."""
    canvas = area._canvas
    viewport = canvas.viewport()
    y = sum(lane.y_range) / 2

    def at(t: float) -> QPointF:
        return QPointF(canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(t, y))))

    shift = Qt.KeyboardModifier.ShiftModifier if shift is None else shift
    left = Qt.MouseButton.LeftButton
    steps = [at(t0 + (t1 - t0) * k / 4) for k in range(5)]

    def send(kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton, buttons: Any) -> None:
        global_pos = QPointF(viewport.mapToGlobal(pos.toPoint()))
        event = QMouseEvent(kind, pos, global_pos, button, buttons, shift)
        QApplication.sendEvent(viewport, event)

    rate_limit = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOptions(mouseRateLimit=0)  # synthetic moves come faster than a hand's
    try:
        # the pointer arrives (hover), presses, moves in steps, releases
        send(QEvent.Type.MouseMove, steps[0], Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
        send(QEvent.Type.MouseButtonPress, steps[0], left, left)
        for pos in steps[1:]:
            send(QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, left)
        send(QEvent.Type.MouseButtonRelease, steps[-1], left, Qt.MouseButton.NoButton)
    finally:
        pg.setConfigOptions(mouseRateLimit=rate_limit)


def test_shift_drag_selects_a_range_drawn_in_every_lane(
    make_window: WindowMaker, qtbot: QtBot
) -> None:
    window = make_window()
    window.select(("source", "drums"))
    area = window.plot_area
    qtbot.waitUntil(lambda: len(area.lanes()) >= 3, timeout=WAIT_MS)
    area.set_time_range(0.0, 10.0)
    lanes = area.lanes()
    assert not window.actionLoopSelection.isEnabled() or not window.player.available
    shift_drag(area, lanes[0], 6.0, 4.0, Qt.KeyboardModifier.NoModifier)  # a plain drag pans
    lo, hi = area.time_range()
    assert area.selection() is None and abs(lo - 2.0) < 0.2 and abs(hi - 12.0) < 0.2
    area.set_time_range(0.0, 10.0)
    with qtbot.waitSignal(area.selectionChanged) as changed:
        shift_drag(area, lanes[-1], 2.0, 6.0)  # on the last lane, backwards works too
    start, end = changed.args[0]
    assert abs(start - 2.0) < 0.1 and abs(end - 6.0) < 0.1
    assert area.selection() == (start, end)
    regions = area.time_selection.regions()
    assert len(regions) == len(lanes)
    assert all(r.isVisible() and r.getRegion() == (start, end) for r in regions)
    assert area.playhead() == 0.0  # a drag is not a click: no seek
    assert area.time_range() == (0.0, 10.0)  # and it did not pan
    # an edge dragged in one lane moves it in every lane
    regions[0].setRegion((3.0, end))
    regions[0].sigRegionChangeFinished.emit(regions[0])
    assert area.selection() == (3.0, end)
    assert all(r.getRegion() == (3.0, end) for r in regions)
    window.activateWindow()
    area.setFocus()
    qtbot.waitUntil(area._canvas.hasFocus)
    with qtbot.waitSignal(area.selectionChanged) as cleared:
        qtbot.keyClick(area._canvas, Qt.Key.Key_Escape)
    assert cleared.args == [None] and area.selection() is None
    assert not any(r.isVisible() for r in regions)
    assert not window.actionPlaySelection.isEnabled()


def test_loop_and_play_a_selection(alsa_null: None, make_window: WindowMaker, qtbot: QtBot) -> None:
    window = open_window(make_window, qtbot, "drums")
    player, area = window.player, window.plot_area
    area.set_selection((5.0, 5.5))
    assert window.actionLoopSelection.isEnabled() and window.actionPlaySelection.isEnabled()
    seen: list[float] = []
    window.actionLoopSelection.trigger()  # on: the playhead moves into the loop
    assert window.actionLoopSelection.isChecked()
    assert player.loop() == (5.0, 5.5) and player.position() == 5.0
    player.positionChanged.connect(seen.append)
    window.actionPlay.trigger()
    stats = player.stats
    qtbot.waitUntil(
        lambda: (s := stats()) is not None and s.delivered_frames > 3 * 0.5 * 44100,
        timeout=WAIT_MS,
    )  # round the loop more than three times
    assert player.is_playing()
    window.actionPlay.trigger()
    assert seen and all(5.0 <= p <= 5.5 for p in seen)
    assert 5.0 <= player.position() <= 5.5
    window.actionLoopSelection.trigger()  # off
    assert player.loop() is None
    # Play Selection: once, stopping at its end
    area.set_selection((10.0, 11.0))
    seen.clear()
    until_stopped(qtbot, player, window.actionPlaySelection.trigger)
    assert player.position() == 11.0
    assert seen[0] == 10.0 and seen[-1] == 11.0 and all(10.0 <= p <= 11.0 for p in seen)
    assert window.playhead_label.text() == "0:11.000"
    stats_now = player.stats()
    assert stats_now is not None
    # a new selection while looping moves the loop; clearing it stops looping
    window.actionLoopSelection.trigger()
    assert player.loop() == (10.0, 11.0)
    area.set_selection((1.0, 2.0))
    assert player.loop() == (1.0, 2.0)
    window.actionClearSelection.trigger()
    assert player.loop() is None and not window.actionLoopSelection.isChecked()


class Delivered:
    """The frames the callback delivered (the engine's tap), by file frame."""

    def __init__(self, player: Player) -> None:
        self.runs: list[tuple[int, np.ndarray]] = []
        assert player.engine is not None
        player.engine.tap = self

    def __call__(self, rows: np.ndarray, frame: int, epoch: int) -> None:
        self.runs.append((frame, rows.copy()))

    def frames(self) -> int:
        return sum(rows.shape[0] for _, rows in self.runs)


def test_muting_a_channel_silences_it(
    alsa_null: None, make_window: WindowMaker, qtbot: QtBot
) -> None:
    window = open_window(make_window, qtbot, "drums")
    player = window.player
    path = window.controller.project.audio_path("drums")
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert audio.shape[1] == 2 and rate == 44100
    menu = window.channels_menu
    assert menu.isEnabled()
    left, right = window.channel_actions
    assert (left.text(), right.text()) == ("ch1", "ch2") and left.isChecked()
    left.trigger()  # mute ch1: only ch2 is heard (on both outputs)
    assert window.channel_mask() == (False, True)
    tap = Delivered(player)
    until_stopped(qtbot, player, lambda: player.play_range(3.0, 4.0))
    assert tap.frames() == rate
    for frame, rows in tap.runs:
        want = audio[frame : frame + rows.shape[0], 1]
        assert np.allclose(rows, want[:, None], atol=1e-6)  # ch2 everywhere, nothing of ch1
    assert not np.allclose(audio[3 * rate : 4 * rate, 0], audio[3 * rate : 4 * rate, 1])
    # every channel muted: silence
    right.trigger()
    assert window.channel_mask() == (False, False)
    tap = Delivered(player)
    until_stopped(qtbot, player, lambda: player.play_range(3.0, 3.5))
    assert tap.frames() == rate // 2 and all(not rows.any() for _, rows in tap.runs)
    # solo from the submenu, then all again; another source resets the choice
    solo = window.solo_menu.findChild(QAction, "actionSolo1")
    assert solo is not None
    solo.trigger()
    assert window.channel_mask() == (True, False)
    window.hear_all_channels()
    assert window.channel_mask() == (True, True)
    left.trigger()
    window.select(("source", "bass"))  # mono: no channels to choose
    assert not menu.isEnabled() and window.channel_mask() == (True,)


def test_settings_list_the_output_devices_and_remember_the_choice(
    alsa_null: None, make_window: WindowMaker, qtbot: QtBot, settings_path: Path
) -> None:
    window = make_window()
    window.settings_store = SettingsStore(settings_path)
    dlg = window.settings_dialog()
    combo = dlg.output_device
    assert combo.objectName() == "outputDeviceCombo"
    items = [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]
    assert items[0] == ("System default", "")
    assert "default" in [data for _, data in items[1:]]  # ALSA's null device, as PortAudio lists it
    assert combo.currentData() == ""
    combo.setCurrentIndex(combo.findData("default"))
    notices: list[str] = []
    window.player.noticeOccurred.connect(notices.append)
    window.apply_settings(dlg.value())
    dlg.deleteLater()
    assert SettingsStore(settings_path).load().output_device == "default"  # remembered
    assert window.player.device is not None and window.player.device.name == "default"
    assert notices == []
    # a remembered device that is not listed stays chosen in the dialog, marked
    window.apply_settings(replace(window.controller.settings, output_device="Gone USB"))
    assert notices and "Gone USB" in notices[-1]
    assert "Gone USB" in window.statusBar().currentMessage()
    dlg = window.settings_dialog()
    assert dlg.output_device.currentText() == "Gone USB (not available)"
    assert dlg.value().output_device == "Gone USB"
    dlg.deleteLater()


def test_a_remembered_device_that_is_gone_falls_back_with_a_message(
    alsa_null: None, make_window: WindowMaker, qtbot: QtBot
) -> None:
    window = make_window(settings=AppSettings(workers=2, output_device="USB headset, unplugged"))
    player = window.player
    assert player.available
    assert player.device is not None and player.device.is_default  # the fallback
    message = window.statusBar().currentMessage()
    assert "USB headset, unplugged" in message and "default" in message
    window.select(("source", "drums"))
    path = Path(window.controller.project.audio_path("drums"))
    qtbot.waitUntil(lambda: player_path(player) == path, timeout=WAIT_MS)
    until_stopped(qtbot, player, lambda: player.play_range(0.0, 0.5))  # plays on the default
    stats = player.stats()
    assert stats is not None and stats.delivered_frames == 44100 // 2


def test_alt_click_on_a_channel_solos_it(
    alsa_null: None, make_window: WindowMaker, qtbot: QtBot, monkeypatch: Any
) -> None:
    import diagnostics_app.qt.window_channels as channels

    window = open_window(make_window, qtbot, "drums")
    masks: list[Any] = []
    monkeypatch.setattr(window.player, "set_channel_mask", masks.append)

    class AltHeld:
        @staticmethod
        def keyboardModifiers() -> Qt.KeyboardModifier:
            return Qt.KeyboardModifier.AltModifier

    monkeypatch.setattr(channels, "QApplication", AltHeld)
    window.channel_actions[1].trigger()  # Alt+click on ch2 (checked): hear it alone
    assert window.channel_mask() == (False, True) and masks == [(False, True)]
