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
import time
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
    LaneData,
    line_pen,
    make_color_bar,
    make_image_item,
    make_line_curve,
    plot_duration,
    prepare_lanes,
    show_image,
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
        self.y_label = y_label
        self.key: tuple[object, ...] = (kind, title)  # identity across reloads (PlotArea sets it)
        self.version: object = None  # the data the items hold (None: unknown)
        self.row = -1  # layout row while placed
        self.limits: float | None = None  # the duration the view limits were set for
        # what the grid and waveform curves were last handed (set_grid / set_band skip a repeat)
        self._grid_for: tuple[np.ndarray, np.ndarray, tuple[float, float]] | None = None
        self._band_for: tuple[str, np.ndarray, np.ndarray] | None = None
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
        self.placed_extra: pg.GraphicsWidget | None = None  # what is there (PlotArea's)

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
        self._show_title()
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

    def _show_title(self) -> None:
        color = STALE_COLOR if self.stale else TITLE_COLOR
        if self.plot.titleLabel.isVisible():
            # the label's text only: PlotItem.setTitle would reset the row to 30 px high
            # (relayouting the lane) every time the state in the title changes
            self.plot.titleLabel.setText(self.title, color=color, size="9pt", bold=self.stale)
        else:
            self.plot.setTitle(self.title, color=color, size="9pt", bold=self.stale)

    def set_style(self, title: str, stale: bool, state: str) -> None:
        """New title, stale mark and state; only what changed is touched."""
        text = _lane_title(title, stale, state)
        if text == self.title and stale == self.stale and state == self.state:
            return
        restale = stale != self.stale
        self.title, self.stale, self.state = text, stale, state
        self._show_title()
        if restale:
            border = pg.mkPen(STALE_COLOR, width=1.5, style=Qt.PenStyle.DashLine) if stale else None
            self.vb.setBorder(border)

    def set_y(self, y_range: tuple[float, float], y_label: str) -> None:
        """A new fixed y range and axis label (no-ops when unchanged)."""
        if tuple(y_range) != tuple(self.y_range):
            self.y_range = y_range
            self.vb.setYRange(*y_range, padding=0)
        if y_label != self.y_label:
            self.y_label = y_label
            self.plot.getAxis("left").setLabel(y_label)

    @property
    def min_height(self) -> int:
        return MIN_LANE_HEIGHT.get(self.kind, 80)

    def set_grid(self, beats: np.ndarray, bars: np.ndarray) -> None:
        """The visible beat and bar lines (no-op when handed the same arrays again)."""
        lo, hi = self.y_range
        held = self._grid_for
        if held is not None and held[0] is beats and held[1] is bars and held[2] == (lo, hi):
            return
        self._grid_for = (beats, bars, (lo, hi))
        for curve, xs in ((self.beat_lines, beats), (self.bar_lines, bars)):
            curve.setData(np.repeat(xs, 2), np.tile(np.array([lo, hi]), xs.shape[0]))

    def set_band(self, mode: str, x: np.ndarray, y: np.ndarray) -> None:
        """Hand the waveform curves new data: only the curve of ``mode`` gets it (setData on
        the same items every time), the other is emptied."""
        if self.strokes is None or self.fill is None:
            return
        if self._band_for is not None and self._band_for[1] is x and self._band_for[2] is y:
            return  # the same band again (a reload that did not move the view)
        self._band_for = (mode, x, y)
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


def _curve_style(kind: str, i: int) -> tuple[tuple[int, ...], float]:
    """Colour and width of a lane's ``i``-th curve (pitch: f0, then the grey confidence)."""
    if kind == "pitch":
        return (CONFIDENCE_COLOR, 1.0) if i == 1 else (LINE_COLORS[0], 1.6)
    return LINE_COLORS[i % len(LINE_COLORS)], 1.2


def _content(kind: str) -> str:
    """What items a lane of ``kind`` holds: an image, curves, or curves over two views."""
    return kind if kind in ("image", "pitch") else "curves"


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
        self._pending_updates: list[tuple[Lane, LaneData]] = []  # see show_plot's budget
        self._update_budget: float | None = None
        self._update_timer = QTimer(self)
        self._update_timer.setSingleShot(True)
        self._update_timer.setInterval(0)
        self._update_timer.timeout.connect(self._continue_updates)

        self._wave_lanes: list[Lane] = []
        self._feature_lanes: list[Lane] = []
        self._placed: list[Lane] = []
        self._master: Lane | None = None
        self._pyramid: PeaksPyramid | None = None
        self._title = ""
        self._duration = 0.0
        self._source_duration = 0.0
        self._tempo: TempoMap | None = None
        self._tempo_for: tuple[TempoMap | None, float] | None = None  # (tempo, duration)
        self._beat_times = np.zeros(0)
        self._bar_flags = np.zeros(0, bool)
        self._bar_numbers = np.zeros(0, np.int64)
        self._playhead = 0.0
        self.last_band: Band | None = None  # what the waveform curves were last handed
        self._band_key: tuple[object, ...] = ()  # (pyramid, x0, x1, pixels) of last_band
        self._grid: tuple[np.ndarray, np.ndarray] | None = None  # visible (beats, bars)
        self._grid_key: tuple[object, ...] = ()
        self._peaks_version: object = None  # names the peaks of the pyramid shown
        self._layout_signature: tuple[object, ...] = ()  # what _relayout last laid out

    # --- public API -----------------------------------------------------------------------

    def set_source(
        self,
        title: str,
        duration: float,
        peaks: np.ndarray | PeaksPyramid | None,
        peaks_step: float,
        channel_names: Sequence[str],
        tempo: TempoMap,
    ) -> None:
        """Show a source: one waveform lane per channel of ``peaks`` ((blocks, channels, 2)
        min/max, ``peaks_step`` seconds per block, or a :class:`PeaksPyramid` already built
        from them, e.g. in a worker thread; None: not calculated), the tempo map's grid, the
        whole duration. Feature lanes are removed (see :meth:`set_features`, and
        :meth:`show_plot` for both at once).

        Calling it again for the same source (same title and duration) keeps the visible
        range, equal peaks keep their pyramid (no rebuild), and the same channels keep their
        lanes (the items get the new data)."""
        keep = self._apply_source(title, duration, peaks, peaks_step, channel_names, tempo)
        self._drop(self._feature_lanes)
        self._feature_lanes = []
        self._pending_updates = []
        self._finish(keep)

    def set_features(self, items: Sequence[FeaturePlot]) -> None:
        """Show ``items`` as the feature lanes (below the waveform); empty: waveform only.
        The visible time range is kept. Lanes of items shown before (same label, feature and
        shape) are kept and given the new data and styling; only new ones are built and only
        gone ones removed."""
        keep = self.time_range() if self._master is not None else None
        self._pending_updates = self._apply_features(items)
        self._finish(keep)
        self._run_updates()

    def show_plot(
        self,
        title: str,
        duration: float,
        peaks: np.ndarray | PeaksPyramid | None,
        peaks_step: float,
        channel_names: Sequence[str],
        tempo: TempoMap,
        items: Sequence[FeaturePlot],
        budget_ms: float | None = None,
    ) -> None:
        """:meth:`set_source` and :meth:`set_features` in one pass (one layout, one level-of-
        detail update): what the main window calls with each loaded plot.

        ``budget_ms``: hand kept lanes their new data for at most about that long now, and the
        rest lane by lane in the next turns of the event loop (:attr:`updates_pending`); None:
        all of it now. A newer call replaces the updates still queued."""
        keep = self._apply_source(title, duration, peaks, peaks_step, channel_names, tempo)
        self._pending_updates = self._apply_features(items)
        self._finish(keep)
        self._update_budget = budget_ms
        self._run_updates(budget_ms)

    def set_playhead(self, seconds: float) -> None:
        self._playhead = float(seconds)
        for lane in self._placed:
            lane.playhead.setValue(self._playhead)

    def playhead(self) -> float:
        return self._playhead

    def clear(self) -> None:
        """Remove every lane: nothing is shown until the next :meth:`set_source`."""
        self._timer.stop()
        self._update_timer.stop()
        self._pending_updates = []
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
            band = self.last_band
            if band is None or self._band_key != (pyr, x0, x1, pixels):
                band = pyr.band(x0, x1, pixels)
                self._band_key = (pyr, x0, x1, pixels)
            for lane, y in zip(self._wave_lanes, band.ys, strict=False):
                lane.set_band(band.mode, band.x, y)
            self.last_band = band
        grid_key = (id(self._beat_times), x0, x1, pixels)  # the beat times are replaced, not edited
        if self._grid is None or self._grid_key != grid_key:
            self._grid = self._grid_lines(x0, x1, pixels)
            self._grid_key = grid_key
        beats, bars = self._grid
        for lane in self._placed:
            lane.set_grid(beats, bars)

    # --- lanes --------------------------------------------------------------------------

    def _apply_source(
        self,
        title: str,
        duration: float,
        peaks: np.ndarray | PeaksPyramid | None,
        peaks_step: float,
        channel_names: Sequence[str],
        tempo: TempoMap,
    ) -> tuple[float, float] | None:
        """The waveform half of a show; returns the time range to keep (same source) or None."""
        same = (
            self._master is not None
            and title == self._title
            and abs(float(duration) - self._source_duration) < 1e-9
        )
        keep = self.time_range() if same else None
        self._title = title
        old = self._pyramid
        if peaks is None:
            self._pyramid = None
        elif isinstance(peaks, PeaksPyramid):
            self._pyramid = peaks
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
        self._tempo = tempo
        wanted: list[tuple[tuple[str, str | None], str]]
        if pyr is not None:
            top = max(1.0, pyr.peak) * 1.05
            names = list(channel_names[: pyr.channels])
            names += [f"ch{i + 1}" for i in range(len(names), pyr.channels)]
            wanted = [(("waveform", name), f"waveform · {name}") for name in names]
            y_range = (-top, top)
        else:
            wanted = [(("waveform", None), "waveform — peaks not calculated")]
            y_range = (-1.05, 1.05)
        if [lane.key for lane in self._wave_lanes] == [key for key, _ in wanted]:
            for lane in self._wave_lanes:
                lane.set_y(y_range, "FS")
        else:
            self._drop(self._wave_lanes)
            self._wave_lanes = []
            for key, lane_title in wanted:
                lane = Lane("waveform", lane_title, y_range, "FS")
                lane.key = key
                if pyr is not None:
                    lane.strokes, lane.fill = make_band_curves()
                    lane.vb.addItem(lane.strokes, ignoreBounds=True)
                    lane.vb.addItem(lane.fill, ignoreBounds=True)
                self._wave_lanes.append(lane)
        channels = pyr.channels if pyr is not None else len(channel_names)
        self._header.setText(
            f"{title}   {_format_duration(self._duration)}   "
            f"{channels} channel{'s' if channels != 1 else ''}"
        )
        return keep

    def _apply_features(self, items: Sequence[FeaturePlot]) -> list[tuple[Lane, LaneData]]:
        """The feature half of a show: reuse lanes by key, build new ones, drop gone ones.
        Returns the in-place data updates of kept lanes, for :meth:`_run_updates` (a lane
        whose content changes kind is refilled here: that may change the layout)."""
        duration = plot_duration(self._source_duration, items)
        self._duration = duration
        old: dict[tuple[object, ...], Lane] = {}
        for lane in self._feature_lanes:
            old.setdefault(lane.key, lane)
        lanes: list[Lane] = []
        updates: list[tuple[Lane, LaneData]] = []
        for item in items:
            prepared = item.lanes
            if prepared is None or item.lanes_duration != duration:
                prepared = prepare_lanes(item, duration)  # not made by a worker: do it here
            for data in prepared:
                reused = old.pop(data.key, None)
                family = None if reused is None else _content(reused.kind)
                if reused is None or (
                    family != _content(data.kind) and "pitch" in (family, _content(data.kind))
                ):
                    lanes.append(self._make_lane(data))  # pitch lanes have a second view
                    continue
                lanes.append(reused)
                if family != _content(data.kind):
                    self._update_lane(reused, data)
                else:
                    updates.append((reused, data))
        self._drop([lane for lane in self._feature_lanes if lane not in lanes])
        self._feature_lanes = lanes
        return updates

    def _run_updates(self, budget_ms: float | None = None) -> None:
        """Apply the queued in-place lane updates: all of them, or (``budget_ms``) as many as
        fit in that time, at least one; the rest follow in the next turns of the event loop,
        so a reload of many lanes never holds the GUI thread long. The layout does not move
        (kept lanes keep their cells), so each turn repaints only the lanes it updated."""
        self._update_timer.stop()
        start = time.perf_counter()
        while self._pending_updates:
            lane, data = self._pending_updates.pop(0)
            if lane in self._feature_lanes:
                self._update_lane(lane, data)
            if budget_ms is not None and (time.perf_counter() - start) * 1000 >= budget_ms:
                break
        if self._pending_updates:
            self._update_timer.start()

    @Slot()
    def _continue_updates(self) -> None:
        self._run_updates(self._update_budget)

    @property
    def updates_pending(self) -> bool:
        """Lane updates of the last :meth:`show_plot` are still queued (see its budget)."""
        return bool(self._pending_updates)

    def flush_updates(self) -> None:
        """Apply every queued lane update now."""
        self._run_updates(None)

    def _finish(self, keep: tuple[float, float] | None) -> None:
        """After a change of lanes: the grid for the duration, the layout, the visible range
        (kept, or the whole duration), and the level-of-detail update now."""
        self._set_tempo(self._tempo)
        self._relayout()
        if self._master is not None:
            want = keep if keep is not None and keep[1] > keep[0] else (0.0, self._duration)
            if want != self.time_range():  # setXRange to the same range still repaints
                self.set_time_range(want[0], max(want[1], want[0] + 1e-3))
        self.refresh()

    def _make_lane(self, data: LaneData) -> Lane:
        """A new feature lane with its items (the GUI-thread half of :func:`prepare_lanes`)."""
        lane = Lane(
            data.kind, data.title, data.y_range, data.y_label, stale=data.stale, state=data.state
        )
        lane.key = data.key
        self._fill_lane(lane, data)
        return lane

    def _fill_lane(self, lane: Lane, data: LaneData) -> None:
        """Give an empty lane the items of ``data``'s kind (none yet for a pending lane, but
        the image and its colour bar, so the layout does not change when the data comes)."""
        lane.kind = data.kind
        lane.version = data.version
        if data.kind == "image":
            view = data.image
            lane.image = make_image_item(view, data.stale)
            lane.vb.addItem(lane.image, ignoreBounds=True)
            if view is not None and view.y_ticks is not None:
                lane.plot.getAxis("left").setTicks(view.y_ticks)
            levels = view.levels if view is not None else (0.0, 1.0)
            lane.color_bar = make_color_bar(lane.image, levels, data.bar_label)
            lane.extra = lane.color_bar
            return
        if data.kind == "pitch":
            lane.add_confidence_view()
        self._set_curves(lane, data, restyle=False)

    def _set_curves(self, lane: Lane, data: LaneData, restyle: bool) -> None:
        """As many curves as ``data`` has series, each handed its data (setData on the curves
        kept; only missing ones are made, extra ones removed). A pending lane keeps empty
        curves ready (one, two for pitch), so the data's arrival is a setData."""
        pitch = lane.kind == "pitch"
        want = len(data.series)
        if data.pending:
            want = max(len(lane.curves), 2 if pitch else 1)
        while len(lane.curves) > want:
            curve = lane.curves.pop()
            view = curve.getViewBox()
            if view is not None:
                view.removeItem(curve)
        same_data = data.version is not None and data.version == lane.version
        for i in range(want):
            color, width = _curve_style(lane.kind, i)
            if i < len(lane.curves):
                curve = lane.curves[i]
                if data.pending:
                    if curve.getData()[0] is not None:
                        curve.clear()
                elif not same_data:
                    curve.setData(*data.series[i])
                if restyle:
                    curve.setPen(line_pen(color, data.stale, width))
                continue
            curve = make_line_curve(None, None, color, data.stale, width=width)
            view = lane.confidence_view if pitch and i == 1 else lane.vb
            assert view is not None
            view.addItem(curve, ignoreBounds=True)
            if not data.pending:
                curve.setData(*data.series[i])
            lane.curves.append(curve)

    def _clear_lane(self, lane: Lane) -> None:
        """Remove a lane's content items (its plot, grid and playhead stay)."""
        for curve in lane.curves:
            view = curve.getViewBox()
            if view is not None:
                view.removeItem(curve)
        lane.curves = []
        if lane.image is not None:
            lane.vb.removeItem(lane.image)
            lane.image = None
            lane.plot.getAxis("left").setTicks(None)
        lane.color_bar = None
        lane.extra = None  # _relayout takes the colour bar out of the layout

    def _update_lane(self, lane: Lane, data: LaneData) -> bool:
        """Hand a kept lane new data (setData / setImage on the same items) and change only the
        styling that differs; data of the same version is not handed over again. A lane whose
        kind of content changed gets new content items in the same plot. False: the lane
        cannot take ``data`` (pitch lanes have a second view): the caller makes a new one."""
        family = _content(lane.kind)
        if family != _content(data.kind) and "pitch" in (family, _content(data.kind)):
            return False
        restyle = data.stale != lane.stale
        lane.set_style(data.title, data.stale, data.state)
        lane.set_y(data.y_range, data.y_label)
        if family != _content(data.kind):
            self._clear_lane(lane)
            self._fill_lane(lane, data)
            return True
        lane.kind = data.kind
        if lane.image is not None:
            view = data.image
            same_data = data.version is not None and data.version == lane.version
            if view is None:
                if lane.image.image is not None:
                    lane.image.clear()
                    lane.plot.getAxis("left").setTicks(None)
            elif not same_data:
                show_image(lane.image, view)
                if lane.color_bar is not None:
                    lane.color_bar.setLevels(values=view.levels)
                lane.plot.getAxis("left").setTicks(view.y_ticks)
            if restyle:
                lane.image.setOpacity(0.55 if data.stale else 1.0)
        else:
            self._set_curves(lane, data, restyle)
        lane.version = data.version
        return True

    def _drop(self, lanes: Sequence[Lane]) -> None:
        ci = self._canvas.ci
        for lane in lanes:
            lane.unlink()
            if lane in self._placed:
                ci.removeItem(lane.plot)
                if lane.placed_extra is not None:
                    ci.removeItem(lane.placed_extra)
                    lane.placed_extra = None
                self._placed.remove(lane)
                lane.row = -1

    def _relayout(self) -> None:
        """Place the lanes in their rows (a kept lane stays put unless lanes before it came
        or went), show the time axis on the last lane only, link x to the first lane. Lanes
        that are already placed and linked are not touched again."""
        ci = self._canvas.ci
        lanes = self._wave_lanes + self._feature_lanes
        signature = (
            tuple(
                (id(lane), lane.kind, id(lane.extra), lane.confidence_view is None)
                for lane in lanes
            ),
            self._duration,
        )
        if signature == self._layout_signature and lanes == self._placed:
            return  # nothing moved: touching the layout again would repaint every lane
        self._layout_signature = signature
        moved = [lane for row, lane in enumerate(lanes) if lane in self._placed and lane.row != row]
        for lane in moved:  # out first, so no two lanes ever share a cell
            ci.removeItem(lane.plot)
            if lane.placed_extra is not None:
                ci.removeItem(lane.placed_extra)
                lane.placed_extra = None
            self._placed.remove(lane)
        for row, lane in enumerate(lanes):
            if lane not in self._placed:
                ci.addItem(lane.plot, row=row, col=0)
                lane.row = row
                lane.playhead.setValue(self._playhead)
            if lane.extra is not lane.placed_extra:  # a colour bar came or went
                if lane.placed_extra is not None:
                    ci.removeItem(lane.placed_extra)
                if lane.extra is not None:
                    ci.addItem(lane.extra, row=row, col=1)
                lane.placed_extra = lane.extra
            stretch = LANE_STRETCH.get(lane.kind, 2)
            if ci.layout.rowStretchFactor(row) != stretch:
                ci.layout.setRowStretchFactor(row, stretch)
        for row in range(len(lanes), ci.layout.rowCount()):
            if ci.layout.rowStretchFactor(row):
                ci.layout.setRowStretchFactor(row, 0)
        self._placed = list(lanes)
        need_right = any(lane.confidence_view is not None for lane in lanes)
        for i, lane in enumerate(lanes):
            last = i == len(lanes) - 1
            bottom = lane.plot.getAxis("bottom")
            if bottom.isVisible() != last:
                lane.plot.showAxis("bottom", last)
            if last and bottom.labelText != "time (s)":
                bottom.setLabel("time (s)")
            right = lane.plot.getAxis("right")
            if need_right:
                if not right.isVisible():
                    lane.plot.showAxis("right")
                    right.setWidth(RIGHT_AXIS_WIDTH)
                    if lane.confidence_view is None:
                        right.setStyle(showValues=False)
            elif right.isVisible():
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
            if (
                lane is not master
                and master is not None
                and lane.vb.linkedView(lane.vb.XAxis) is not master.vb
            ):
                lane.vb.setXLink(master.vb)
            if self._duration > 0 and lane.limits != self._duration:
                lane.vb.setLimits(
                    xMin=0.0,
                    xMax=self._duration,
                    minXRange=min(self._duration, 0.01),
                    maxXRange=self._duration,
                )
                lane.limits = self._duration
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
        """The beat times of ``tempo`` over the duration (recomputed only when either changed)."""
        if (tempo, self._duration) == self._tempo_for:
            return
        self._tempo = tempo
        self._tempo_for = (tempo, self._duration)
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
