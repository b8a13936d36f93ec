"""The plot area: waveform lanes and feature lanes stacked over one shared time axis.

Every lane is a ``PlotItem`` in one ``GraphicsLayoutWidget`` column, x-linked to the first lane;
y is fixed per lane (mouse and wheel act on time only). Left axes have one fixed width, and
right-hand extras (colour bars) sit in a second layout column, so a given time is at the same
pixel column in every lane.

Level of detail: the waveform lanes get, on every view change (rate-limited to one update per
:data:`REFRESH_MS`), only the visible slice of the pyramid level that gives 2–4 points per pixel
(:mod:`.waveform`). Feature curves use pyqtgraph's peak downsampling and clip-to-view, images
are max-pooled to at most 4096 columns (:mod:`.features`). The beat grid is two
``connect="pairs"`` curves per lane holding only the visible lines, thinned to bars (then every
2nd, 4th... bar) when they would be closer than :data:`MIN_GRID_SPACING_PX`.

Interaction: wheel zooms time (with or without Ctrl), drag pans, a click emits
:attr:`PlotArea.seekRequested` (the caller moves the playhead with :meth:`PlotArea.set_playhead`),
``+``/``=`` and ``-`` zoom, arrow keys pan (Shift: further), Home/End jump, ``0`` shows all.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.qt.plots.features import (
    CONFIDENCE_COLOR,
    LINE_COLORS,
    STALE_COLOR,
    FeaturePlot,
    make_color_bar,
    make_image_item,
    make_line_curve,
    pitch_range,
    prepare_image,
    step_polyline,
    value_range,
)
from diagnostics_app.qt.plots.waveform import Band, PeaksPyramid, make_band_curves

REFRESH_MS = 30  # at most one level-of-detail update per this many ms while zooming/panning
LEFT_AXIS_WIDTH = 66
RIGHT_AXIS_WIDTH = 46
TITLE_HEIGHT = 18
MIN_GRID_SPACING_PX = 6.0
ZOOM_STEP = 1.5
PAN_FRACTION = 0.1
MIN_LANE_HEIGHT = {"waveform": 90, "image": 120, "line": 80, "steps": 80, "pitch": 90}
LANE_STRETCH = {"waveform": 3, "image": 3, "line": 2, "steps": 2, "pitch": 2}
TITLE_COLOR = "#d8d8d8"
STATE_COLOR = "#a0a0a0"
PLAYHEAD_PEN = pg.mkPen((255, 80, 70), width=1.5)
BEAT_PEN = pg.mkPen((255, 255, 255, 34), width=1)
BAR_PEN = pg.mkPen((255, 255, 255, 90), width=1)


_EMPTY = np.zeros(0)


class Lane:
    """One row of the plot area: a ``PlotItem`` with a fixed y range, the beat grid and the
    playhead, plus what the lane draws (waveform band, curves, image).

    Read-only for callers: tests and the main window may inspect, only :class:`PlotArea`
    changes a lane.
    """

    def __init__(
        self,
        kind: str,
        title: str,
        y_range: tuple[float, float],
        y_label: str,
        *,
        stale: bool = False,
        state: str = "ok",
    ) -> None:
        self.kind = kind
        self.stale = stale
        self.state = state
        self.title = _lane_title(title, stale, state)
        self.y_range = y_range
        self.plot = pg.PlotItem(enableMenu=False)
        self.vb: pg.ViewBox = self.plot.getViewBox()
        # waveform lanes: min-max strokes, and a filled outline when zoomed in (one shown)
        self.strokes: pg.PlotCurveItem | None = None
        self.fill: pg.PlotCurveItem | None = None
        self.curves: list[pg.PlotDataItem] = []  # line, steps and pitch lanes
        self.image: pg.ImageItem | None = None  # image lanes
        self.color_bar: pg.ColorBarItem | None = None
        self.confidence_view: pg.ViewBox | None = None  # pitch lanes
        self.extra: pg.GraphicsWidget | None = None  # what goes in the layout's 2nd column

        plot = self.plot
        plot.hideButtons()
        plot.setMouseEnabled(x=True, y=False)
        self.vb.disableAutoRange()
        self.vb.setYRange(*y_range, padding=0)
        plot.hideAxis("bottom")
        left = plot.getAxis("left")
        left.setWidth(LEFT_AXIS_WIDTH)
        left.enableAutoSIPrefix(False)
        left.setLabel(y_label)
        title_color = STALE_COLOR if stale else TITLE_COLOR
        plot.setTitle(self.title, color=title_color, size="9pt", bold=stale)
        plot.titleLabel.setAttr("justify", "left")
        plot.titleLabel.setMaximumHeight(TITLE_HEIGHT)
        plot.layout.setRowFixedHeight(0, TITLE_HEIGHT)
        if stale:
            self.vb.setBorder(pg.mkPen(STALE_COLOR, width=1.5, style=Qt.PenStyle.DashLine))

        self.beat_lines = pg.PlotCurveItem(pen=BEAT_PEN, connect="pairs", skipFiniteCheck=True)
        self.bar_lines = pg.PlotCurveItem(pen=BAR_PEN, connect="pairs", skipFiniteCheck=True)
        for z, item in ((-20, self.beat_lines), (-19, self.bar_lines)):
            item.setZValue(z)
            self.vb.addItem(item, ignoreBounds=True)
        self.playhead = pg.InfiniteLine(pos=0.0, angle=90, movable=False, pen=PLAYHEAD_PEN)
        self.playhead.setZValue(100)
        self.vb.addItem(self.playhead, ignoreBounds=True)

    @property
    def min_height(self) -> int:
        return MIN_LANE_HEIGHT.get(self.kind, 80)

    def set_grid(self, beats: np.ndarray, bars: np.ndarray) -> None:
        lo, hi = self.y_range
        for curve, xs in ((self.beat_lines, beats), (self.bar_lines, bars)):
            curve.setData(np.repeat(xs, 2), np.tile(np.array([lo, hi]), xs.shape[0]))

    def set_band(self, mode: str, x: np.ndarray, y: np.ndarray) -> None:
        """Hand the waveform curves new data: only the curve of ``mode`` gets it (setData on
        the same items every time), the other is emptied."""
        if self.strokes is None or self.fill is None:
            return
        shown, hidden = (self.strokes, self.fill) if mode == "lines" else (self.fill, self.strokes)
        shown.setData(x, y)
        if hidden.xData is not None and hidden.xData.shape[0]:
            hidden.setData(_EMPTY, _EMPTY)

    def waveform_points(self) -> int:
        """Points the waveform curves hold now."""
        return sum(
            0 if c is None or c.xData is None else int(c.xData.shape[0])
            for c in (self.strokes, self.fill)
        )

    def grid_lines(self) -> tuple[int, int]:
        """(beat lines, bar lines) currently drawn."""
        return tuple(
            0 if c.xData is None else c.xData.shape[0] // 2
            for c in (self.beat_lines, self.bar_lines)
        )  # type: ignore[return-value]

    def add_confidence_view(self) -> pg.ViewBox:
        """A second view over the lane (behind its data, so the lane's view keeps the mouse)
        with its own y range 0..1 on the right axis; x follows the lane."""
        view = pg.ViewBox(enableMenu=False)
        view.setParentItem(self.vb)
        view.setFlag(view.GraphicsItemFlag.ItemStacksBehindParent)
        view.setMouseEnabled(x=False, y=False)
        view.disableAutoRange()
        view.setYRange(0.0, 1.05, padding=0)
        view.setGeometry(self.vb.rect())
        view.setXLink(self.vb)
        self.vb.sigResized.connect(self._sync_confidence_view)
        right = self.plot.getAxis("right")
        right.linkToView(view)
        right.setLabel("confidence")
        self.confidence_view = view
        return view

    def _sync_confidence_view(self) -> None:
        if self.confidence_view is not None:
            self.confidence_view.setGeometry(self.vb.rect())

    def unlink(self) -> None:
        """Undo the links to other lanes (before the lane is dropped)."""
        self.vb.setXLink(None)
        if self.confidence_view is not None:
            self.confidence_view.setXLink(None)
            with contextlib.suppress(RuntimeError, TypeError):
                self.vb.sigResized.disconnect(self._sync_confidence_view)


def _lane_title(title: str, stale: bool, state: str) -> str:
    if stale:
        return f"{title} — STALE"
    if state not in ("ok", ""):
        return f"{title} — {state}"
    return title


def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


class PlotArea(QWidget):
    """Waveform and feature lanes of one source over a shared time axis (object name
    ``plotArea``). See the module docstring for interaction and level of detail."""

    seekRequested = Signal(float)  # seconds, clamped to [0, duration]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("plotArea")
        self._header = QLabel("No source", self)
        self._header.setObjectName("plotTitle")
        self._header.setTextFormat(Qt.TextFormat.PlainText)
        self._header.setContentsMargins(6, 2, 6, 0)
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setObjectName("plotCanvas")
        self._canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._canvas.installEventFilter(self)
        self._canvas.ci.setContentsMargins(2, 2, 8, 2)
        self._canvas.ci.layout.setVerticalSpacing(4)
        self._canvas.ci.layout.setHorizontalSpacing(4)
        self._scroll = QScrollArea(self)
        self._scroll.setObjectName("plotScroll")
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setWidgetResizable(True)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._scroll.setWidget(self._canvas)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self._header)
        layout.addWidget(self._scroll, 1)
        self.setFocusProxy(self._canvas)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._canvas.scene().sigMouseClicked.connect(self._on_scene_click)

        self._wave_lanes: list[Lane] = []
        self._feature_lanes: list[Lane] = []
        self._placed: list[Lane] = []
        self._master: Lane | None = None
        self._pyramid: PeaksPyramid | None = None
        self._title = ""
        self._duration = 0.0
        self._source_duration = 0.0
        self._tempo: TempoMap | None = None
        self._beat_times = np.zeros(0)
        self._bar_flags = np.zeros(0, bool)
        self._bar_numbers = np.zeros(0, np.int64)
        self._playhead = 0.0
        self.last_band: Band | None = None  # what the waveform curves were last handed

    # --- public API -----------------------------------------------------------------------

    def set_source(
        self,
        title: str,
        duration: float,
        peaks: np.ndarray | None,
        peaks_step: float,
        channel_names: Sequence[str],
        tempo: TempoMap,
    ) -> None:
        """Show a source: one waveform lane per channel of ``peaks`` ((blocks, channels, 2)
        min/max, ``peaks_step`` seconds per block; None: not calculated), the tempo map's
        grid, the whole duration. Feature lanes are removed (see :meth:`set_features`).

        Calling it again for the same source (same title and duration) keeps the visible
        range, and equal peaks keep their pyramid (no rebuild)."""
        same = (
            self._master is not None
            and title == self._title
            and abs(float(duration) - self._source_duration) < 1e-9
        )
        keep = self.time_range() if same else None
        self._drop(self._wave_lanes + self._feature_lanes)
        self._wave_lanes, self._feature_lanes = [], []
        self._title = title
        old = self._pyramid
        if peaks is None:
            self._pyramid = None
        elif not (
            old is not None
            and old.step == peaks_step
            and old.levels[0].shape == peaks.shape
            and np.array_equal(old.levels[0], peaks)
        ):
            self._pyramid = PeaksPyramid(peaks, peaks_step)
        pyr = self._pyramid
        self._source_duration = float(duration) if duration > 0 else (pyr.duration if pyr else 0.0)
        self._duration = self._source_duration
        self._set_tempo(tempo)
        if pyr is not None:
            top = max(1.0, pyr.peak) * 1.05
            names = list(channel_names[: pyr.channels])
            names += [f"ch{i + 1}" for i in range(len(names), pyr.channels)]
            for name in names:
                lane = Lane("waveform", f"waveform · {name}", (-top, top), "FS")
                lane.strokes, lane.fill = make_band_curves()
                lane.vb.addItem(lane.strokes, ignoreBounds=True)
                lane.vb.addItem(lane.fill, ignoreBounds=True)
                self._wave_lanes.append(lane)
        else:
            self._wave_lanes.append(
                Lane("waveform", "waveform — peaks not calculated", (-1.05, 1.05), "FS")
            )
        channels = pyr.channels if pyr is not None else len(channel_names)
        self._header.setText(
            f"{title}   {_format_duration(self._duration)}   "
            f"{channels} channel{'s' if channels != 1 else ''}"
        )
        self._relayout()
        if keep is not None and keep[1] > keep[0]:
            self.set_time_range(*keep)
        else:
            self.set_time_range(0.0, max(self._duration, 1e-3))
        self.refresh()

    def set_features(self, items: Sequence[FeaturePlot]) -> None:
        """Replace the feature lanes (below the waveform) with ``items``; empty: waveform
        only. The visible time range is kept."""
        keep = self.time_range() if self._master is not None else None
        self._drop(self._feature_lanes)
        self._feature_lanes = []
        duration = max(
            [self._source_duration]
            + [float(it.times[it.frames - 1]) for it in items if it.frames > 0]
        )
        if duration != self._duration:
            self._duration = duration
            self._set_tempo(self._tempo)
        for item in items:
            self._feature_lanes.extend(self._make_feature_lanes(item))
        self._relayout()
        if keep is not None and self._master is not None and keep[1] > keep[0]:
            self.set_time_range(*keep)
        elif self._master is not None:
            self.set_time_range(0.0, max(self._duration, 1e-3))
        self.refresh()

    def set_playhead(self, seconds: float) -> None:
        self._playhead = float(seconds)
        for lane in self._placed:
            lane.playhead.setValue(self._playhead)

    def playhead(self) -> float:
        return self._playhead

    def clear(self) -> None:
        """Remove every lane: nothing is shown until the next :meth:`set_source`."""
        self._timer.stop()
        self._drop(self._wave_lanes + self._feature_lanes)
        self._wave_lanes, self._feature_lanes = [], []
        self._pyramid = None
        self._title = ""
        self._duration = self._source_duration = 0.0
        self._set_tempo(None)
        self.last_band = None
        self._header.setText("No source")
        self._relayout()

    def lanes(self) -> tuple[Lane, ...]:
        """The lanes, top to bottom (waveform channels first)."""
        return tuple(self._placed)

    def duration(self) -> float:
        return self._duration

    def time_range(self) -> tuple[float, float]:
        """The visible time range in seconds ((0, 0) with no lanes)."""
        if self._master is None:
            return 0.0, 0.0
        lo, hi = self._master.vb.viewRange()[0]
        return float(lo), float(hi)

    def set_time_range(self, start: float, end: float) -> None:
        """Show ``start``..``end`` seconds (clamped by the view limits)."""
        if self._master is not None and end > start:
            self._master.vb.setXRange(start, end, padding=0)

    @property
    def refresh_pending(self) -> bool:
        """A view change is waiting for its (rate-limited) level-of-detail update."""
        return self._timer.isActive()

    @Slot()
    def refresh(self) -> None:
        """Hand the waveform curves and grids the data of the visible range now."""
        self._timer.stop()
        master = self._master
        if master is None:
            return
        x0, x1 = (float(v) for v in master.vb.viewRange()[0])
        pixels = max(1.0, float(master.vb.width()) * self.devicePixelRatioF())
        pyr = self._pyramid
        if pyr is not None and self._wave_lanes:
            band = pyr.band(x0, x1, pixels)
            for lane, y in zip(self._wave_lanes, band.ys, strict=False):
                lane.set_band(band.mode, band.x, y)
            self.last_band = band
        beats, bars = self._grid_lines(x0, x1, pixels)
        for lane in self._placed:
            lane.set_grid(beats, bars)

    # --- lanes --------------------------------------------------------------------------

    def _make_feature_lanes(self, item: FeaturePlot) -> list[Lane]:
        kind = item.kind
        meta = item.meta
        n = item.frames
        names = item.channel_names()
        times = np.asarray(item.times[:n], np.float64)
        unit = meta.unit or "value"
        if n == 0:
            return [Lane(kind, f"{item.label} — no frames", (0.0, 1.0), unit, state=item.state)]
        lanes: list[Lane] = []
        if kind == "image":
            for ch, name in enumerate(names):
                view = prepare_image(item, ch)
                title = item.label if len(names) == 1 else f"{item.label} · {name}"
                lo, h = view.rect[1], view.rect[3]
                lane = Lane(
                    "image", title, (lo, lo + h), view.y_label, stale=item.stale, state=item.state
                )
                lane.image = make_image_item(view, item.stale)
                lane.vb.addItem(lane.image, ignoreBounds=True)
                if view.y_ticks is not None:
                    lane.plot.getAxis("left").setTicks(view.y_ticks)
                lane.color_bar = make_color_bar(lane.image, view, meta.unit)
                lane.extra = lane.color_bar
                lanes.append(lane)
        elif kind == "pitch":
            for ch, name in enumerate(names):
                f0 = np.ascontiguousarray(item.data[:n, ch, 0], np.float32)
                conf = np.ascontiguousarray(item.data[:n, ch, 1], np.float32)
                title = item.label if len(names) == 1 else f"{item.label} · {name}"
                lane = Lane(
                    "pitch",
                    f"{title}  (f0; grey: confidence, right axis)",
                    pitch_range(f0, conf),
                    unit,
                    stale=item.stale,
                    state=item.state,
                )
                view = lane.add_confidence_view()
                c_curve = make_line_curve(times, conf, CONFIDENCE_COLOR, item.stale, width=1.0)
                view.addItem(c_curve, ignoreBounds=True)
                f_curve = make_line_curve(times, f0, LINE_COLORS[0], item.stale, width=1.6)
                lane.vb.addItem(f_curve, ignoreBounds=True)
                lane.curves.extend([f_curve, c_curve])
                lanes.append(lane)
        else:
            series: list[tuple[str, np.ndarray, np.ndarray]] = []
            width_names = list(meta.width_names)
            for ch, name in enumerate(names):
                for w in range(item.data.shape[2]):
                    values = np.ascontiguousarray(item.data[:n, ch, w], np.float32)
                    label = name if item.data.shape[2] == 1 else f"{name} {_nth(width_names, w)}"
                    if kind == "steps":
                        x, y = step_polyline(times, values, self._duration)
                    else:
                        x, y = times, values
                    series.append((label, x, y))
            title = item.label
            if len(series) > 1:
                title += "  " + " ".join(
                    f"<span style='color:{pg.mkColor(LINE_COLORS[i % len(LINE_COLORS)]).name()}'>"
                    f"{label}</span>"
                    for i, (label, _, _) in enumerate(series)
                )
            lane = Lane(
                kind,
                title,
                value_range([y for _, _, y in series]),
                unit,
                stale=item.stale,
                state=item.state,
            )
            for i, (_, x, y) in enumerate(series):
                curve = make_line_curve(x, y, LINE_COLORS[i % len(LINE_COLORS)], item.stale)
                lane.vb.addItem(curve, ignoreBounds=True)
                lane.curves.append(curve)
            lanes.append(lane)
        return lanes

    def _drop(self, lanes: Sequence[Lane]) -> None:
        ci = self._canvas.ci
        for lane in lanes:
            lane.unlink()
            if lane in self._placed:
                ci.removeItem(lane.plot)
                if lane.extra is not None:
                    ci.removeItem(lane.extra)
                self._placed.remove(lane)

    def _relayout(self) -> None:
        """Place new lanes (rows are kept: waveform lanes never move, feature lanes are
        appended), show the time axis on the last lane only, link x to the first lane."""
        ci = self._canvas.ci
        lanes = self._wave_lanes + self._feature_lanes
        for row, lane in enumerate(lanes):
            if lane not in self._placed:
                ci.addItem(lane.plot, row=row, col=0)
                if lane.extra is not None:
                    ci.addItem(lane.extra, row=row, col=1)
                lane.playhead.setValue(self._playhead)
            ci.layout.setRowStretchFactor(row, LANE_STRETCH.get(lane.kind, 2))
        self._placed = list(lanes)
        need_right = any(lane.confidence_view is not None for lane in lanes)
        for i, lane in enumerate(lanes):
            last = i == len(lanes) - 1
            lane.plot.showAxis("bottom", last)
            if last:
                lane.plot.getAxis("bottom").setLabel("time (s)")
            if need_right:
                lane.plot.showAxis("right")
                right = lane.plot.getAxis("right")
                right.setWidth(RIGHT_AXIS_WIDTH)
                if lane.confidence_view is None:
                    right.setStyle(showValues=False)
            else:
                lane.plot.hideAxis("right")
        master = lanes[0] if lanes else None
        if master is not self._master:
            if self._master is not None:
                self._disconnect_master(self._master)
            if master is not None:
                master.vb.sigXRangeChanged.connect(self._schedule_refresh)
                master.vb.sigResized.connect(self._schedule_refresh)
            self._master = master
        for lane in lanes:
            if lane is not master and master is not None:
                lane.vb.setXLink(master.vb)
            if self._duration > 0:
                lane.vb.setLimits(
                    xMin=0.0,
                    xMax=self._duration,
                    minXRange=min(self._duration, 0.01),
                    maxXRange=self._duration,
                )
        self._canvas.setMinimumHeight(sum(lane.min_height for lane in lanes) + 40)

    def _disconnect_master(self, lane: Lane) -> None:
        for signal in (lane.vb.sigXRangeChanged, lane.vb.sigResized):
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(self._schedule_refresh)

    @Slot()
    def _schedule_refresh(self) -> None:
        # a throttle, not a debounce: while panning, one update every REFRESH_MS
        if not self._timer.isActive():
            self._timer.start()

    # --- beat grid ----------------------------------------------------------------------

    def _set_tempo(self, tempo: TempoMap | None) -> None:
        self._tempo = tempo
        beats = list(tempo.beats(self._duration)) if tempo is not None else []
        self._beat_times = np.array([t for t, _ in beats], np.float64)
        self._bar_flags = np.array([bar for _, bar in beats], bool)
        self._bar_numbers = np.cumsum(self._bar_flags) - 1

    def _grid_lines(self, x0: float, x1: float, pixels: float) -> tuple[np.ndarray, np.ndarray]:
        """Visible (beat, bar) line positions, thinned so lines stay MIN_GRID_SPACING_PX
        apart: all beats, else bars only, else every 2nd/4th/... bar (by bar number, so the
        lines kept do not change while panning)."""
        empty = np.zeros(0)
        i0, i1 = np.searchsorted(self._beat_times, [x0, x1], side="left")
        times = self._beat_times[i0:i1]
        if times.size == 0:
            return empty, empty
        bars = self._bar_flags[i0:i1]
        max_lines = max(1.0, pixels / MIN_GRID_SPACING_PX)
        if times.size <= max_lines:
            return times[~bars], times[bars]
        bar_times = times[bars]
        if bar_times.size <= max_lines:
            return empty, bar_times
        every = 2 ** math.ceil(math.log2(bar_times.size / max_lines))
        numbers = self._bar_numbers[i0:i1][bars]
        return empty, bar_times[numbers % every == 0]

    # --- input --------------------------------------------------------------------------

    @Slot(object)
    def _on_scene_click(self, event: object) -> None:
        button = getattr(event, "button", None)
        if button is None or button() != Qt.MouseButton.LeftButton or event.double():  # type: ignore[attr-defined]
            return
        pos = event.scenePos()  # type: ignore[attr-defined]
        for lane in self._placed:
            if lane.vb.sceneBoundingRect().contains(pos):
                t = float(lane.vb.mapSceneToView(pos).x())
                self.seekRequested.emit(min(max(t, 0.0), self._duration))
                return

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self._canvas
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and self._handle_key(event)
        ):
            return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._handle_key(event):
            super().keyPressEvent(event)

    def _handle_key(self, event: QKeyEvent) -> bool:
        if self._master is None:
            return False
        key = event.key()
        x0, x1 = self.time_range()
        span = x1 - x0
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self._zoom(1 / ZOOM_STEP)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self._zoom(ZOOM_STEP)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            step = span * (0.5 if shift else PAN_FRACTION)
            step = -step if key == Qt.Key.Key_Left else step
            self.set_time_range(x0 + step, x1 + step)
        elif key == Qt.Key.Key_Home:
            self.set_time_range(0.0, span)
        elif key == Qt.Key.Key_End:
            self.set_time_range(self._duration - span, self._duration)
        elif key == Qt.Key.Key_0:
            self.set_time_range(0.0, max(self._duration, 1e-3))
        else:
            return False
        return True

    def _zoom(self, factor: float) -> None:
        x0, x1 = self.time_range()
        centre, half = (x0 + x1) / 2, (x1 - x0) * factor / 2
        self.set_time_range(centre - half, centre + half)


def _nth(names: Sequence[str], i: int) -> str:
    return names[i] if i < len(names) else str(i)
