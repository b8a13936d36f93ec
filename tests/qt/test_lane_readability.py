"""Feature lanes of real music are readable: frequency scale, colour range and map per lane
(remembered), note names, pitch without unvoiced frames, placeholders with their reason, and
axis labels that fit. Asserted on lanes, axes and pixel regions."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.calculators.spectral import PITCH_CLASSES
from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.qt.plots import FeaturePlot, Lane, PlotArea
from diagnostics_app.qt.plots.features import LINE_COLORS, pending_plot, voiced
from diagnostics_app.qt.plots.freq_axis import log_ticks, resample_rows
from diagnostics_app.qt.plots.lane_menu import lane_menu
from diagnostics_app.qt.plots.lane_style import LaneStyle, StyleBook, book
from diagnostics_app.qt.plots.lanes import NOTE_LANE_HEIGHT
from diagnostics_app.qt.settings import SettingsStore

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SR = 44_100
HOP = 512 / SR
BINS = 1025  # a 2048-point STFT: 0 .. 22050 Hz
TONE_HZ = 1000.0
FREQS = np.linspace(0.0, SR / 2, BINS)


def tone_spectrogram(frames: int = 400, calculator: str = "core.spectrogram") -> FeaturePlot:
    """-90 dB everywhere but a 0 dB tone at 1 kHz (its nearest bin and two each side, as a
    windowed STFT spreads it: at 1025 bins in a ~250 px linear lane, a one-bin line could
    fall between the rows drawn)."""
    data = np.full((frames, 1, BINS), -90.0, np.float32)
    tone = int(np.argmin(np.abs(FREQS - TONE_HZ)))
    data[:, 0, tone - 2 : tone + 3] = 0.0
    meta = OutputMeta(
        "spectrogram",
        1,
        BINS,
        frame_step=HOP,
        bins=tuple(FREQS),
        bin_unit="Hz",
        unit="dBFS",
        channel_names=("mix",),
        value_range=(-100.0, 0.0),
    )
    times = np.arange(frames) * HOP
    label = "spectrogram · core.spectrogram · default"
    return FeaturePlot(label, "spectrogram", data, times, meta, calculator=calculator)


def gradient_spectrogram(frames: int = 400) -> FeaturePlot:
    """Every bin at -60 dB: one level, so the colour range alone decides its colour."""
    item = tone_spectrogram(frames, calculator="core.spectrogram")
    data = np.full_like(item.data, -60.0)
    return FeaturePlot(item.label, item.feature, data, item.times, item.meta, calculator="c.s")


def chroma_item(frames: int = 400) -> FeaturePlot:
    data = np.random.default_rng(0).random((frames, 1, 12)).astype(np.float32)
    meta = OutputMeta(
        "chroma", 1, 12, frame_step=HOP, bins=tuple(range(12)), bin_unit="pitch class"
    )
    return FeaturePlot(
        "chroma · core.chroma · default", "chroma", data, np.arange(frames) * HOP, meta
    )


def mel_item(frames: int = 400) -> FeaturePlot:
    mels = np.linspace(0.0, 2595 * math.log10(1 + 11025 / 700), 128)
    centres = 700 * (10 ** (mels / 2595) - 1)
    data = np.random.default_rng(1).random((frames, 1, 128)).astype(np.float32) * -60
    meta = OutputMeta("mel", 1, 128, frame_step=HOP, bins=tuple(centres), bin_unit="Hz", unit="dB")
    return FeaturePlot("mel · core.mel · default", "mel", data, np.arange(frames) * HOP, meta)


def pitch_item(frames: int = 600) -> FeaturePlot:
    """Voiced 220 Hz in the first third; then YIN's fallback at fmax (800 Hz, confidence
    0.3: no trough under the threshold); then silence (f0 at fmax, confidence 0)."""
    third = frames // 3
    f0 = np.full(frames, 800.0, np.float32)
    f0[:third] = 220.0
    conf = np.zeros(frames, np.float32)
    conf[:third] = 0.97
    conf[third : 2 * third] = 0.3
    data = np.stack([f0, conf], axis=1)[:, None, :]
    meta = OutputMeta("pitch", 1, 2, frame_step=HOP, unit="Hz", width_names=("f0", "confidence"))
    return FeaturePlot(
        "pitch · core.pitch · default",
        "pitch",
        data,
        np.arange(frames) * HOP,
        meta,
        calculator="core.pitch",
        params={"trough_threshold": 0.1},
    )


@pytest.fixture
def area(qtbot: QtBot) -> Iterator[PlotArea]:
    widget = PlotArea()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.clear()


def show(area: PlotArea, *items: FeaturePlot) -> list[Lane]:
    seconds = max(it.frames for it in items) * HOP
    area.set_source("x", seconds, None, 0.0, [], TempoMap())
    area.set_features(list(items))
    settle(area)
    return [lane for lane in area.lanes() if lane.kind != "waveform"]


def settle(area: PlotArea) -> None:
    """Let the layout take its final geometry (pixel positions are mapped after this)."""
    QApplication.processEvents()
    area.grab()


def pixels(area: PlotArea) -> np.ndarray:
    img = area.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return arr[:, : img.width(), 2::-1].astype(np.int32)


def to_area(area: PlotArea, lane: Lane, t: float, y: float) -> QPoint:
    """The widget pixel of view point (t, y) of ``lane``."""
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")
    pos = canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(t, y)))
    return canvas.viewport().mapTo(area, pos)


def brightest_row(area: PlotArea, lane: Lane) -> float:
    """The widget y of the brightest pixel rows (their middle) inside the lane's view, in a
    band of columns mid-time."""
    (x0, x1), (y0, y1) = lane.vb.viewRange()
    top, bottom = to_area(area, lane, x0, y1), to_area(area, lane, x1, y0)
    mid = (top.x() + bottom.x()) // 2
    region = pixels(area)[top.y() + 1 : bottom.y() - 1, mid - 20 : mid + 20]
    level = region.sum(axis=(1, 2))
    return top.y() + 1 + float(np.flatnonzero(level == level.max()).mean())


# --- frequency scale ---------------------------------------------------------------------


def test_log_scale_puts_a_tone_at_its_log_position_and_linear_moves_it(
    qtbot: QtBot, area: PlotArea
) -> None:
    (lane,) = show(area, tone_spectrogram())
    lo, hi = lane.y_range
    assert lo == pytest.approx(math.log10(20.0)) and hi == pytest.approx(
        math.log10(22050 + 11), abs=1e-3
    )
    # the rows are resampled: the tone's row is where log10(1000) is, in data and in pixels
    assert lane.image is not None
    image = lane.image.image
    column = image[:, image.shape[1] // 2]
    row = float(np.flatnonzero(column == column.max()).mean())  # the middle of the tone
    y_row = lo + (row + 0.5) * (hi - lo) / image.shape[0]
    assert y_row == pytest.approx(math.log10(TONE_HZ), abs=0.01)
    expected = to_area(area, lane, 0.0, math.log10(TONE_HZ)).y()
    assert abs(brightest_row(area, lane) - expected) <= 2
    ticks = [label for level in lane.plot.getAxis("left")._tickLevels for _, label in level]
    assert {"100", "1k", "10k"} <= set(ticks)
    # on a log axis 1 kHz is ~60% up the lane; on a linear one it is near the bottom (4.5%)
    frac_log = (expected - to_area(area, lane, 0.0, hi).y()) / (
        to_area(area, lane, 0.0, lo).y() - to_area(area, lane, 0.0, hi).y()
    )
    assert 0.35 < frac_log < 0.45  # from the top

    book().set("core.spectrogram:spectrogram", LaneStyle("linear"))  # the lane follows
    settle(area)
    assert lane.y_range[1] == pytest.approx(22050 + 22050 / 1024 / 2)
    expected = to_area(area, lane, 0.0, TONE_HZ).y()
    assert abs(brightest_row(area, lane) - expected) <= 2
    bottom = to_area(area, lane, 0.0, lane.y_range[0]).y()
    top = to_area(area, lane, 0.0, lane.y_range[1]).y()
    assert (bottom - expected) / (bottom - top) == pytest.approx(TONE_HZ / 22050, abs=0.02)


def test_resample_keeps_a_narrow_partial_and_interpolates_low_rows() -> None:
    image = np.zeros((BINS, 3), np.float32)
    image[1000] = 5.0  # one bin near the top: many bins per log row there
    edges = np.logspace(math.log10(20.0), math.log10(22061.0), 65)
    rows = resample_rows(image, FREQS, edges)
    assert rows.shape == (64, 3) and rows.max() == 5.0
    assert [label for level in log_ticks(20.0, 22061.0) for _, label in level] == [
        "100", "1k", "10k", "50", "200", "500", "2k", "5k", "20k", "20",
    ]  # fmt: skip


def test_mel_lane_ticks_name_band_centres_in_hz(area: PlotArea) -> None:
    (lane,) = show(area, mel_item())
    assert lane.y_label == "Hz" and lane.y_range == (0.0, 128.0)  # bands as computed
    ticks = dict(
        (label, pos) for level in lane.plot.getAxis("left")._tickLevels for pos, label in level
    )
    assert {"100", "1k", "10k"} <= set(ticks)
    assert ticks["100"] < ticks["1k"] < ticks["10k"]
    assert "band" in lane.plot.getAxis("left").toolTip()


# --- colour range and map ----------------------------------------------------------------


def test_colour_range_changes_the_pixel_levels(area: PlotArea) -> None:
    (lane,) = show(area, gradient_spectrogram())
    key = "c.s:spectrogram"
    (x0, x1), (y0, y1) = lane.vb.viewRange()
    a, b = to_area(area, lane, x0, y1), to_area(area, lane, x1, y0)

    def mean_level() -> float:
        return float(pixels(area)[a.y() + 4 : b.y() - 4, a.x() + 4 : b.x() - 4].mean())

    before = mean_level()  # -60 dB in -100..0: dark
    book().set(key, LaneStyle(floor=-70.0, ceiling=-50.0))  # -60 is mid-range now
    assert lane.image is not None and tuple(lane.image.getLevels()) == (-70.0, -50.0)
    assert lane.color_bar is not None and tuple(lane.color_bar.levels()) == (-70.0, -50.0)
    middle = mean_level()
    book().set(key, LaneStyle(floor=-90.0, ceiling=-60.0))  # at the ceiling: brightest
    brightest = mean_level()
    assert before < middle < brightest
    book().set(key, LaneStyle(floor=-90.0, ceiling=-60.0, cmap="CET-L1"))  # grey
    region = pixels(area)[a.y() + 4 : b.y() - 4, a.x() + 4 : b.x() - 4]
    assert np.all(np.abs(region[..., 0] - region[..., 2]) <= 2)  # grey: r == g == b


def test_lane_menu_offers_scales_ranges_and_maps(area: PlotArea) -> None:
    (lane,) = show(area, tone_spectrogram())
    menu = lane_menu(lane)
    assert menu is not None
    titles = [a.text() for a in menu.actions()]
    assert "Log frequency" in titles and "Linear frequency" in titles
    checked = [a.text() for a in menu.actions() if a.isChecked()]
    assert checked == ["Log frequency"]  # the default for a spectrogram
    next(a for a in menu.actions() if a.text() == "Linear frequency").trigger()
    assert book().get("core.spectrogram:spectrogram").scale == "linear"
    assert lane.y_range[0] < 0  # linear Hz: from -df/2
    menu.deleteLater()


def test_styles_are_persisted_and_restored(settings_path: Path, area: PlotArea) -> None:
    style = LaneStyle("linear", -72.5, -3.0, "magma")
    book().set("core.spectrogram:spectrogram", style)
    assert SettingsStore(settings_path).load_lane_styles() == {
        "core.spectrogram:spectrogram": "linear;-72.5;-3;magma"
    }
    restarted = StyleBook(SettingsStore(settings_path))  # a new process reads the file
    assert restarted.get("core.spectrogram:spectrogram") == style
    assert restarted.get("core.mel:mel") == LaneStyle()
    restarted.set("core.spectrogram:spectrogram", LaneStyle())  # the default forgets it
    assert SettingsStore(settings_path).load_lane_styles() == {}
    assert LaneStyle.from_text("bogus;x;;nomap") == LaneStyle()


# --- chroma, pitch -------------------------------------------------------------------------


def test_chroma_ticks_are_the_twelve_note_names(area: PlotArea) -> None:
    (lane,) = show(area, chroma_item())
    levels = lane.plot.getAxis("left")._tickLevels
    ticks = sorted(tick for level in levels for tick in level)
    assert [label for _, label in ticks] == list(PITCH_CLASSES)
    assert lane.y_label == "note"
    assert lane.min_height >= NOTE_LANE_HEIGHT  # room for all twelve
    assert lane.plot.height() >= NOTE_LANE_HEIGHT - 1


def test_unvoiced_pitch_frames_are_not_drawn(area: PlotArea) -> None:
    item = pitch_item()
    (lane,) = show(area, item)
    f0_curve = lane.curves[0]
    _x, y = f0_curve.getOriginalDataset()
    third = item.frames // 3
    assert np.all(np.isfinite(y[:third])) and np.all(np.isnan(y[third:]))
    assert lane.y_range[1] < 800.0  # the fmax wall does not set the scale either
    assert lane.voicing_line is not None and lane.voicing_line.value() == pytest.approx(0.9)
    # pixels: the f0 colour in the voiced third, none after it (the silent tail is blank)
    lane.curves[1].setVisible(False)  # only the f0 curve in the picture
    t_end = item.frames * HOP
    left = to_area(area, lane, t_end / 3 - 0.2, lane.y_range[1])
    a = to_area(area, lane, t_end / 3 + 0.2, lane.y_range[1])
    b = to_area(area, lane, t_end - 0.05, lane.y_range[0])
    img = pixels(area)
    green = np.array(LINE_COLORS[0])

    def f0_pixels(region: np.ndarray) -> int:
        return int((np.abs(region - green).sum(axis=-1) < 60).sum())

    start = to_area(area, lane, 0.05, lane.y_range[0])
    assert f0_pixels(img[left.y() : start.y(), start.x() : left.x()]) > 20
    assert f0_pixels(img[a.y() : b.y(), a.x() : b.x()]) == 0


def test_voicing_rule_follows_the_threshold() -> None:
    f0 = np.array([220.0, 220.0, 800.0, np.nan], np.float32)
    conf = np.array([0.95, 0.85, 0.0, 0.99], np.float32)
    assert voiced(f0, conf, 0.1).tolist() == [True, False, False, False]
    assert voiced(f0, conf, 0.2).tolist() == [True, True, False, False]


# --- placeholders --------------------------------------------------------------------------


def test_placeholder_lane_shows_its_reason_and_no_scales(area: PlotArea) -> None:
    reason = "source missing: audio/x.wav not found"
    items = [
        pending_plot("spectrogram", "spectrogram", "image", "dBFS", "Hz", "missing", reason),
        pending_plot("rms", "rms", "line", "FS", state="queued"),
    ]
    area.set_source("x", 0.0, None, 0.0, [], TempoMap())
    area.set_features(items)
    area.set_waveform_note("audio/x.wav: file not found")
    wave, spec, rms = area.lanes()
    assert spec.placeholder == f"spectrogram not calculated — {reason}"
    assert rms.placeholder == "rms: queued, waiting for a worker"
    assert wave.placeholder == "no waveform — audio/x.wav: file not found"
    for lane in (wave, spec, rms):
        left = lane.plot.getAxis("left")
        assert not left.style["showValues"] and not left.label.isVisible()
        assert left._tickLevels == [[]]
        text = lane.placeholder_item()
        assert text is not None and text.isVisible() and text.toolTip() == lane.placeholder
        box = text.mapRectToScene(text.boundingRect())
        view = lane.vb.mapRectToScene(lane.vb.boundingRect())
        assert view.contains(box.center()) and abs(box.center().x() - view.center().x()) < 2
    assert spec.color_bar is not None and spec.color_bar.opacity() == 0.0  # no 0..1 dBFS bar
    bottom = rms.plot.getAxis("bottom")  # no 0..1 ms time scale of nothing
    assert not bottom.isVisible()  # no lane has a time axis: the ruler is the time axis
    # pixels: the reason is drawn (light text) in the middle of the spectrogram's lane
    centre = to_area(area, spec, sum(spec.vb.viewRange()[0]) / 2, 0.5)
    band = pixels(area)[centre.y() - 6 : centre.y() + 6, centre.x() - 150 : centre.x() + 150]
    assert (band.min(axis=-1) > 140).sum() > 30


def test_placeholder_gives_way_to_data(area: PlotArea) -> None:
    pending = pending_plot("spec", "spectrogram", "image", "dBFS", "Hz", "missing", "x")
    item = tone_spectrogram()
    area.set_source("x", item.frames * HOP, None, 0.0, [], TempoMap())
    area.set_features([pending])
    lane = area.lanes()[-1]
    assert lane.placeholder is not None
    data = FeaturePlot("spec", "spectrogram", item.data, item.times, item.meta)
    area.set_features([data])
    assert area.lanes()[-1] is lane and lane.placeholder is None
    left = lane.plot.getAxis("left")
    assert left.style["showValues"] and left.label.isVisible()
    assert {"1k"} <= {label for level in left._tickLevels for _, label in level}
    assert lane.color_bar is not None and lane.color_bar.opacity() == 1.0


# --- labels fit ----------------------------------------------------------------------------


def test_axis_labels_fit_at_1400_px(qtbot: QtBot, area: PlotArea) -> None:
    area.resize(1400, 1100)
    lanes = show(area, tone_spectrogram(), mel_item(), chroma_item(), pitch_item())
    painter_image = QImage(10, 10, QImage.Format.Format_RGB32)
    widths = {lane.plot.getAxis("left").width() for lane in area.lanes()}
    assert len(widths) == 1  # one width: a given time is at the same x in every lane
    for lane in lanes:
        for side in ("left", "right"):
            axis = lane.plot.getAxis(side)
            if not axis.isVisible() or not axis.label.isVisible():
                continue
            label = axis.label.toPlainText()
            length = QFontMetrics(axis.label.font()).horizontalAdvance(label)
            assert length <= axis.height(), f"{lane.title}: {label!r} longer than its axis"
            assert axis.toolTip(), f"{lane.title}: no long form of {label!r}"
            painter = QPainter(painter_image)
            try:
                specs = axis.generateDrawSpecs(painter)
            finally:
                painter.end()
            assert specs is not None
            texts = specs[2]
            assert texts, f"{lane.title}: no tick labels"
            label_band = axis.label.boundingRect().height() - 5  # the rotated label's strip
            for rect, _flags, text in texts:
                font = axis.style["tickFont"] or axis.font()
                fits = QFontMetrics(font).horizontalAdvance(text)
                assert rect.width() >= fits - 1, f"{text!r} clipped"
                if side == "left":
                    assert rect.left() >= label_band - 1, f"{lane.title}: {text!r} under the label"
                    assert rect.right() <= axis.width() + 0.5
