"""Lanes of the plot area: one ``PlotItem`` each, its styling, and the content items it draws.

A :class:`Lane` is the unit :class:`~diagnostics_app.qt.plots.plot_area.PlotArea` stacks,
keeps across reloads and hands new data. It lives apart from the plot area so that what a lane
*is* (its fixed y range, title, stale mark, beat grid, playhead, waveform band, curves and
image) can be read without the stacking (:mod:`.layout`) and the navigation
(:mod:`.navigation`). The module functions at the end turn a :class:`~.features.LaneData`
(prepared by a worker) into a lane's items, or hand a kept lane new data in place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsSimpleTextItem, QMenu

from diagnostics_app.qt.plots.features import (
    CONFIDENCE_COLOR,
    LINE_COLORS,
    STALE_COLOR,
    FeaturePlot,
    LaneData,
    line_pen,
    make_line_curve,
    prepare_lanes,
    title_html,
)
from diagnostics_app.qt.plots.images import (
    color_map,
    make_color_bar,
    make_image_item,
    show_image,
)
from diagnostics_app.qt.plots.lane_menu import follow_style, levels_dragged
from diagnostics_app.qt.plots.lane_style import book

LEFT_AXIS_WIDTH = 50  # the least width of the left axes (LaneStack widens all to the widest)
TITLE_HEIGHT = 18
MIN_LANE_HEIGHT = {"waveform": 90, "image": 140, "line": 80, "steps": 80, "pitch": 90}
TITLE_COLOR = "#d8d8d8"
STATE_COLOR = "#a0a0a0"
PLACEHOLDER_COLOR = "#b8b8b8"
NOTE_FONT_PT = 7.5
NOTE_LANE_HEIGHT = 12 * 12 + TITLE_HEIGHT + 12  # twelve note names, ~12 px each
DEFAULT_FILL_LIMITS = [(0, 0.8), (2, 0.6), (4, 0.4), (6, 0.2)]  # pyqtgraph's
PLAYHEAD_PEN = pg.mkPen((255, 80, 70), width=1.5)
BEAT_PEN = pg.mkPen((255, 255, 255, 34), width=1)
BAR_PEN = pg.mkPen((255, 255, 255, 90), width=1)
VOICING_PEN = pg.mkPen((200, 200, 200, 120), width=1, style=Qt.PenStyle.DotLine)
HIGHLIGHT_COLOR = (90, 170, 255)  # the selected row's lane: frame
HIGHLIGHT_BACKGROUND = (40, 70, 110, 70)  # and view tint


_EMPTY = np.zeros(0)


class LaneViewBox(pg.ViewBox):  # type: ignore[misc]
    """A lane's view: pyqtgraph's own menu is off, a right click opens the lane's menu
    (:attr:`menu_for`, e.g. the scale and colours of an image lane) when it has one."""

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.menu_for: Callable[[], QMenu | None] | None = None
        self.open_menu: QMenu | None = None  # the menu shown last (kept alive while open)

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.RightButton and self.menu_for is not None:
            menu = self.menu_for()
            if menu is not None:
                ev.accept()
                self.open_menu = menu
                menu.popup(ev.screenPos().toPoint())
                return
        super().mouseClickEvent(ev)


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
        self.title = lane_title(title, stale, state)
        self.y_range = y_range
        self.y_label = y_label
        self.key: tuple[object, ...] = (kind, title)  # identity across reloads (PlotArea sets it)
        self.version: object = None  # the data the items hold (None: unknown)
        self.row = -1  # layout row while placed
        self.limits: float | None = None  # the duration the view limits were set for
        # what the grid and waveform curves were last handed (set_grid / set_band skip a repeat)
        self._grid_for: tuple[np.ndarray, np.ndarray, tuple[float, float]] | None = None
        self._band_for: tuple[str, np.ndarray, np.ndarray] | None = None
        self.y_tip = ""  # the long form of the left axis' label (its tooltip)
        self.placeholder: str | None = None  # no data: the centred text instead of scales
        self._placeholder_item: QGraphicsSimpleTextItem | None = None
        self._saved_ticks: Any = None  # the left axis' explicit ticks while a placeholder
        self._notes = False  # the left axis names notes (fit_ticks)
        self.style_key = ""  # image lanes: their LaneStyle's key in the style book
        self.source: FeaturePlot | None = None  # image lanes: what a restyle prepares again
        self._listening = False
        self.view_box = LaneViewBox()
        self.plot = pg.PlotItem(enableMenu=False, viewBox=self.view_box)
        self.vb: pg.ViewBox = self.plot.getViewBox()
        # waveform lanes: min-max strokes, and a filled outline when zoomed in (one shown)
        self.strokes: pg.PlotCurveItem | None = None
        self.fill: pg.PlotCurveItem | None = None
        self.curves: list[pg.PlotDataItem] = []  # line, steps and pitch lanes
        self.image: pg.ImageItem | None = None  # image lanes
        self.color_bar: pg.ColorBarItem | None = None
        self.confidence_view: pg.ViewBox | None = None  # pitch lanes
        self.voicing_line: pg.InfiniteLine | None = None  # pitch lanes, on the confidence axis
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
        color, label = (STALE_COLOR if self.stale else TITLE_COLOR), self.plot.titleLabel
        if label.isVisible():
            # the text only: PlotItem.setTitle resets the row to 30 px, LabelItem.setText sets a
            # minimum size that relayouts the whole canvas, each time a state changes the title
            label.text = self.title
            label.opts.update(color=color, size="9pt", bold=self.stale)
            label.item.setHtml(title_html(self.title, color, self.stale))
        else:
            self.plot.setTitle(self.title, color=color, size="9pt", bold=self.stale)

    def set_style(self, title: str, stale: bool, state: str) -> None:
        """New title, stale mark and state; only what changed is touched."""
        text = lane_title(title, stale, state)
        if text == self.title and stale == self.stale and state == self.state:
            return
        restale = stale != self.stale
        self.title, self.stale, self.state = text, stale, state
        self._show_title()
        if restale:
            border = pg.mkPen(STALE_COLOR, width=1.5, style=Qt.PenStyle.DashLine) if stale else None
            self.vb.setBorder(border)

    def set_y(self, y_range: tuple[float, float], y_label: str, y_tip: str = "") -> None:
        """A new fixed y range and axis label (no-ops when unchanged); ``y_tip``: the label's
        long form, the axis' tooltip."""
        if tuple(y_range) != tuple(self.y_range):
            self.y_range = y_range
            self.vb.setYRange(*y_range, padding=0)
        left = self.plot.getAxis("left")
        if y_label != self.y_label:
            self.y_label = y_label
            if self.placeholder is None:
                left.setLabel(y_label)
        if y_tip != self.y_tip:
            self.y_tip = y_tip
            left.setToolTip(y_tip)

    def set_placeholder(self, text: str | None) -> None:
        """No data (``text``: why): no scales, the text centred in the lane instead; None:
        the scales again."""
        if text == self.placeholder:
            return
        self.placeholder = text
        left = self.plot.getAxis("left")
        if text is None:
            if self._placeholder_item is not None:
                self._placeholder_item.hide()
            left.setStyle(showValues=True)
            left.setTicks(self._saved_ticks)
            left.setLabel(self.y_label)
            left.showLabel(bool(self.y_label))
            if self.color_bar is not None:
                self.color_bar.setOpacity(1.0)
                self.color_bar.setEnabled(True)
            return
        item = self._placeholder_item
        if item is None:
            item = QGraphicsSimpleTextItem(self.vb)
            item.setBrush(QColor(PLACEHOLDER_COLOR))
            font = QFont()
            font.setPointSizeF(10.0)
            item.setFont(font)
            item.setZValue(200)
            self._placeholder_item = item
            self.vb.sigResized.connect(self._place_placeholder)
        item.setToolTip(text)
        item.show()
        if left._tickLevels != [[]]:  # (a placeholder already: its ticks are kept)
            self._saved_ticks = left._tickLevels
        left.setStyle(showValues=False)
        left.setTicks([[]])
        left.showLabel(False)
        if self.color_bar is not None:
            _hide_bar(self.color_bar)
        self._place_placeholder()

    def placeholder_item(self) -> QGraphicsSimpleTextItem | None:
        """The item showing :attr:`placeholder` (None: never had one)."""
        return self._placeholder_item

    def _place_placeholder(self) -> None:
        item, text = self._placeholder_item, self.placeholder
        if item is None or text is None:
            return
        rect = self.vb.rect()
        width = max(int(rect.width()) - 16, 40)
        item.setText(
            QFontMetrics(item.font()).elidedText(text, Qt.TextElideMode.ElideMiddle, width)
        )
        box = item.boundingRect()
        item.setPos(rect.center().x() - box.width() / 2, rect.center().y() - box.height() / 2)

    def set_left_width(self, width: int) -> None:
        axis = self.plot.getAxis("left")
        if axis.fixedWidth != width:
            axis.setWidth(width)

    def listen_to_styles(self) -> None:
        """Follow the style book: a change of this lane's style key draws it again."""
        if not self._listening:
            self._listening = True
            book().listen(self.on_style_changed)

    def on_style_changed(self, key: str) -> None:
        """The style of ``key`` changed: an image lane of that key is prepared again from its
        source, in the new style (on the GUI thread: one lane's image)."""
        if key != self.style_key or self.source is None or self.kind != "image":
            return
        with contextlib.suppress(RuntimeError):  # the lane's items were deleted meanwhile
            duration = self.limits or 0.0
            for data in prepare_lanes(self.source, duration):
                if data.key == self.key:
                    update_lane(self, data)

    @property
    def min_height(self) -> int:
        return max(MIN_LANE_HEIGHT.get(self.kind, 80), int(self.plot.minimumHeight()))

    def fit_ticks(self, y_label: str) -> None:
        """A lane whose ticks name notes gets room for all twelve (a smaller font, at least
        :data:`NOTE_LANE_HEIGHT` high); others drop labels that do not fit, as pyqtgraph does."""
        notes = y_label == "note"
        if notes == self._notes:
            return
        self._notes = notes
        axis = self.plot.getAxis("left")
        if notes:
            font = QFont()
            font.setPointSizeF(NOTE_FONT_PT)
            axis.setStyle(tickFont=font, textFillLimits=[(0, 0.98)])
            self.plot.setMinimumHeight(NOTE_LANE_HEIGHT)
        else:
            axis.setStyle(tickFont=None, textFillLimits=DEFAULT_FILL_LIMITS)
            self.plot.setMinimumHeight(MIN_LANE_HEIGHT.get(self.kind, 80))

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
        right.setLabel("conf")
        right.setToolTip("confidence of the f0, 0..1 (grey curve)")
        self.confidence_view = view
        # the voicing threshold: confidence above it is a drawn f0 (set_voicing moves it)
        self.voicing_line = pg.InfiniteLine(pos=0.9, angle=0, movable=False, pen=VOICING_PEN)
        self.voicing_line.setToolTip("voicing threshold: f0 is drawn where confidence is above")
        view.addItem(self.voicing_line, ignoreBounds=True)
        return view

    def set_voicing(self, threshold: float | None) -> None:
        """Where the voicing threshold line sits on the confidence axis (None: hidden)."""
        line = self.voicing_line
        if line is None:
            return
        line.setVisible(threshold is not None)
        if threshold is not None and line.value() != threshold:
            line.setValue(threshold)

    def _sync_confidence_view(self) -> None:
        if self.confidence_view is not None:
            self.confidence_view.setGeometry(self.vb.rect())

    # --- marks of the row behind the lane (additive: the plot area's row <-> lane links) ----

    highlighted = False  # the lane's row is selected in the table
    _frame: QGraphicsRectItem | None = None

    def set_highlight(self, on: bool) -> bool:
        """Mark the lane as its row's (selected in the table): a tinted view and an accent
        frame around the whole lane, title and axis included. Returns ``on``."""
        if on == self.highlighted:
            return on
        self.highlighted = on
        self.vb.setBackgroundColor(HIGHLIGHT_BACKGROUND if on else None)
        if self._frame is None:
            self._frame = QGraphicsRectItem(self.plot)
            self._frame.setPen(pg.mkPen(HIGHLIGHT_COLOR, width=2))
            self._frame.setZValue(-100)
            self.plot.geometryChanged.connect(self._fit_frame)
        self._fit_frame()
        self._frame.setVisible(on)
        return on

    def _fit_frame(self) -> None:
        if self._frame is not None:
            self._frame.setRect(self.plot.boundingRect().adjusted(1, 1, -1, -1))

    def set_marks(self, stale: bool, state: str) -> None:
        """The row's state changed: the title, the stale border and the content's styling
        follow now, before (or without) new data for the lane."""
        if stale == self.stale and state == self.state:
            return
        suffix = lane_title("", self.stale, self.state)
        base = self.title[: len(self.title) - len(suffix)] if suffix else self.title
        restyle = stale != self.stale
        self.set_style(base, stale, state)
        if not restyle:
            return
        for i, curve in enumerate(self.curves):
            color, width = curve_style(self.kind, i)
            curve.setPen(line_pen(color, stale, width))
        if self.image is not None:
            self.image.setOpacity(0.55 if stale else 1.0)

    def unlink(self) -> None:
        """Undo the links to other lanes and the style book (before the lane is dropped)."""
        if self._listening:
            book().unlisten(self.on_style_changed)
            self._listening = False
        self.vb.setXLink(None)
        if self.confidence_view is not None:
            self.confidence_view.setXLink(None)
            with contextlib.suppress(RuntimeError, TypeError):
                self.vb.sigResized.disconnect(self._sync_confidence_view)


def curve_style(kind: str, i: int) -> tuple[tuple[int, ...], float]:
    """Colour and width of a lane's ``i``-th curve (pitch: f0, then the grey confidence)."""
    if kind == "pitch":
        return (CONFIDENCE_COLOR, 1.0) if i == 1 else (LINE_COLORS[0], 1.6)
    return LINE_COLORS[i % len(LINE_COLORS)], 1.2


def content_family(kind: str) -> str:
    """What items a lane of ``kind`` holds: an image, curves, or curves over two views."""
    return kind if kind in ("image", "pitch") else "curves"


def lane_title(title: str, stale: bool, state: str) -> str:
    if stale:
        return f"{title} — STALE"
    if state not in ("ok", ""):
        return f"{title} — {state}"
    return title


# --- content: the items a lane draws, from the LaneData a worker prepared -----------------


def make_lane(data: LaneData) -> Lane:
    """A new feature lane with its items (the GUI-thread half of :func:`prepare_lanes`)."""
    lane = Lane(
        data.kind, data.title, data.y_range, data.y_label, stale=data.stale, state=data.state
    )
    lane.key = data.key
    lane.set_y(data.y_range, data.y_label, data.y_tip)
    fill_lane(lane, data)
    return lane


def fill_lane(lane: Lane, data: LaneData) -> None:
    """Give an empty lane the items of ``data``'s kind (none yet for a pending lane, but
    the image and its colour bar, so the layout does not change when the data comes)."""
    lane.kind = data.kind
    lane.version = data.version
    follow_style(lane, data)
    lane.set_placeholder(data.placeholder)
    if data.kind == "image":
        view = data.image
        lane.image = make_image_item(view, data.stale)
        lane.vb.addItem(lane.image, ignoreBounds=True)
        if view is not None and view.y_ticks is not None:
            lane.plot.getAxis("left").setTicks(view.y_ticks)
        lane.fit_ticks(data.y_label)
        levels = view.levels if view is not None else (0.0, 1.0)
        cmap = view.cmap if view is not None else lane.image.cmap_name
        lane.color_bar = make_color_bar(lane.image, levels, data.bar_label, cmap)
        lane.image.set_cmap(cmap)  # after the bar, which hands the image its own table
        lane.color_bar.sigLevelsChangeFinished.connect(levels_dragged(lane))
        lane.extra = lane.color_bar
        if lane.placeholder is not None:
            _hide_bar(lane.color_bar)
            lane.plot.getAxis("left").setTicks([[]])
    else:
        if data.kind == "pitch":
            lane.add_confidence_view()
            lane.set_voicing(data.voicing)
        set_curves(lane, data, restyle=False)


def set_curves(lane: Lane, data: LaneData, restyle: bool) -> None:
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
        color, width = curve_style(lane.kind, i)
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


def clear_lane(lane: Lane) -> None:
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


def update_lane(lane: Lane, data: LaneData) -> bool:
    """Hand a kept lane new data (setData / setImage on the same items) and change only the
    styling that differs; data of the same version is not handed over again. A lane whose
    kind of content changed gets new content items in the same plot. False: the lane
    cannot take ``data`` (pitch lanes have a second view): the caller makes a new one."""
    family = content_family(lane.kind)
    if family != content_family(data.kind) and "pitch" in (family, content_family(data.kind)):
        return False
    restyle = data.stale != lane.stale
    lane.set_style(data.title, data.stale, data.state)
    lane.set_y(data.y_range, data.y_label, data.y_tip)
    if family != content_family(data.kind):
        clear_lane(lane)
        fill_lane(lane, data)
        return True
    lane.kind = data.kind
    follow_style(lane, data)
    lane.set_placeholder(data.placeholder)
    if lane.image is not None:
        view = data.image
        same_data = data.version is not None and data.version == lane.version
        if view is None:
            if lane.image.image is not None:
                lane.image.clear()
        elif not same_data:
            if lane.color_bar is not None and view.cmap != lane.image.cmap_name:
                lane.color_bar.setColorMap(color_map(view.cmap))
            show_image(lane.image, view)
            if lane.color_bar is not None:
                lane.color_bar.setLevels(values=view.levels)
            if data.placeholder is None:
                lane.plot.getAxis("left").setTicks(view.y_ticks)
            lane.fit_ticks(data.y_label)
        if restyle:
            lane.image.setOpacity(0.55 if data.stale else 1.0)
    else:
        set_curves(lane, data, restyle)
        lane.set_voicing(data.voicing)
    lane.version = data.version
    return True


def _hide_bar(bar: pg.ColorBarItem) -> None:
    """A placeholder's colour bar shows no scale but keeps its place in the layout, so the
    lanes do not change width when the data comes."""
    bar.setOpacity(0.0)
    bar.setEnabled(False)
