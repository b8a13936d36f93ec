"""Lane stacking: where each lane sits in the plot canvas's layout, and the links between lanes.

:class:`LaneStack` owns the one ``GraphicsLayout`` column the lanes share: it places lanes in
rows (the colour bars in a second column), shows the time axis on the last lane only, sizes
the right axes, links every lane's x to the first lane (the *master*, whose view changes drive
the level-of-detail update) and sets the view limits for the duration. It is apart from
:class:`~diagnostics_app.qt.plots.plot_area.PlotArea` because this bookkeeping is what makes
a reload cheap (a kept lane is never touched again) and is easiest to check on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFont, QFontMetrics

from diagnostics_app.qt.plots.lanes import LEFT_AXIS_WIDTH, TITLE_HEIGHT, Lane

RIGHT_AXIS_WIDTH = 46
# images (spectrogram, mel, chroma) get the most room: they hold the most detail
LANE_STRETCH = {"waveform": 2, "image": 4, "line": 2, "steps": 2, "pitch": 2}


class LaneStack(QObject):
    """The lanes placed in ``canvas``, top to bottom, and the master lane (the first)."""

    # the master lane's x range or size changed (its signals are forwarded, and move with it);
    # a signal rather than a callback, so no Python reference leads back to the plot area
    viewChanged = Signal()

    def __init__(self, canvas: pg.GraphicsLayoutWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._canvas = canvas
        self.placed: list[Lane] = []
        self.master: Lane | None = None
        self._signature: tuple[object, ...] = ()  # what relayout last laid out

    def drop(self, lanes: Sequence[Lane]) -> None:
        """Take ``lanes`` out of the layout and unlink them (before they are discarded)."""
        ci = self._canvas.ci
        for lane in lanes:
            lane.unlink()
            if lane in self.placed:
                ci.removeItem(lane.plot)
                if lane.placed_extra is not None:
                    ci.removeItem(lane.placed_extra)
                    lane.placed_extra = None
                self.placed.remove(lane)
                lane.row = -1

    def relayout(self, lanes: list[Lane], duration: float, playhead: float) -> None:
        """Place ``lanes`` in their rows (a kept lane stays put unless lanes before it came
        or went), show the time axis on the last lane only, link x to the first lane. Lanes
        that are already placed and linked are not touched again."""
        signature = (
            tuple(
                (id(lane), lane.kind, id(lane.extra), lane.confidence_view is None)
                for lane in lanes
            ),
            duration,
        )
        self._size_left_axes(lanes)
        if signature == self._signature and lanes == self.placed:
            return  # nothing moved: touching the layout again would repaint every lane
        self._signature = signature
        self._place(lanes, playhead)
        self._show_axes(lanes)
        self._link(lanes, duration)
        self._canvas.setMinimumHeight(sum(lane.min_height for lane in lanes) + 40)

    def _place(self, lanes: list[Lane], playhead: float) -> None:
        """Rows, colour bars and stretch factors."""
        ci = self._canvas.ci
        moved = [lane for row, lane in enumerate(lanes) if lane in self.placed and lane.row != row]
        for lane in moved:  # out first, so no two lanes ever share a cell
            ci.removeItem(lane.plot)
            if lane.placed_extra is not None:
                ci.removeItem(lane.placed_extra)
                lane.placed_extra = None
            self.placed.remove(lane)
        for row, lane in enumerate(lanes):
            if lane not in self.placed:
                ci.addItem(lane.plot, row=row, col=0)
                lane.row = row
                lane.playhead.setValue(playhead)
            if lane.extra is not lane.placed_extra:  # a colour bar came or went
                if lane.placed_extra is not None:
                    ci.removeItem(lane.placed_extra)
                if lane.extra is not None:
                    ci.addItem(lane.extra, row=row, col=1)
                lane.placed_extra = lane.extra
            if lane.plot.minimumHeight() < lane.min_height:  # the layout honours it: no lane
                lane.plot.setMinimumHeight(lane.min_height)  # is squeezed below its least height
            stretch = LANE_STRETCH.get(lane.kind, 2)
            if ci.layout.rowStretchFactor(row) != stretch:
                ci.layout.setRowStretchFactor(row, stretch)
        for row in range(len(lanes), ci.layout.rowCount()):
            if ci.layout.rowStretchFactor(row):
                ci.layout.setRowStretchFactor(row, 0)
        self.placed = list(lanes)

    @staticmethod
    def _show_axes(lanes: list[Lane]) -> None:
        """No lane has a time axis (the ruler above the lanes is the time axis); right axes
        on every lane when one has a second view (values only there), so all lanes keep the
        same width."""
        need_right = any(lane.confidence_view is not None for lane in lanes)
        for lane in lanes:
            if lane.plot.getAxis("bottom").isVisible():
                lane.plot.hideAxis("bottom")
            right = lane.plot.getAxis("right")
            if need_right:
                if not right.isVisible():
                    lane.plot.showAxis("right")
                    right.setWidth(RIGHT_AXIS_WIDTH)
                    if lane.confidence_view is None:
                        right.setStyle(showValues=False)
            elif right.isVisible():
                lane.plot.hideAxis("right")

    @staticmethod
    def _size_left_axes(lanes: list[Lane]) -> None:
        """Every left axis as wide as the widest needs (its tick labels and label never
        clipped; a no-op when unchanged), so a given time is at the same x in every lane."""
        left = max([LEFT_AXIS_WIDTH] + [left_width_needed(lane) for lane in lanes])
        for lane in lanes:
            lane.set_left_width(left)

    def _link(self, lanes: list[Lane], duration: float) -> None:
        """The first lane becomes the master; the others follow its x; limits fit the
        duration."""
        master = lanes[0] if lanes else None
        if master is not self.master:
            if self.master is not None:
                self._disconnect_master(self.master)
            if master is not None:
                master.vb.sigXRangeChanged.connect(self.viewChanged)
                master.vb.sigResized.connect(self.viewChanged)
            self.master = master
        for lane in lanes:
            if (
                lane is not master
                and master is not None
                and lane.vb.linkedView(lane.vb.XAxis) is not master.vb
            ):
                lane.vb.setXLink(master.vb)
            if duration > 0 and lane.limits != duration:
                lane.vb.setLimits(
                    xMin=0.0,
                    xMax=duration,
                    minXRange=min(duration, 0.01),
                    maxXRange=duration,
                )
                lane.limits = duration

    def _disconnect_master(self, lane: Lane) -> None:
        for signal in (lane.vb.sigXRangeChanged, lane.vb.sigResized):
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(self.viewChanged)


def left_width_needed(lane: Lane) -> int:
    """The width the left axis needs for its tick labels and its (rotated) label."""
    axis = lane.plot.getAxis("left")
    if lane.placeholder is not None:
        return 0
    font = axis.style.get("tickFont") or QFont()
    metrics = QFontMetrics(font)
    ticks = axis._tickLevels  # explicit ticks (frequencies, notes), else numeric ones
    lo, hi = lane.y_range
    if ticks is not None:
        strings = [label for level in ticks for _, label in level]
    else:
        size = float(max(lane.min_height - TITLE_HEIGHT, 20))
        strings = []
        for spacing, values in axis.tickValues(lo, hi, size):
            strings += axis.tickStrings(values, 1.0, spacing)
    text = max((metrics.horizontalAdvance(t) for t in strings), default=0)
    label = axis.label.boundingRect().height() if lane.y_label else 0.0
    return int(text + axis.style["tickTextOffset"][0] + label + 4)
