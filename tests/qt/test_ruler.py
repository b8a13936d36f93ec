"""The plot area's navigation aids: the ruler at the top (m:ss.mmm, bars.beats), the crosshair
readout and hover line, lane highlights."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from diagnostics_app.core.tempo import TempoMap, TempoSegment
from diagnostics_app.core.timefmt import format_time
from diagnostics_app.qt.plots import Lane, PlotArea
from diagnostics_app.qt.plots.lane_style import LaneStyle, book
from diagnostics_app.qt.plots.lanes import HIGHLIGHT_COLOR
from diagnostics_app.qt.plots.ruler import PLAYHEAD_COLOR
from tests.qt.test_plots import (
    STEP,
    line_item,
    pitch_item,
    spectrogram_item,
    synthetic_peaks,
    to_array,
)

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def area(qtbot: QtBot) -> Iterator[PlotArea]:
    widget = PlotArea()
    qtbot.addWidget(widget)
    widget.resize(1000, 420)  # shorter than the lanes: they scroll
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.clear()


def canvas(area: PlotArea) -> pg.GraphicsLayoutWidget:
    found = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    assert found is not None
    return found


def in_area(area: PlotArea, lane: Lane, t: float, y: float) -> QPointF:
    """Where a lane's view point is in the plot area's own coordinates."""
    c = canvas(area)
    pos = c.mapFromScene(lane.vb.mapViewToScene(QPointF(t, y)))
    return QPointF(c.viewport().mapTo(area, pos))


def show_many(area: PlotArea, tempo: TempoMap | None = None) -> None:
    items = [line_item("rms"), spectrogram_item(2000), pitch_item(), line_item("centroid")]
    area.show_plot(
        "song", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], tempo or TempoMap(), items
    )


def test_ruler_stays_at_the_top_and_shares_the_lanes_x(area: PlotArea, qtbot: QtBot) -> None:
    show_many(area)
    scroll = area._scroll
    bar = scroll.verticalScrollBar()
    assert bar.maximum() > 0  # the lanes do not fit: they scroll
    ruler = area.ruler
    top = ruler.mapTo(area, QPoint(0, 0)).y()
    assert top < scroll.mapTo(area, QPoint(0, 0)).y()  # above the lanes' scroll area
    bar.setValue(bar.maximum())  # scroll to the last lane
    qtbot.waitUntil(lambda: not area.refresh_pending, timeout=2000)
    assert ruler.isVisible() and ruler.mapTo(area, QPoint(0, 0)).y() == top
    first = area.lanes()[0]
    assert in_area(area, first, 0.0, 0.0).y() < scroll.mapTo(area, QPoint(0, 0)).y()  # gone
    # a time is at the same x in the ruler and in every lane, scrolled or not
    area.set_time_range(10.0, 20.0)
    area.refresh()
    for t in (10.0, 12.5, 20.0):
        ruler_x = ruler.x_of(t)
        assert ruler_x is not None
        x_in_area = ruler.mapTo(area, QPointF(ruler_x, 0.0)).x()
        for lane in area.lanes():
            assert abs(in_area(area, lane, t, 0.0).x() - x_in_area) <= 1.0
    # the ruler's pixels: labels drawn (light) over its dark background
    pixels = to_array(ruler.grab().toImage())
    assert pixels.max() > 180 and np.median(pixels) < 60


def test_ruler_labels_follow_the_zoom(area: PlotArea) -> None:
    show_many(area)
    ruler = area.ruler
    area.set_time_range(0.0, 30.0)
    labels = [label for _, label in ruler.labelled_ticks()]
    assert labels[:3] == ["0:00", "0:05", "0:10"]
    area.set_time_range(1.03, 3.0)  # two seconds: 0.2 s apart, tenths
    ticks = ruler.labelled_ticks()
    assert ticks[0][1] == "0:01.2" and ticks[0][0] == pytest.approx(1.2)
    assert ticks[1][1] == "0:01.4"
    area.set_time_range(2.0, 2.02)  # 20 ms: milliseconds
    assert ruler.labelled_ticks()[1][1] == "0:02.002"


def test_ruler_in_bars_beats(area: PlotArea) -> None:
    tempo = TempoMap((TempoSegment(0.0, 120.0), TempoSegment(16.0, 60.0)))
    show_many(area, tempo)
    ruler = area.ruler
    area.set_ruler_mode(True)
    area.set_time_range(0.0, 30.0)
    ticks = ruler.labelled_ticks()
    assert ticks[0] == (0.0, "1")  # bars (beats too close to label)
    assert all("." not in label for _, label in ticks)
    assert (2.0, "2") in ticks or all(int(label) % 2 for _, label in ticks[1:2])
    area.set_time_range(15.0, 19.0)  # wide beats: bar.beat
    ticks = ruler.labelled_ticks()
    assert (16.0, "9.1") in ticks and (17.0, "9.2") in ticks
    area.set_ruler_mode(True, available=False)  # no tempo map: time, whatever was chosen
    assert ruler.labelled_ticks()[0][1].startswith("0:15")
    area.set_ruler_mode(False)
    assert ruler.labelled_ticks()[0][1] == "0:15.0"  # 4 s shown: half seconds


def hover(area: PlotArea, qtbot: QtBot, lane: Lane, t: float, y: float) -> str:
    """Move the mouse over a lane's view point; the readout it gives."""
    c = canvas(area)
    # pyqtgraph drops a move that comes within its rate limit (10 ms) of the last one
    qtbot.waitUntil(c.scene()._moveEventIsAllowed, timeout=2000)
    pos = c.mapFromScene(lane.vb.mapViewToScene(QPointF(t, y)))  # after the events ran
    with qtbot.waitSignal(area.hoverChanged, timeout=2000):
        move_mouse(c.viewport(), pos)
    return area.hover_text()


def move_mouse(widget: QWidget, pos: QPoint) -> None:
    """A mouse move (no button) delivered to ``widget`` now: the platform's synthesized moves
    are dropped when the cursor is already there (left by an earlier test)."""
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(pos),
        QPointF(widget.mapToGlobal(pos)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def test_crosshair_readout_of_a_line_an_image_and_pitch(area: PlotArea, qtbot: QtBot) -> None:
    show_many(area, TempoMap((TempoSegment(0.0, 120.0),)))
    area.set_time_range(9.0, 11.0)
    area.refresh()
    lanes = {lane.title.split()[0]: lane for lane in area.lanes()}
    rms, spec, pitch = lanes["rms"], lanes["spectrogram"], lanes["pitch"]
    area.scroll_to_lane(rms)
    x, y = rms.curves[0].xData, rms.curves[0].yData
    text = hover(area, qtbot, rms, 10.0, 0.3)
    at = area._hover.time()  # where the mouse is (a whole pixel near 10 s)
    assert at is not None and at == pytest.approx(10.0, abs=0.03)
    assert text.startswith(format_time(at) + "  ·  ")  # m:ss.mmm first
    i = int(np.argmin(np.abs(x - at)))  # the frame nearest the mouse
    assert f"rms: {float(y[i]):.4g} FS" in text
    lines = [line for _, line in area._hover._lines.values()]
    assert len(lines) == len(area.lanes())  # the hover line crosses every lane
    assert all(ln.isVisible() and ln.value() == area._hover.time() for ln in lines)
    assert area.ruler._hover == area._hover.time()
    area.set_ruler_mode(True)
    area.scroll_to_lane(spec)
    # the loud partial is bin 25 of 257 over 0..11,025 Hz: 1,072 Hz, 0 dBFS
    hz = 11_025.0 / 256 * 25
    # the default scale for music is log: the lane's y is log10(Hz), its rows resampled
    text = hover(area, qtbot, spec, 10.0, math.log10(hz))
    assert "bar 6.1" in text  # 120 BPM: 10 s is bar 6, beat 1
    found = re.search(r"spectrogram: ([\d.]+) kHz", text)
    assert found is not None, text
    assert float(found[1]) * 1000 == pytest.approx(hz, rel=0.02)
    # linear: one row per stored bin, the level read from that bin
    book().set(spec.style_key, LaneStyle("linear"))
    assert getattr(spec.image, "scale", None) == "linear"
    text = hover(area, qtbot, spec, 10.0, hz)
    found = re.search(r"spectrogram: ([\d.]+) kHz \((C6|C#6|B5)[^)]*\) · (\S+) dBFS", text)
    assert found is not None, text
    step = 11_025.0 / 256
    row = round(float(found[1]) * 1000 / step)  # the bin named (to the pixel: ±1 of the partial)
    assert abs(row - 25) <= 1
    image = spec.image.image  # (bins, columns), one frame per column here
    col = round((area._hover.time() or 0.0) / (512 / 22_050))
    assert float(found[3]) == pytest.approx(float(image[row, col]), abs=0.01)
    area.scroll_to_lane(pitch)
    text = hover(area, qtbot, pitch, 9.2, sum(pitch.y_range) / 2)  # confidence 1: voiced
    assert "f0 " in text and "Hz (" in text and "confidence" in text
    text = hover(area, qtbot, pitch, 10.2, sum(pitch.y_range) / 2)  # confidence 0: unvoiced
    assert "pitch: unvoiced" in text
    # leaving the lanes clears the readout and the hover line
    with qtbot.waitSignal(area.hoverChanged, timeout=2000):
        area._set_hover(None, "")
    assert area.hover_text() == "" and area._hover.time() is None


def test_highlight_scrolls_a_lane_into_view_and_frames_it(area: PlotArea, qtbot: QtBot) -> None:
    show_many(area)
    last = area.lanes()[-1]
    viewport = area._scroll.viewport()
    marked = area.highlight_lanes([("centroid",)])
    assert marked == [last] and last.highlighted
    assert not any(lane.highlighted for lane in area.lanes()[:-1])
    rect = canvas(area).mapFromScene(last.plot.sceneBoundingRect()).boundingRect()
    top_left = canvas(area).mapTo(viewport, rect.topLeft())
    bottom = canvas(area).mapTo(viewport, rect.bottomLeft()).y()
    assert top_left.y() >= 0 and bottom <= viewport.height() + 1  # all of it in view
    # the frame's colour along the lane's left edge, not along an unmarked lane's
    pixels = to_array(area.grab().toImage())
    frame_x = area._scroll.viewport().mapTo(area, top_left).x() + 1
    mid = area._scroll.viewport().mapTo(area, QPoint(0, (top_left.y() + bottom) // 2)).y()
    column = pixels[mid - 5 : mid + 5, frame_x - 1 : frame_x + 2]
    assert (np.abs(column - np.array(HIGHLIGHT_COLOR)).sum(axis=2) < 60).any()
    area.highlight_lanes([])
    assert not last.highlighted


def test_a_row_selected_before_its_lane_is_built_is_scrolled_to_when_it_comes(
    area: PlotArea,
) -> None:
    """The window selects the first issue as the rows arrive, before the plots load: the
    lane is marked and scrolled into view when it is built."""
    assert area.highlight_lanes([("centroid",)]) == []  # no lanes yet
    show_many(area)
    area.refresh()
    last = area.lanes()[-1]
    assert last.highlighted
    viewport = area._scroll.viewport()
    rect = canvas(area).mapFromScene(last.plot.sceneBoundingRect()).boundingRect()
    top = canvas(area).mapTo(viewport, rect.topLeft()).y()
    bottom = canvas(area).mapTo(viewport, rect.bottomLeft()).y()
    assert top >= 0 and bottom <= viewport.height() + 1  # all of it in view


def test_playhead_marker_on_the_ruler(area: PlotArea) -> None:
    show_many(area)
    area.set_playhead(12.0)
    ruler = area.ruler
    x = ruler.x_of(12.0)
    assert x is not None
    pixels = to_array(ruler.grab().toImage())
    near = pixels[ruler.height() - 4, int(x) - 1 : int(x) + 2]
    assert (np.abs(near - np.array(PLAYHEAD_COLOR.getRgb()[:3])).sum(axis=1) < 60).any()


def test_clicking_the_ruler_seeks(area: PlotArea, qtbot: QtBot) -> None:
    show_many(area)
    ruler = area.ruler
    x = ruler.x_of(7.5)
    assert x is not None
    with qtbot.waitSignal(area.seekRequested, timeout=2000) as blocker:
        qtbot.mouseClick(ruler, Qt.MouseButton.LeftButton, pos=QPoint(round(x), 8))
    assert blocker.args[0] == pytest.approx(7.5, abs=0.1)


def test_ruler_context_menu_switches_the_mode(area: PlotArea, qtbot: QtBot) -> None:
    show_many(area)
    ruler = area.ruler
    menu = ruler.mode_menu(ruler)
    time_action, bars_action = menu.actions()
    assert time_action.isChecked() and bars_action.isEnabled()
    with qtbot.waitSignal(area.rulerModeChanged, timeout=2000) as blocker:
        bars_action.trigger()
    assert blocker.args == ["bars"]
    menu.deleteLater()
    area.set_ruler_mode(False, available=False)  # no tempo map: bars.beats cannot be chosen
    menu = ruler.mode_menu(ruler)
    assert not menu.actions()[1].isEnabled()
    menu.deleteLater()
