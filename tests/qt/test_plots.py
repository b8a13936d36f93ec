"""The plot area: level of detail of long waveforms, feature lanes, grid, playhead, input."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.tempo import TempoMap, TempoSegment
from diagnostics_app.qt.plots import FeaturePlot, Lane, PeaksPyramid, PlotArea
from diagnostics_app.qt.plots.features import (
    MAX_IMAGE_COLUMNS,
    STALE_COLOR,
    pending_plot,
    plot_duration,
    pool_columns,
    prepare_lanes,
)
from diagnostics_app.qt.plots.lane_style import LaneStyle, book
from diagnostics_app.qt.plots.plot_area import TITLE_HEIGHT
from diagnostics_app.qt.workers import PyramidCache

# the offscreen platform says this (a Qt warning) whenever a widget with a layout is shown
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SR = 48_000
BLOCK = 64
STEP = BLOCK / SR
HOP = 512 / 22_050


def no_lane_time_axis(area: PlotArea) -> bool:
    return not any(lane.plot.getAxis("bottom").isVisible() for lane in area.lanes())


def synthetic_peaks(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """(blocks, channels, 2) min/max of a modulated noise at 48 kHz, 64-sample blocks."""
    blocks = round(seconds / STEP)
    rng = np.random.default_rng(seed)
    env = 0.2 + 0.7 * np.abs(np.sin(np.linspace(0.0, 40 * np.pi, blocks, dtype=np.float32)))
    peaks = np.empty((blocks, channels, 2), np.float32)
    for ch in range(channels):
        wobble = rng.random(blocks, dtype=np.float32) * 0.1
        peaks[:, ch, 1] = env * (0.9 + wobble)
        peaks[:, ch, 0] = -env * (0.9 + wobble[::-1])
    return peaks


def line_item(
    name: str = "rms", seconds: float = 30.0, stale: bool = False, unit: str = "FS"
) -> FeaturePlot:
    n = round(seconds / HOP)
    times = np.arange(n) * HOP
    data = (0.3 + 0.2 * np.sin(times * 2.0))[:, None, None].astype(np.float32)
    meta = OutputMeta(name, 1, 1, frame_step=HOP, unit=unit, channel_names=("mix",))
    return FeaturePlot(name, name, data, times, meta, stale=stale, state="stale" if stale else "ok")


def spectrogram_item(frames: int, bins: int = 257, stale: bool = False) -> FeaturePlot:
    times = np.arange(frames) * HOP
    freqs = np.linspace(0.0, 11_025.0, bins)
    rng = np.random.default_rng(1)
    data = (-80.0 + 70.0 * rng.random((frames, 1, bins))).astype(np.float32)
    data[:, 0, bins // 10] = 0.0  # a loud partial
    meta = OutputMeta(
        "spectrogram",
        1,
        bins,
        frame_step=HOP,
        bins=tuple(freqs),
        bin_unit="Hz",
        unit="dBFS",
        channel_names=("mix",),
        storage="u16db",
        value_range=(-80.0, 0.0),
    )
    return FeaturePlot("spectrogram", "spectrogram", data, times, meta, stale=stale)


def pitch_item(seconds: float = 30.0) -> FeaturePlot:
    n = round(seconds / HOP)
    times = np.arange(n) * HOP
    f0 = 220.0 * 2 ** (np.floor(times) % 5 / 12)
    conf = (np.sin(times) > -0.5).astype(np.float32)
    data = np.stack([f0, conf], axis=1)[:, None, :].astype(np.float32)
    meta = OutputMeta("pitch", 1, 2, frame_step=HOP, unit="Hz", width_names=("f0", "confidence"))
    return FeaturePlot("pitch", "pitch", data, times, meta)


def beat_rms_item(seconds: float = 30.0) -> FeaturePlot:
    times = TempoMap().beat_times(seconds, 4)
    data = (0.1 + 0.05 * np.cos(times))[:, None, None].astype(np.float32)
    meta = OutputMeta("beat_rms", 1, 1, frame_step=None, unit="FS")
    return FeaturePlot("beat_rms", "beat_rms", data, times, meta)


@pytest.fixture
def area(qtbot: QtBot) -> Iterator[PlotArea]:
    widget = PlotArea()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.clear()


def settle(qtbot: QtBot, area: PlotArea) -> None:
    """Wait for the rate-limited level-of-detail update a view change scheduled."""
    qtbot.waitUntil(lambda: not area.refresh_pending, timeout=2000)


def visible_points_per_pixel(area: PlotArea, lane: Lane) -> float:
    x0, x1 = area.time_range()
    curve = lane.strokes if lane.strokes is not None and lane.strokes.xData.size else lane.fill
    assert curve is not None
    x = curve.xData
    inside = int(np.count_nonzero((x >= x0) & (x <= x1)))
    return inside / float(lane.vb.width())


def to_array(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return arr[:, : img.width(), 2::-1].astype(np.int32)  # BGRA in memory → RGB


def area_point(area: PlotArea, lane: Lane, t: float, y: float) -> QPoint:
    """Where view point (t, y) of a lane is in ``area.grab()`` pixels."""
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    pos = canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(t, y)))
    return canvas.viewport().mapTo(area, pos)


def lane_region(area: PlotArea, lane: Lane) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a lane's view in ``area.grab()`` pixels, 2 px inside."""
    (x0, x1), (y0, y1) = lane.vb.viewRange()
    top_left, bottom_right = area_point(area, lane, x0, y1), area_point(area, lane, x1, y0)
    return top_left.x() + 2, top_left.y() + 2, bottom_right.x() - 2, bottom_right.y() - 2


# --- waveform level of detail ---------------------------------------------------------------


def test_pyramid_picks_coarser_levels_when_zoomed_out() -> None:
    pyr = PeaksPyramid(synthetic_peaks(600.0, channels=1), STEP)
    pixels = 1000.0
    previous = 0
    for span in (0.05, 1.0, 10.0, 60.0, 600.0):
        band = pyr.band(0.0, span, pixels)
        assert band.decimation >= previous
        previous = band.decimation
        blocks_in_view = span / band.step
        if band.decimation > 1:  # zoomed out: 1-2 blocks, i.e. 2-4 curve points, per pixel
            assert pixels <= blocks_in_view <= 2 * pixels
            assert band.mode == "lines"
        assert blocks_in_view <= 2 * pixels
    assert pyr.band(0.0, 600.0, pixels).decimation > pyr.band(0.0, 10.0, pixels).decimation
    assert pyr.band(0.0, 600.0, pixels).level > 0  # a stored coarser level, not just a reduction
    assert pyr.band(0.0, 0.05, pixels).mode == "fill"  # blocks wider than a pixel


def test_pyramid_band_is_the_true_min_max_of_its_blocks() -> None:
    peaks = synthetic_peaks(20.0, channels=2)
    pyr = PeaksPyramid(peaks, STEP)
    band = pyr.band(3.0, 13.0, 500.0)
    d = band.decimation
    first = round(band.first / STEP)
    for i in (0, band.blocks // 2, band.blocks - 2):
        group = peaks[first + i * d : first + (i + 1) * d]
        for ch in range(2):
            assert band.ys[ch][2 * i] == group[:, ch, 0].min()
            assert band.ys[ch][2 * i + 1] == group[:, ch, 1].max()


def test_waveform_curves_get_a_few_points_per_pixel(qtbot: QtBot, area: PlotArea) -> None:
    area.set_source("ten minutes", 600.0, synthetic_peaks(600.0), STEP, ["L", "R"], TempoMap())
    lanes = [lane for lane in area.lanes() if lane.kind == "waveform"]
    assert [lane.title for lane in lanes] == ["waveform · L", "waveform · R"]
    # the header's duration in the app's one time format (core.timefmt), minutes unbounded
    header = area.findChild(QLabel, "plotTitle")
    assert header is not None and header.text() == "ten minutes   10:00.0   2 channels"
    decimations = []
    for start, end in ((0.0, 600.0), (100.0, 160.0), (100.0, 101.0), (100.0, 100.05)):
        area.set_time_range(start, end)
        settle(qtbot, area)
        assert area.time_range() == pytest.approx((start, end), abs=1e-6)
        band = area.last_band
        assert band is not None
        decimations.append(band.decimation)
        for lane in lanes:
            assert visible_points_per_pixel(area, lane) <= 5.0
            # only the visible slice (plus a 25 % margin each side) is handed over
            assert lane.waveform_points() <= 2 * (1.5 * (end - start) / band.step + 4)
    assert decimations == sorted(decimations, reverse=True)
    assert decimations[0] > decimations[-1] == 1


def test_sixty_minutes_pan_without_big_curves(qtbot: QtBot, area: PlotArea) -> None:
    peaks = synthetic_peaks(3600.0)
    assert peaks.shape[0] == 2_700_000
    area.set_source("an hour", 3600.0, peaks, STEP, ["L", "R"], TempoMap())
    lanes = [lane for lane in area.lanes() if lane.kind == "waveform"]
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")

    def check() -> None:
        settle(qtbot, area)
        for lane in lanes:
            assert 0 < lane.waveform_points() <= 10_000
            assert visible_points_per_pixel(area, lane) <= 5.0

    check()  # the whole hour
    area.set_time_range(1200.0, 1260.0)
    check()
    moves = (
        ((Qt.Key.Key_Right,) * 10, lambda a, b: b[0] > a[0] + 50.0),  # panned right
        ((Qt.Key.Key_Minus,) * 5, lambda a, b: b[1] - b[0] > 7 * (a[1] - a[0])),  # zoomed out
        ((Qt.Key.Key_Left,) * 3, lambda a, b: b[0] < a[0]),  # panned left
    )
    for keys, moved in moves:
        before = area.time_range()
        for key in keys:
            qtbot.keyClick(canvas, key)
            check()
        assert moved(before, area.time_range())
    for offset in np.linspace(0.0, 3000.0, 12):
        area.set_time_range(offset, offset + 300.0)
        check()


def test_view_updates_are_rate_limited(qtbot: QtBot, area: PlotArea) -> None:
    area.set_source("x", 600.0, synthetic_peaks(600.0, channels=1), STEP, ["mono"], TempoMap())
    lane = area.lanes()[0]
    assert lane.strokes is not None
    before = lane.strokes.xData.copy()
    area.set_time_range(10.0, 20.0)
    area.set_time_range(11.0, 21.0)
    assert area.refresh_pending  # not applied at once: one update per timer period
    assert np.array_equal(lane.strokes.xData, before)
    settle(qtbot, area)
    assert lane.strokes.xData.min() < 11.0 < 21.0 < lane.strokes.xData.max()


def test_same_source_again_keeps_the_view(qtbot: QtBot, area: PlotArea) -> None:
    peaks = synthetic_peaks(120.0)
    area.set_source("x", 120.0, peaks, STEP, ["L", "R"], TempoMap())
    area.set_time_range(30.0, 40.0)
    pyramid = area._pyramid
    area.set_source("x", 120.0, peaks.copy(), STEP, ["L", "R"], TempoMap())
    assert area.time_range() == pytest.approx((30.0, 40.0))
    assert area._pyramid is pyramid
    area.set_source("y", 60.0, synthetic_peaks(60.0), STEP, ["L", "R"], TempoMap())
    assert area.time_range() == pytest.approx((0.0, 60.0))


def test_missing_peaks_still_gives_a_time_axis(area: PlotArea) -> None:
    area.set_source("no peaks", 30.0, None, STEP, ["L"], TempoMap())
    area.set_features([line_item()])
    lanes = area.lanes()
    assert "not calculated" in lanes[0].title
    assert no_lane_time_axis(area)  # the ruler is the time axis
    assert area.ruler.labelled_ticks()[0] == (0.0, "0:00")
    assert area.time_range() == pytest.approx((0.0, 30.0))


# --- feature lanes ----------------------------------------------------------------------------


def test_line_feature_lane(area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([line_item("centroid", unit="Hz")])
    lane = area.lanes()[-1]
    assert lane.kind == "line"
    assert lane.title == "centroid"
    assert lane.plot.getAxis("left").labelText == "Hz"
    assert no_lane_time_axis(area)  # the ruler over the lanes is the time axis
    (curve,) = lane.curves
    assert curve.opts["autoDownsample"]
    assert curve.opts["downsampleMethod"] == "peak"
    assert curve.opts["clipToView"]
    assert lane.vb.state["mouseEnabled"] == [True, False]  # time zooms, y is fixed
    assert lane.vb.linkedView(lane.vb.XAxis) is area.lanes()[0].vb


def test_empty_features_show_just_the_waveform(area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([line_item(), spectrogram_item(1000)])
    assert len(area.lanes()) == 4
    area.set_features([])
    assert [lane.kind for lane in area.lanes()] == ["waveform", "waveform"]
    assert no_lane_time_axis(area)


def test_image_feature_has_levels_colormap_and_colour_bar(area: PlotArea) -> None:
    frames = 10_000  # more than the column budget: the time axis is max-pooled
    item = spectrogram_item(frames)
    book().set(item.style_key, LaneStyle("linear"))  # the bins as stored (log: freq_axis)
    area.set_source("x", frames * HOP, synthetic_peaks(frames * HOP), STEP, ["L", "R"], TempoMap())
    area.set_features([item])
    lane = area.lanes()[-1]
    assert lane.kind == "image"
    assert lane.image is not None
    image = lane.image.image
    assert image.dtype == np.float32
    assert image.flags.c_contiguous
    assert image.shape[0] == 257
    assert image.shape[1] <= MAX_IMAGE_COLUMNS
    assert lane.image.axisOrder == "row-major"
    assert tuple(lane.image.getLevels()) == (-80.0, 0.0)  # explicit, not auto
    assert lane.image.lut is not None
    assert len(lane.image.lut) <= 256
    assert isinstance(lane.color_bar, pg.ColorBarItem)
    assert lane.color_bar.values == (-80.0, 0.0)
    # the loud partial survives max-pooling
    assert np.all(image[257 // 10] == 0.0)
    rect = lane.image.mapRectToParent(lane.image.boundingRect())
    assert rect.left() == pytest.approx(-HOP / 2)
    assert rect.right() == pytest.approx((frames - 0.5) * HOP, rel=1e-3)
    assert rect.bottom() == pytest.approx(11_025.0 * (1 + 0.5 / 256), rel=1e-3)
    assert lane.plot.getAxis("left").labelText == "Hz"


def test_pool_columns_keeps_maxima() -> None:
    values = np.zeros((10, 3), np.float32)
    values[7, 1] = 5.0
    pooled, k = pool_columns(values, max_columns=4)
    assert k == 3
    assert pooled.shape == (4, 3)
    assert pooled[2, 1] == 5.0
    assert pooled.sum() == 5.0


def test_chroma_lane_names_pitch_classes(area: PlotArea) -> None:
    n = 500
    data = np.random.default_rng(0).random((n, 1, 12)).astype(np.float32)
    meta = OutputMeta(
        "chroma", 1, 12, frame_step=HOP, bins=tuple(range(12)), bin_unit="pitch class"
    )
    area.set_source("x", n * HOP, synthetic_peaks(n * HOP), STEP, ["L", "R"], TempoMap())
    area.set_features([FeaturePlot("chroma", "chroma", data, np.arange(n) * HOP, meta)])
    lane = area.lanes()[-1]
    levels = lane.plot.getAxis("left")._tickLevels
    assert [label for _, label in levels[0]] == ["C", "E", "G#"]  # kept on short lanes
    ticks = sorted(tick for level in levels for tick in level)
    assert [label for _, label in ticks] == [
        "C",
        "C#",
        "D",
        "D#",
        "E",
        "F",
        "F#",
        "G",
        "G#",
        "A",
        "A#",
        "B",
    ]
    assert [pos for pos, _ in ticks] == [i + 0.5 for i in range(12)]
    assert tuple(lane.image.getLevels()) == (0.0, 1.0)


def test_pitch_lane_has_f0_and_confidence_on_a_right_axis(area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([pitch_item(), line_item()])
    pitch = next(lane for lane in area.lanes() if lane.kind == "pitch")
    _f0, confidence = pitch.curves
    assert pitch.confidence_view is not None
    assert confidence.getViewBox() is pitch.confidence_view
    assert pitch.plot.getAxis("right").labelText == "conf"
    lo, hi = pitch.vb.viewRange()[1]
    assert lo < 220.0
    assert hi > 220.0 * 2 ** (4 / 12)
    # every lane keeps the same plot width, so time lines up across lanes
    lefts = {round(lane.vb.sceneBoundingRect().left()) for lane in area.lanes()}
    rights = {round(lane.vb.sceneBoundingRect().right()) for lane in area.lanes()}
    assert len(lefts) == 1
    assert len(rights) == 1


def test_beat_rms_draws_steps_to_the_end(area: PlotArea) -> None:
    item = beat_rms_item(30.0)
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([item])
    lane = area.lanes()[-1]
    assert lane.kind == "steps"
    x, y = lane.curves[0].getOriginalDataset()
    assert x[0] == 0.0
    assert x[-1] == pytest.approx(30.0)
    assert np.array_equal(x[1:-1:2], x[2::2])  # each edge twice: horizontal then vertical
    assert np.array_equal(y[0::2], y[1::2])


def test_stale_items_are_shown_and_marked(area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([line_item("rms", stale=True), spectrogram_item(800, stale=True)])
    rms, spec = area.lanes()[2:]
    for lane in (rms, spec):
        assert lane.stale
        assert lane.title.endswith("STALE")
        assert STALE_COLOR in lane.plot.titleLabel.item.toHtml().lower()
        assert lane.vb.border is not None
        assert lane.vb.border.color().name() == STALE_COLOR
    pen = rms.curves[0].opts["pen"]
    assert pen.style() == Qt.PenStyle.DashLine
    assert pen.color().alpha() < 255
    assert rms.curves[0].getOriginalDataset()[1].size > 0  # still drawn
    assert spec.image is not None
    assert spec.image.opacity() < 1.0


# --- grid, playhead, input --------------------------------------------------------------------


def test_beat_grid_is_thinned_to_what_fits(qtbot: QtBot, area: PlotArea) -> None:
    tempo = TempoMap((TempoSegment(0.0, 120.0), TempoSegment(60.0, 90.0)))
    area.set_source("x", 600.0, synthetic_peaks(600.0), STEP, ["L", "R"], tempo)
    area.set_features([line_item(seconds=600.0)])
    width = area.lanes()[0].vb.width()
    beats, bars = area.lanes()[0].grid_lines()
    assert beats == 0
    assert 0 < bars <= width / 6
    area.set_time_range(10.0, 18.0)
    settle(qtbot, area)
    for lane in area.lanes():
        assert lane.grid_lines() == (12, 4)  # 120 BPM: 16 beats in 8 s, 4 of them bar starts
    assert np.allclose(area.lanes()[0].bar_lines.xData[::2], [10.0, 12.0, 14.0, 16.0])


def test_playhead_on_every_lane(area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([line_item(), spectrogram_item(1000)])
    area.set_playhead(12.5)
    assert area.playhead() == 12.5
    assert all(lane.playhead.value() == 12.5 for lane in area.lanes())
    area.set_playhead(3.0)
    assert all(lane.playhead.value() == 3.0 for lane in area.lanes())
    area.set_features([line_item()])  # new lanes start at the playhead too
    assert all(lane.playhead.value() == 3.0 for lane in area.lanes())


def test_click_requests_a_seek(qtbot: QtBot, area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([line_item()])
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    lane = area.lanes()[-1]
    pos = canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(20.0, 0.4)))
    with qtbot.waitSignal(area.seekRequested, timeout=2000) as blocker:
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    seconds_per_pixel = 30.0 / lane.vb.width()
    assert blocker.args[0] == pytest.approx(20.0, abs=2 * seconds_per_pixel)


def test_keyboard_zoom_and_pan(qtbot: QtBot, area: PlotArea) -> None:
    area.set_source("x", 100.0, synthetic_peaks(100.0), STEP, ["L", "R"], TempoMap())
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    area.set_time_range(40.0, 60.0)
    qtbot.keyClick(canvas, Qt.Key.Key_Plus)
    lo, hi = area.time_range()
    assert hi - lo == pytest.approx(20.0 / 1.5)
    assert (lo + hi) / 2 == pytest.approx(50.0)
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert area.time_range()[0] == pytest.approx(lo + 0.1 * (hi - lo))
    qtbot.keyClick(canvas, Qt.Key.Key_Minus)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus)
    assert area.time_range()[1] - area.time_range()[0] == pytest.approx(20.0 * 1.5)
    qtbot.keyClick(canvas, Qt.Key.Key_Home)
    assert area.time_range()[0] == pytest.approx(0.0)
    qtbot.keyClick(canvas, Qt.Key.Key_0)
    assert area.time_range() == pytest.approx((0.0, 100.0))
    ylo, yhi = area.lanes()[0].vb.viewRange()[1]
    assert (ylo, yhi) == pytest.approx(tuple(area.lanes()[0].y_range))  # y never moved


def test_grab_shows_waveform_image_and_playhead(qtbot: QtBot, area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([line_item(), spectrogram_item(1200)])
    area.set_playhead(15.0)
    settle(qtbot, area)
    pixels = to_array(area.grab().toImage())
    wave, _, line, spec = (lane_region(area, lane) for lane in area.lanes())

    left, top, right, bottom = wave
    region = pixels[top:bottom, left:right]
    blue = (region[..., 2] > region[..., 0] + 60) & (region[..., 2] > 150)
    assert blue.mean() > 0.2  # the waveform band fills a good part of its lane

    left, top, right, bottom = spec
    region = pixels[top:bottom, left:right]
    assert len(np.unique(region.reshape(-1, 3), axis=0)) > 20  # a colour-mapped image
    assert region.mean() > 20  # not black

    _, top, _, bottom = line
    x = area_point(area, area.lanes()[2], 15.0, 0.0).x()
    column = pixels[top:bottom, x - 1 : x + 2]
    red = (column[..., 0] > 200) & (column[..., 1] < 130) & (column[..., 2] < 130)
    assert red.any(axis=1).mean() > 0.8  # the playhead crosses the lane


def test_clear_removes_everything(area: PlotArea) -> None:
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    area.set_features([line_item()])
    area.clear()
    assert area.lanes() == ()
    assert area.time_range() == (0.0, 0.0)
    area.set_source("x", 30.0, synthetic_peaks(30.0), STEP, ["L", "R"], TempoMap())
    assert len(area.lanes()) == 2


# --- reloads: lanes are kept and handed new data ------------------------------------------------


def test_reload_keeps_lanes_and_hands_them_new_data(area: PlotArea) -> None:
    peaks = synthetic_peaks(30.0)
    area.set_source("x", 30.0, peaks, STEP, ["L", "R"], TempoMap())
    area.set_features([line_item("rms"), spectrogram_item(800)])
    wave_l, wave_r, rms, spec = area.lanes()
    curve, image, bar = rms.curves[0], spec.image, spec.color_bar
    # the same features again, new values and now stale: the very same lanes and items
    louder = line_item("rms", stale=True)
    louder = dataclasses.replace(louder, data=louder.data * 2, version="v2")
    area.show_plot("x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), [louder, spectrogram_item(800)])
    assert area.lanes() == (wave_l, wave_r, rms, spec)
    assert rms.curves[0] is curve and spec.image is image and spec.color_bar is bar
    assert np.allclose(curve.getOriginalDataset()[1], louder.data[:, 0, 0])
    assert rms.stale and rms.title.endswith("STALE")
    assert rms.vb.border.color().name() == STALE_COLOR
    assert curve.opts["pen"].style() == Qt.PenStyle.DashLine
    # a new feature gets a new lane, a gone one is removed, the kept one stays
    area.set_features([line_item("centroid", unit="Hz"), louder])
    kinds = [(lane.kind, lane.title.split()[0]) for lane in area.lanes()[2:]]
    assert kinds == [("line", "centroid"), ("line", "rms")]
    assert area.lanes()[3] is rms
    assert spec not in area.lanes()
    assert no_lane_time_axis(area)  # no lane has one: the ruler at the top is the time axis


def settled_geometry(area: PlotArea) -> list[tuple[float, ...]]:
    """Where each lane's view and colour bar are, once the layout requests are processed."""
    app = QApplication.instance()
    assert app is not None

    def geometry() -> list[tuple[float, ...]]:
        items = [lane.vb for lane in area.lanes()] + [
            lane.extra for lane in area.lanes() if lane.extra is not None
        ]
        return [tuple(round(v, 1) for v in it.sceneBoundingRect().getRect()) for it in items]

    before = geometry()
    for _ in range(20):
        app.processEvents()
        now = geometry()
        if now == before:
            break
        before = now
    return before


def test_pending_lane_becomes_the_data_lane(qtbot: QtBot, area: PlotArea) -> None:
    """A requested feature without data is an empty lane of the right kind, titled with its
    state; when the data comes, the same lane shows it and the layout does not move."""
    peaks = synthetic_peaks(30.0)
    pending = [
        pending_plot("spectrogram", "spectrogram", "image", "dBFS", "Hz", "missing"),
        pending_plot("rms", "rms", "line", "FS", state="queued"),
    ]
    area.show_plot("x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), pending)
    spec, rms = area.lanes()[2:]
    assert (spec.kind, rms.kind) == ("image", "line")
    assert spec.title.endswith("missing") and rms.title.endswith("queued")
    assert spec.color_bar is not None and spec.image is not None and spec.image.image is None
    assert len(rms.curves) == 1 and rms.curves[0].getData()[0] is None
    geometry = settled_geometry(area)
    running = [dataclasses.replace(p, state="running") for p in pending]
    area.show_plot("x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), running)
    assert rms.title.endswith("running")
    assert rms.plot.layout.rowMaximumHeight(0) == TITLE_HEIGHT  # a new title: no relayout
    data = [spectrogram_item(800), line_item("rms")]
    area.show_plot("x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), data, budget_ms=0.0)
    assert area.updates_pending  # lane by lane, in the next turns of the event loop
    qtbot.waitUntil(lambda: not area.updates_pending, timeout=2000)
    assert area.lanes()[2:] == (spec, rms)
    assert spec.image.image is not None and tuple(spec.image.getLevels()) == (-80.0, 0.0)
    assert rms.curves[0].getOriginalDataset()[1].size > 0
    assert spec.title == "spectrogram" and rms.title == "rms"
    assert settled_geometry(area) == geometry


def test_same_pyramid_is_not_handed_over_again(qtbot: QtBot, area: PlotArea) -> None:
    pyramid = PeaksPyramid(synthetic_peaks(60.0), STEP)
    area.show_plot("x", 60.0, pyramid, STEP, ["L", "R"], TempoMap(), [line_item(seconds=60.0)])
    lane = area.lanes()[0]
    assert lane.strokes is not None
    before = lane.strokes.xData
    area.show_plot("x", 60.0, pyramid, STEP, ["L", "R"], TempoMap(), [line_item(seconds=60.0)])
    assert lane.strokes.xData is before  # nothing recomputed, nothing repainted
    assert area.lanes()[0] is lane


def test_prepared_lanes_are_used_as_they_are(area: PlotArea) -> None:
    """Lanes prepared by the plot loader (in its thread) are shown without redoing them."""
    item = spectrogram_item(10_000)
    duration = plot_duration(30.0, [item])
    prepared = prepare_lanes(item, duration)
    item = dataclasses.replace(item, lanes=prepared, lanes_duration=duration)
    area.show_plot("x", 30.0, None, STEP, ["L"], TempoMap(), [item])
    lane = area.lanes()[-1]
    assert prepared[0].image is not None
    assert lane.image is not None
    assert np.shares_memory(lane.image.image, prepared[0].image.image)  # no copy, no redo


def test_pyramid_cache_returns_the_same_pyramid() -> None:
    cache = PyramidCache(size=2)
    errors: list[str] = []
    peaks = synthetic_peaks(10.0)
    first = cache.build(("store", "a", 1.0), peaks, STEP, errors)
    assert first is not None and cache.get(("store", "a", 1.0)) is first
    cache.build(("store", "b", 1.0), peaks, STEP, errors)
    cache.build(("store", "c", 1.0), peaks, STEP, errors)
    assert cache.get(("store", "a", 1.0)) is None  # the oldest went
    assert cache.build(("bad",), peaks, 0.0, errors) is None and errors
