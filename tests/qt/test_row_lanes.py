"""Rows and lanes in the main window: a selected row's lane is scrolled to and marked, a click
on a lane selects its row, lane marks follow every state change, the playhead's time and the
ruler's mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QSplitter
from pytestqt.qtbot import QtBot

from diagnostics_app.qt.app import wait_until_idle
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.plots import Lane
from diagnostics_app.qt.settings import AppSettings, SettingsStore
from tests.qt.test_main_window import _set_tempo_now, row_of
from tests.qt.test_ruler import move_mouse

WindowMaker = Callable[..., MainWindow]


def lane_of(window: MainWindow, feature: str) -> Lane:
    return next(lane for lane in window.plot_area.lanes() if lane.key[1:2] == (feature,))


def small_plots(make_window: WindowMaker) -> MainWindow:
    """The demo's drums with its plots, the plot area short enough that the lanes scroll."""
    window = make_window()
    assert wait_until_idle(window)
    splitter = window.findChild(QSplitter, "centreSplitter")
    assert splitter is not None
    splitter.setSizes([520, 340])  # room for one image lane (140 px at least), not all
    assert wait_until_idle(window)
    assert window.plot_area._scroll.verticalScrollBar().maximum() > 0
    return window


def in_viewport(window: MainWindow, lane: Lane) -> tuple[int, int, int]:
    """(top, bottom) of the lane in the scroll area's viewport, and the viewport's height."""
    area = window.plot_area
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    rect = canvas.mapFromScene(lane.plot.sceneBoundingRect()).boundingRect()
    viewport = area._scroll.viewport()
    top = canvas.mapTo(viewport, rect.topLeft()).y()
    bottom = canvas.mapTo(viewport, rect.bottomLeft()).y()
    return top, bottom, viewport.height()


def test_selecting_a_row_scrolls_to_its_lane_and_marks_it(make_window: WindowMaker) -> None:
    window = small_plots(make_window)
    spec = lane_of(window, "spectrogram")
    top, bottom, height = in_viewport(window, spec)
    assert top >= height  # below the visible lanes
    assert window.table.select_key(row_of(window, "drums", "spectrogram").key)
    assert spec.highlighted
    assert [lane for lane in window.plot_area.lanes() if lane.highlighted] == [spec]
    top, bottom, height = in_viewport(window, spec)
    assert top >= 0 and bottom <= height + 1  # all of it in view
    # the peaks row marks the waveform lanes
    assert window.table.select_key(row_of(window, "drums", "peaks").key)
    marked = [lane.key[0] for lane in window.plot_area.lanes() if lane.highlighted]
    assert marked == ["waveform", "waveform"]
    assert not spec.highlighted
    assert in_viewport(window, window.plot_area.lanes()[0])[0] >= 0


def test_clicking_a_lane_selects_its_row(make_window: WindowMaker, qtbot: QtBot) -> None:
    window = small_plots(make_window)
    area = window.plot_area
    onset = lane_of(window, "onset")
    area.scroll_to_lane(onset)
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    title = onset.plot.titleLabel.sceneBoundingRect().center()  # the title: no seek
    pos = canvas.mapFromScene(QPointF(title))
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    current = window.table.current_row()
    assert current is not None and current.key.feature == "onset"
    assert [r.key.feature for r in window.table.selected_rows()] == ["onset"]
    assert onset.highlighted  # and the row's selection marks the lane
    # a click in a waveform lane selects the peaks row (and seeks)
    wave = area.lanes()[0]
    area.scroll_to_lane(wave)
    inside = canvas.mapFromScene(wave.vb.mapViewToScene(QPointF(3.0, 0.0)))
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=inside)
    current = window.table.current_row()
    assert current is not None and current.key.feature == "peaks"
    assert area.playhead() == pytest.approx(3.0, abs=0.1)


def test_lane_marks_follow_state_changes_without_reselecting(
    make_window: WindowMaker, settle: Callable[[MainWindow], None]
) -> None:
    window = make_window()
    assert wait_until_idle(window)
    c = window.controller
    assert window.table.select_key(row_of(window, "drums", "spectrogram").key)
    # a data file deleted: the row fails; its lane stays, marked, the source still selected
    row = row_of(window, "drums", "onset")
    assert row.state == "ok"
    entry = c.session.store.get(row.key.entry_key)
    assert entry is not None
    Path(c.session.store.path_of(entry.features["onset"].path)).unlink()
    c.refresh()
    settle(window)
    assert wait_until_idle(window)
    assert row_of(window, "drums", "onset").state == "failed"
    onset = lane_of(window, "onset")
    assert onset.state == "failed" and onset.title.endswith("— failed")
    assert lane_of(window, "spectrogram").highlighted  # the selected row's lane stays marked


def test_lane_marks_do_not_wait_for_plot_data(
    make_window: WindowMaker, settle: Callable[[MainWindow], None], monkeypatch: Any
) -> None:
    """A state change restyles the lane at once, even when no reload brings new data."""
    window = make_window()
    assert wait_until_idle(window)
    beat = lane_of(window, "beat_rms")
    assert beat.stale and beat.vb.border.style() == Qt.PenStyle.DashLine
    asked: list[str] = []
    monkeypatch.setattr(window.controller, "request_plot", lambda s, t, r: asked.append(s))
    _set_tempo_now(window, 100.0)  # the tempo the cache was computed with: beat_rms is ok
    settle(window)
    assert row_of(window, "drums", "beat_rms").state == "ok"
    assert asked  # a reload was asked for, and never came
    assert not beat.stale and beat.title == "beat_rms · core.beats · default"
    assert beat.vb.border.style() == Qt.PenStyle.NoPen
    assert all(curve.opts["pen"].style() == Qt.PenStyle.SolidLine for curve in beat.curves)


def test_playhead_time_and_crosshair_labels(make_window: WindowMaker, qtbot: QtBot) -> None:
    window = small_plots(make_window)
    window.player.positionChanged.emit(83.25)  # the player moved (driven, not played)
    assert window.playhead_label.text() == "1:23.250"
    assert window.plot_area.playhead() == 83.25
    window.player.positionChanged.emit(12.5)
    assert window.playhead_label.text() == "0:12.500"
    assert window.plot_area.ruler._playhead == 12.5
    # the crosshair readout goes to the status bar
    area = window.plot_area
    wave = area.lanes()[0]
    area.scroll_to_lane(wave)
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    qtbot.waitUntil(canvas.scene()._moveEventIsAllowed, timeout=2000)  # see test_ruler.hover
    pos = canvas.mapFromScene(wave.vb.mapViewToScene(QPointF(4.0, 0.5)))
    with qtbot.waitSignal(area.hoverChanged, timeout=2000):
        move_mouse(canvas.viewport(), pos)
    assert window.hover_label.text().startswith("Cursor 0:04.")
    assert "waveform · ch1:" in window.hover_label.text() and "dBFS" in window.hover_label.text()
    assert window.findChild(type(window.hover_label), "hoverLabel") is window.hover_label
    assert window.statusBar().isAncestorOf(window.hover_label)


def test_ruler_mode_from_the_view_menu_is_remembered(
    make_window: WindowMaker, settings_path: Path
) -> None:
    window = make_window()
    window.settings_store = SettingsStore(settings_path)
    assert wait_until_idle(window)
    ruler = window.plot_area.ruler
    assert window.actionRulerBars.isEnabled()  # the demo has a tempo map
    assert not ruler.in_bars
    window.actionRulerBars.trigger()
    assert ruler.in_bars and window.controller.settings.ruler_bars
    assert SettingsStore(settings_path).load().ruler_bars
    assert ruler.labelled_ticks()[0][1] == "1"  # bar 1
    window.plot_area.rulerModeChanged.emit("time")  # as the ruler's context menu does
    assert not ruler.in_bars and not window.actionRulerBars.isChecked()
    assert not SettingsStore(settings_path).load().ruler_bars


def test_no_tempo_map_no_bars(make_window: WindowMaker, demo_project: Path) -> None:
    import json

    data = json.loads(demo_project.read_text())
    data.pop("tempo_map", None)
    demo_project.write_text(json.dumps(data))
    window = make_window(settings=AppSettings(workers=2, ruler_bars=True))
    assert not window.actionRulerBars.isEnabled() and not window.actionRulerBars.isChecked()
    assert not window.plot_area.ruler.in_bars
