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
2nd, 4th... bar) when they would be closer than :data:`.navigation.MIN_GRID_SPACING_PX`.

Interaction: wheel zooms time (with or without Ctrl), drag pans, Shift+drag selects a time
range (:mod:`.selection`, drawn in every lane), a click emits
:attr:`PlotArea.seekRequested` (the caller moves the playhead with :meth:`PlotArea.set_playhead`),
``+``/``=`` and ``-`` zoom, arrow keys pan (Shift: further), Home/End jump, ``0`` shows all
(in the main window Home/End are its Go to Start/End actions: they move the playhead too).

The ruler above the scrolling lanes is the time axis (:mod:`.ruler`); hovering a lane gives a
readout (:mod:`.crosshair`); a click names its lane; the selected rows' lanes are marked.

This module holds the widget and what it shows (sources, feature lanes, budgeted reloads, the
level-of-detail refresh); a lane itself is in :mod:`.lanes`, the stacking of lanes in
:mod:`.layout`, keys, clicks and the beat grid in :mod:`.navigation`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from diagnostics_app.core.axes import complete_names
from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.core.timefmt import format_time
from diagnostics_app.qt.plots.crosshair import HoverLines, LaneMeaning, readout_text
from diagnostics_app.qt.plots.features import FeaturePlot, LaneData, plot_duration, prepare_lanes
from diagnostics_app.qt.plots.lanes import TITLE_HEIGHT as TITLE_HEIGHT  # re-exported (tests)
from diagnostics_app.qt.plots.lanes import Lane, content_family, make_lane, update_lane
from diagnostics_app.qt.plots.layout import LaneStack
from diagnostics_app.qt.plots.navigation import (
    BeatGrid,
    clicked_lane,
    clicked_time,
    key_time_range,
)
from diagnostics_app.qt.plots.range_shading import RangeShading
from diagnostics_app.qt.plots.ruler import BARS, TIME, TimeRuler
from diagnostics_app.qt.plots.selection import TimeSelection
from diagnostics_app.qt.plots.waveform import Band, PeaksPyramid, make_band_curves

REFRESH_MS = 30  # at most one level-of-detail update per this many ms while zooming/panning


class PlotArea(QWidget):
    """Waveform and feature lanes of one source over a shared time axis (object name
    ``plotArea``). See the module docstring for interaction and level of detail."""

    seekRequested = Signal(float)  # seconds, clamped to [0, duration]
    selectionChanged = Signal(object)  # the selected (start, end) in seconds, or None
    hoverChanged = Signal(str)  # the crosshair readout ("" when the mouse left the lanes)
    laneClicked = Signal(object)  # the key of the lane clicked (its row is selected)
    rulerModeChanged = Signal(str)  # the ruler's context menu chose TIME or BARS

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
        # the ruler sits outside the scroll area: it stays at the top however the lanes scroll
        self._ruler = TimeRuler(self)
        self._ruler.seekRequested.connect(self.seekRequested)
        self._ruler.modeChanged.connect(self.rulerModeChanged)
        layout.addWidget(self._ruler)
        layout.addWidget(self._scroll, 1)
        self.setFocusProxy(self._canvas)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._canvas.scene().sigMouseClicked.connect(self._on_scene_click)
        self._canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._pending_updates: list[tuple[Lane, LaneData]] = []  # see show_plot's budget
        self._update_budget: float | None = None
        self._update_timer = QTimer(self)
        self._update_timer.setSingleShot(True)
        self._update_timer.setInterval(0)
        self._update_timer.timeout.connect(self._continue_updates)

        self._wave_lanes: list[Lane] = []
        self._feature_lanes: list[Lane] = []
        self._stack = LaneStack(self._canvas, self)  # where the lanes sit in the canvas
        self._stack.viewChanged.connect(self._schedule_refresh)
        self._stack.viewChanged.connect(self._update_ruler)
        self.range_shading = RangeShading(self._stack)  # the window hands it stale rows' ranges
        self._hover = HoverLines()  # the crosshair's line in every lane
        self._hover_text = ""
        self._meanings: dict[tuple[object, ...], LaneMeaning] = {}  # feature lanes' units
        self._highlight: frozenset[tuple[object, ...]] = frozenset()  # lane key prefixes
        self._scroll_to_mark = False
        self._selection = TimeSelection(self)  # drawn in every lane (Shift+drag selects)
        self._selection.changed.connect(self.selectionChanged)
        self._pyramid: PeaksPyramid | None = None
        self._title = ""
        self._duration = 0.0
        self._source_duration = 0.0
        self._tempo: TempoMap | None = None
        self._beats = BeatGrid()  # of self._tempo over self._duration
        self._playhead = 0.0
        self.last_band: Band | None = None  # what the waveform curves were last handed
        self._band_key: tuple[object, ...] = ()  # (pyramid, x0, x1, pixels) of last_band
        self._peaks_version: object = None  # names the peaks of the pyramid shown

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
        self._stack.drop(self._feature_lanes)
        self._feature_lanes = []
        self._pending_updates = []
        self._finish(keep)

    def set_features(self, items: Sequence[FeaturePlot]) -> None:
        """Show ``items`` as the feature lanes (below the waveform); empty: waveform only.
        The visible time range is kept. Lanes of items shown before (same label, feature and
        shape) are kept and given the new data and styling; only new ones are built and only
        gone ones removed."""
        keep = self.time_range() if self._stack.master is not None else None
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

    def set_waveform_note(self, text: str) -> None:
        """Why there is no waveform (e.g. the source cannot be read), shown in its lane."""
        for lane in self._wave_lanes:
            if lane.strokes is None and text:
                lane.set_placeholder(f"no waveform — {text}")

    def set_playhead(self, seconds: float) -> None:
        self._playhead = float(seconds)
        for lane in self._stack.placed:
            lane.playhead.setValue(self._playhead)
        self._ruler.set_playhead(self._playhead)

    def playhead(self) -> float:
        return self._playhead

    def selection(self) -> tuple[float, float] | None:
        """The selected time range (Shift+drag on a lane), or None."""
        return self._selection.range()

    def set_selection(self, selection: tuple[float, float] | None) -> None:
        """Select a time range (clamped to the duration), or clear it with None."""
        self._selection.set_range(selection)

    @property
    def time_selection(self) -> TimeSelection:
        return self._selection

    def show_time(self, seconds: float) -> None:
        """Scroll (keeping the zoom) so that ``seconds`` is in view, at the near edge."""
        x0, x1 = self.time_range()
        if self._stack.master is None or x0 <= seconds <= x1:
            return
        span = x1 - x0
        if seconds < x0:
            self.set_time_range(seconds, seconds + span)
        else:
            self.set_time_range(seconds - span, seconds)

    def clear(self) -> None:
        """Remove every lane: nothing is shown until the next :meth:`set_source`."""
        self._timer.stop()
        self._update_timer.stop()
        self._pending_updates = []
        self._stack.drop(self._wave_lanes + self._feature_lanes)
        self._wave_lanes, self._feature_lanes = [], []
        self._pyramid = None
        self._title = ""
        self._duration = self._source_duration = 0.0
        self._set_tempo(None)
        self.last_band = None
        self._selection.set_range(None)
        self._header.setText("No source")
        self._meanings = {}
        self._relayout()
        self._set_hover(None, "")
        self._ruler.clear_view()

    def lanes(self) -> tuple[Lane, ...]:
        """The lanes, top to bottom (waveform channels first)."""
        return tuple(self._stack.placed)

    def duration(self) -> float:
        return self._duration

    def time_range(self) -> tuple[float, float]:
        """The visible time range in seconds ((0, 0) with no lanes)."""
        if self._stack.master is None:
            return 0.0, 0.0
        lo, hi = self._stack.master.vb.viewRange()[0]
        return float(lo), float(hi)

    def set_time_range(self, start: float, end: float) -> None:
        """Show ``start``..``end`` seconds (clamped by the view limits)."""
        if self._stack.master is not None and end > start:
            self._stack.master.vb.setXRange(start, end, padding=0)

    @property
    def refresh_pending(self) -> bool:
        """A view change is waiting for its (rate-limited) level-of-detail update."""
        return self._timer.isActive()

    @Slot()
    def refresh(self) -> None:
        """Hand the waveform curves and grids the data of the visible range now."""
        self._timer.stop()
        master = self._stack.master
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
        beats, bars = self._beats.visible(x0, x1, pixels)
        for lane in self._stack.placed:
            lane.set_grid(beats, bars)
        self._update_ruler()

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
            self._stack.master is not None
            and title == self._title
            and abs(float(duration) - self._source_duration) < 1e-9
        )
        keep = self.time_range() if same else None
        if not same:
            self._selection.set_range(None)  # another source: its own selection
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
            names = complete_names(channel_names, pyr.channels)
            wanted = [(("waveform", name), f"waveform · {name}") for name in names]
            y_range = (-top, top)
        else:
            wanted = [(("waveform", None), "waveform — peaks not calculated")]
            y_range = (-1.05, 1.05)
        if [lane.key for lane in self._wave_lanes] == [key for key, _ in wanted]:
            for lane in self._wave_lanes:
                lane.set_y(y_range, "FS")
        else:
            self._stack.drop(self._wave_lanes)
            self._wave_lanes = []
            for key, lane_title in wanted:
                lane = Lane("waveform", lane_title, y_range, "FS")
                lane.key = key
                if pyr is not None:
                    lane.strokes, lane.fill = make_band_curves()
                    lane.vb.addItem(lane.strokes, ignoreBounds=True)
                    lane.vb.addItem(lane.fill, ignoreBounds=True)
                else:  # no scales of nothing: the reason, centred (see set_waveform_note)
                    lane.set_placeholder("waveform: peaks not calculated")
                self._wave_lanes.append(lane)
        channels = pyr.channels if pyr is not None else len(channel_names)
        self._header.setText(
            f"{title}   {format_time(self._duration, 1)}   "
            f"{channels} channel{'s' if channels != 1 else ''}"
        )
        return keep

    def _apply_features(self, items: Sequence[FeaturePlot]) -> list[tuple[Lane, LaneData]]:
        """The feature half of a show: reuse lanes by key, build new ones, drop gone ones.
        Returns the in-place data updates of kept lanes, for :meth:`_run_updates` (a lane
        whose content changes kind is refilled here: that may change the layout)."""
        duration = plot_duration(self._source_duration, items)
        self._duration = duration
        self._meanings = {}
        old: dict[tuple[object, ...], Lane] = {}
        for lane in self._feature_lanes:
            old.setdefault(lane.key, lane)
        lanes: list[Lane] = []
        updates: list[tuple[Lane, LaneData]] = []
        for item in items:
            prepared = item.lanes
            if prepared is None or item.lanes_duration != duration:
                prepared = prepare_lanes(item, duration)  # not made by a worker: do it here
            meaning = LaneMeaning(tuple(item.meta.bins), item.meta.bin_unit, item.meta.unit)
            for data in prepared:
                self._meanings[data.key] = meaning
                reused = old.pop(data.key, None)
                family = None if reused is None else content_family(reused.kind)
                if reused is None or (
                    family != content_family(data.kind)
                    and "pitch" in (family, content_family(data.kind))
                ):
                    lanes.append(make_lane(data))  # pitch lanes have a second view
                    continue
                lanes.append(reused)
                if family != content_family(data.kind):
                    update_lane(reused, data)
                else:
                    updates.append((reused, data))
        self._stack.drop([lane for lane in self._feature_lanes if lane not in lanes])
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
                update_lane(lane, data)
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
        if self._stack.master is not None:
            want = keep if keep is not None and keep[1] > keep[0] else (0.0, self._duration)
            if want != self.time_range():  # setXRange to the same range still repaints
                self.set_time_range(want[0], max(want[1], want[0] + 1e-3))
        self.refresh()

    @Slot()
    def _schedule_refresh(self) -> None:
        # a throttle, not a debounce: while panning, one update every REFRESH_MS
        if not self._timer.isActive():
            self._timer.start()

    def _relayout(self) -> None:
        self._stack.relayout(self._wave_lanes + self._feature_lanes, self._duration, self._playhead)
        marked = [
            ln for ln in self._stack.placed if ln.set_highlight(self._matches(ln, self._highlight))
        ]
        if marked and self._scroll_to_mark:  # rows selected before their lanes were built
            self._scroll_to_mark = False
            self.scroll_to_lane(marked[0])
        self._selection.attach(self._stack.placed, self._duration)
        self.range_shading.attach(self._stack.placed)
        self._hover.attach(self._stack.placed)

    def _set_tempo(self, tempo: TempoMap | None) -> None:
        """The tempo map whose beat grid is drawn (beats recomputed only when it or the
        duration changed)."""
        self._tempo = tempo
        self._beats.set_tempo(tempo, self._duration)
        self._ruler.set_beats(self._beats.beat_times)

    # --- input --------------------------------------------------------------------------

    @Slot(object)
    def _on_scene_click(self, event: object) -> None:
        lane = clicked_lane(event, self._stack.placed)
        if lane is not None:
            self.laneClicked.emit(lane.key)
        t = clicked_time(event, self._stack.placed, self._duration)
        if t is not None:
            self.seekRequested.emit(t)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._canvas and event.type() == QEvent.Type.Leave:
            self._set_hover(None, "")
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
        if self._stack.master is None:
            return False
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        want = key_time_range(event.key(), shift, self.time_range(), self._duration)
        if want is None:
            return False
        self.set_time_range(*want)
        return True

    # --- ruler, crosshair and row marks -----------------------------------------------------

    @property
    def ruler(self) -> TimeRuler:
        return self._ruler

    def set_ruler_mode(self, bars: bool, available: bool = True) -> None:
        """The ruler (and the readout) in bars.beats, else m:ss.mmm; ``available``: the
        project has a tempo map (without one, time only)."""
        self._ruler.bars_enabled = available
        self._ruler.set_mode(BARS if bars else TIME)
        self._ruler.update()

    @Slot()
    def _update_ruler(self) -> None:
        """Hand the ruler the visible range and where the lanes' views begin and end in it."""
        master = self._stack.master
        if master is None:
            self._ruler.clear_view()
            return
        x0, x1 = self.time_range()
        rect = master.vb.sceneBoundingRect()
        ends = []
        for point in (rect.topLeft(), rect.topRight()):
            in_canvas = self._canvas.mapFromScene(point)
            ends.append(float(self._ruler.mapFrom(self, self._canvas.mapTo(self, in_canvas)).x()))
        self._ruler.set_view(x0, x1, ends[0], ends[1])

    def hover_text(self) -> str:
        """The crosshair readout now ("" when the mouse is not over a lane)."""
        return self._hover_text

    def readout(self, lane: Lane, scene_pos: QPointF) -> str:
        """What the status bar says for the mouse at ``scene_pos`` over ``lane``."""
        beats = self._beats.beat_times if self._ruler.in_bars else None
        return readout_text(lane, self._meanings.get(lane.key), scene_pos, beats)

    @Slot(object)
    def _on_mouse_moved(self, pos: QPointF) -> None:
        lane = next(
            (ln for ln in self._stack.placed if ln.vb.sceneBoundingRect().contains(pos)), None
        )
        if lane is None:
            self._set_hover(None, "")
            return
        t = float(lane.vb.mapSceneToView(pos).x())
        self._set_hover(t, self.readout(lane, pos))

    def _set_hover(self, seconds: float | None, text: str) -> None:
        self._hover.set_time(seconds)
        self._ruler.set_hover(seconds)
        if text != self._hover_text:
            self._hover_text = text
            self.hoverChanged.emit(text)

    @staticmethod
    def _matches(lane: Lane, prefixes: Collection[tuple[object, ...]]) -> bool:
        return any(lane.key[: len(p)] == p for p in prefixes)

    def highlight_lanes(self, prefixes: Collection[tuple[object, ...]]) -> list[Lane]:
        """Mark the lanes whose key starts with one of ``prefixes`` (the selected rows'; kept
        for lanes built later) and scroll the first of them into view; returns them."""
        self._highlight = frozenset(prefixes)
        marked = [ln for ln in self._stack.placed if ln.set_highlight(self._matches(ln, prefixes))]
        self._scroll_to_mark = not marked  # not built yet: scrolled to when they are
        if marked:
            self.scroll_to_lane(marked[0])
        return marked

    def scroll_to_lane(self, lane: Lane) -> None:
        """Scroll the lanes so that ``lane`` is in view (all of it when it fits)."""
        self._canvas.ci.layout.activate()
        rect = lane.plot.sceneBoundingRect()
        top = self._canvas.mapFromScene(rect.topLeft()).y()
        bottom = self._canvas.mapFromScene(rect.bottomLeft()).y()
        self._scroll.ensureVisible(0, (top + bottom) // 2, 0, max(0, (bottom - top) // 2 + 4))

    def set_lane_marks(self, marks: Mapping[tuple[object, ...], tuple[bool, str]]) -> None:
        """The rows' states now ((stale, state) by lane key prefix): lanes change their marks
        at once, whether or not new data for them follows."""
        for lane in self._feature_lanes:
            for prefix, (stale, state) in marks.items():
                if lane.key[: len(prefix)] == prefix:
                    lane.set_marks(stale, state)
                    break
