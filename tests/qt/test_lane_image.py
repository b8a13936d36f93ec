"""Image lanes draw the picture a worker rendered (no render of the float image on the GUI
thread while the levels are the prepared ones), and look as pyqtgraph's own render did."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.qt.plots import FeaturePlot, Lane, PlotArea
from diagnostics_app.qt.plots.features import LaneImage, color_lut, prepare_image, render_rgb
from diagnostics_app.qt.plots.lane_style import LaneStyle, book

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

HOP = 512 / 22_050
BINS = 64


def gradient_item(frames: int = 3000, version: object = ("k", 1.0)) -> FeaturePlot:
    """An image whose value rises with the bin and is the same in every frame (so any way of
    downsampling the time axis gives the same colours)."""
    times = np.arange(frames) * HOP
    column = np.linspace(-80.0, 0.0, BINS, dtype=np.float32)
    data = np.broadcast_to(column, (frames, 1, BINS)).astype(np.float32)
    meta = OutputMeta(
        "spectrogram",
        1,
        BINS,
        frame_step=HOP,
        bins=tuple(np.linspace(0.0, 11_025.0, BINS)),
        bin_unit="Hz",
        unit="dBFS",
        channel_names=("mix",),
        value_range=(-80.0, 0.0),
    )
    return FeaturePlot("spec", "spectrogram", data, times, meta, version=version)


@pytest.fixture(autouse=True)
def linear_spectrogram() -> None:
    """The bins as stored (one row per bin, as these tests count them), not the log view."""
    book().set("spectrogram", LaneStyle("linear"))


@pytest.fixture
def area(qtbot: QtBot) -> Iterator[PlotArea]:
    widget = PlotArea()
    qtbot.addWidget(widget)
    widget.resize(1000, 500)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.clear()


def to_array(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return arr[:, : img.width(), 2::-1].astype(np.int32)


def region(area: PlotArea, lane: Lane) -> np.ndarray:
    canvas = area.findChild(pg.GraphicsLayoutWidget, "plotCanvas")

    def point(t: float, y: float) -> QPoint:
        pos = canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(t, y)))
        return canvas.viewport().mapTo(area, pos)

    (x0, x1), (y0, y1) = lane.vb.viewRange()
    a, b = point(x0, y1), point(x1, y0)
    pixels = to_array(area.grab().toImage())
    return pixels[a.y() + 3 : b.y() - 3, a.x() + 3 : b.x() - 3]


def image_lane(area: PlotArea, item: FeaturePlot) -> Lane:
    seconds = item.frames * HOP
    area.set_source("x", seconds, None, 0.0, [], TempoMap())
    area.set_features([item])
    lane = area.lanes()[-1]
    assert lane.kind == "image" and isinstance(lane.image, LaneImage)
    return lane


def test_render_rgb_maps_levels_to_the_colour_map_ends() -> None:
    lut = color_lut()
    rgb = render_rgb(np.array([[-100.0, -80.0, -40.0, 0.0, 5.0]], np.float32), (-80.0, 0.0))
    assert rgb.dtype == np.uint32 and rgb.shape == (1, 5)
    words = [(int(w) >> 16 & 255, int(w) >> 8 & 255, int(w) & 255) for w in rgb[0]]
    assert words[0] == words[1] == tuple(lut[0])  # clipped below
    assert words[3] == words[4] == tuple(lut[-1])  # clipped above
    assert words[2] == tuple(lut[128])
    assert all(int(w) >> 24 == 255 for w in rgb[0])  # opaque


def test_prepared_view_carries_the_rendered_picture() -> None:
    view = prepare_image(gradient_item(), 0)
    assert view.rgb is not None
    assert view.rgb.shape == view.image.shape
    assert np.array_equal(view.rgb, render_rgb(view.image, view.levels))


def test_image_lane_draws_the_ready_picture_like_pyqtgraphs_render(
    qtbot: QtBot, area: PlotArea, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[int] = []
    original = pg.ImageItem.render
    monkeypatch.setattr(pg.ImageItem, "render", lambda self: (renders.append(1), original(self)))
    lane = image_lane(area, gradient_item())
    image = lane.image
    assert isinstance(image, LaneImage)
    assert image.ready
    ready_pixels = region(area, lane)
    assert renders == []  # painted without pyqtgraph's render of the float image

    # the same lane rendered by pyqtgraph from the float image
    image._ready = None
    image._renderRequired = True
    image.update()
    own_pixels = region(area, lane)
    assert renders
    assert ready_pixels.shape == own_pixels.shape
    # per row (bin) the same colour, within rounding; the range of colours is the same
    rows_ready, rows_own = ready_pixels.mean(axis=1), own_pixels.mean(axis=1)
    assert np.abs(rows_ready - rows_own).max() < 12
    assert np.abs(ready_pixels.mean(axis=(0, 1)) - own_pixels.mean(axis=(0, 1))).max() < 3
    assert len(np.unique(ready_pixels.reshape(-1, 3), axis=0)) > 20


def test_other_levels_render_the_float_image(qtbot: QtBot, area: PlotArea) -> None:
    lane = image_lane(area, gradient_item())
    assert isinstance(lane.image, LaneImage) and lane.color_bar is not None
    before = region(area, lane)
    lane.color_bar.setLevels((-40.0, 0.0))  # what a drag of the colour bar does
    assert tuple(lane.image.getLevels()) == (-40.0, 0.0)
    assert not lane.image.ready
    after = region(area, lane)
    # the lower half of the bins is now all the first colour: the picture changed
    assert np.abs(before.mean(axis=(0, 1)) - after.mean(axis=(0, 1))).max() > 5
    lane.color_bar.setLevels((-80.0, 0.0))  # back: the ready picture again
    assert lane.image.ready


def test_unchanged_data_is_not_handed_to_the_image_again(
    area: PlotArea, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = gradient_item(version=("row", 5.0))
    lane = image_lane(area, item)
    calls: list[object] = []
    original = LaneImage.setImage

    def spy(self: LaneImage, *args: object, **kwargs: object) -> None:
        if args and args[0] is not None:  # new data (pyqtgraph calls it bare for an update)
            calls.append(args[0])
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LaneImage, "setImage", spy)
    area.set_features([dataclasses.replace(item, stale=False)])  # the same row and update
    assert area.lanes()[-1] is lane
    assert calls == []
    assert isinstance(lane.image, LaneImage) and lane.image.ready
    area.set_features([gradient_item(version=("row", 6.0))])  # updated: new data
    assert len(calls) == 1
    assert lane.image.ready
