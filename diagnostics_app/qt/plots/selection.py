"""The time-range selection of the plot area: one [start, end] drawn in every lane.

Shift+drag on any lane selects a range (a plain drag still pans); the selection's edges can be
dragged in any lane, and every lane shows the same range. Each lane gets a
``LinearRegionItem`` (its edges movable, its body not, so a drag inside it still pans) and an
invisible :class:`ShiftDragCatcher` over its view that takes Shift+drags before the view does.
:class:`TimeSelection` keeps the range and the items, and says when the range changed;
:class:`~diagnostics_app.qt.plots.plot_area.PlotArea` attaches the lanes it places.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from diagnostics_app.qt.plots.lanes import Lane

REGION_BRUSH = pg.mkBrush(90, 160, 255, 45)
REGION_HOVER_BRUSH = pg.mkBrush(90, 160, 255, 70)
REGION_PEN = pg.mkPen(110, 170, 255, 200, width=1)
MIN_SELECTION = 1e-3  # seconds: a shorter drag selects nothing


class ShiftDragCatcher(pg.GraphicsObject):  # type: ignore[misc]
    """Covers a lane's view (as its child, above its content): a Shift+drag with the left
    button becomes :attr:`dragged` (start, current time, finished); any other drag goes on to
    the view (pan) or the items below."""

    dragged = Signal(float, float, bool)

    def __init__(self, vb: pg.ViewBox) -> None:
        super().__init__(vb)
        self._vb = vb
        self.setZValue(1000)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        vb.sigResized.connect(self._on_resized)

    def boundingRect(self) -> QRectF:
        return QRectF(self._vb.rect())

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        pass

    @Slot()
    def _on_resized(self) -> None:
        self.prepareGeometryChange()

    def mouseDragEvent(self, e: Any) -> None:  # a pyqtgraph MouseDragEvent
        if e.button() != Qt.MouseButton.LeftButton or (
            e.isStart() and not e.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            e.ignore()
            return
        e.accept()
        start = self._time(e.buttonDownPos())
        self.dragged.emit(start, self._time(e.pos()), bool(e.isFinish()))

    def _time(self, pos: QPointF) -> float:
        return float(self._vb.mapToView(pos).x())


class TimeSelection(QObject):
    """The selected time range (None: nothing selected) and its items in every lane."""

    changed = Signal(object)  # (start, end) in seconds, or None; when a change is finished

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._range: tuple[float, float] | None = None
        self._reported: tuple[float, float] | None = None  # the range last said by changed
        self._duration = 0.0
        # per attached lane (by id): the lane, its region and its drag catcher
        self._items: dict[int, tuple[Lane, pg.LinearRegionItem, ShiftDragCatcher]] = {}
        self._syncing = False

    def range(self) -> tuple[float, float] | None:
        return self._range

    def regions(self) -> list[pg.LinearRegionItem]:
        """The region items, one per attached lane (tests look at them)."""
        return [region for _, region, _ in self._items.values()]

    def attach(self, lanes: Sequence[Lane], duration: float) -> None:
        """Draw the selection in ``lanes`` (new lanes get their items; lanes gone lose
        theirs); the range is clamped to ``duration``."""
        self._duration = duration
        wanted = {id(lane): lane for lane in lanes}
        for key in [k for k in self._items if k not in wanted]:
            lane, region, catcher = self._items.pop(key)
            lane.vb.removeItem(region)
            catcher.setParentItem(None)
            scene = catcher.scene()
            if scene is not None:
                scene.removeItem(catcher)
        for key, lane in wanted.items():
            if key not in self._items:
                self._items[key] = (lane, self._make_region(lane), self._make_catcher(lane))
        for _, region, _ in self._items.values():
            region.setBounds((0.0, max(duration, 0.0)))
        if self._range is not None and duration > 0 and self._range[1] > duration:
            self.set_range(self._range)  # clamped
        else:
            self._show()

    def set_range(self, wanted: tuple[float, float] | None, emit: bool = True) -> None:
        """Select ``wanted`` (ordered and clamped to the duration; shorter than
        :data:`MIN_SELECTION`: nothing), or clear with None."""
        rng: tuple[float, float] | None = None
        if wanted is not None:
            a, b = sorted(float(v) for v in wanted)
            top = self._duration if self._duration > 0 else b
            a, b = min(max(a, 0.0), top), min(max(b, 0.0), top)
            rng = (a, b) if b - a >= MIN_SELECTION else None
        self._range = rng
        self._show()
        if emit and rng != self._reported:
            self._reported = rng
            self.changed.emit(rng)

    def _show(self) -> None:
        self._syncing = True
        try:
            for _, region, _ in self._items.values():
                region.setVisible(self._range is not None)
                if self._range is not None and tuple(region.getRegion()) != self._range:
                    region.setRegion(self._range)
        finally:
            self._syncing = False

    def _make_region(self, lane: Lane) -> pg.LinearRegionItem:
        region = pg.LinearRegionItem(
            (0.0, 0.0),
            orientation="vertical",
            brush=REGION_BRUSH,
            hoverBrush=REGION_HOVER_BRUSH,
            pen=REGION_PEN,
            movable=False,
        )
        for line in region.lines:
            line.setMovable(True)  # the edges move; a drag inside still pans
        region.setZValue(50)  # above the content, below the playhead
        region.setVisible(False)
        region.sigRegionChanged.connect(self._on_region_moved)
        region.sigRegionChangeFinished.connect(self._on_region_finished)
        lane.vb.addItem(region, ignoreBounds=True)
        return region

    def _make_catcher(self, lane: Lane) -> ShiftDragCatcher:
        catcher = ShiftDragCatcher(lane.vb)
        catcher.dragged.connect(self._on_dragged)
        return catcher

    @Slot(float, float, bool)
    def _on_dragged(self, start: float, current: float, finished: bool) -> None:
        self.set_range((start, current), emit=finished)

    @Slot(object)
    def _on_region_moved(self, region: pg.LinearRegionItem) -> None:
        """An edge dragged in one lane: the others follow at once."""
        if self._syncing:
            return
        a, b = (float(v) for v in region.getRegion())
        self._range = (a, b)
        self._show()

    @Slot(object)
    def _on_region_finished(self, region: pg.LinearRegionItem) -> None:
        if self._syncing:
            return
        a, b = (float(v) for v in region.getRegion())
        self.set_range((a, b))
