"""The main window's side of playback, on a real PortAudio stream (ALSA's ``null`` device,
see :mod:`tests.qt.test_playback`): the selected source is opened in the player (nothing
decoded until Play), the transport keys, the time-range selection (loop, play once), channel
mute and solo, and the output device in Settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import soundfile as sf
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diagnostics_app.core.playback_stream import FileSource
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.playback import Player
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
    # while playing, Home goes on playing from the start
    window.actionGoToStart.trigger()
    assert player.play(10.0)
    window.actionGoToStart.trigger()
    assert player.is_playing() or player.position() == end
    player.pause()
