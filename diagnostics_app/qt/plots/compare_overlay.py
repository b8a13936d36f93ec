"""Compare mode on a row's lanes: the previous version over the current one.

Line, steps and pitch lanes get the previous version as a grey *ghost* curve under the
current one; image lanes show the current version, the previous one or their difference
(:data:`CURRENT`, :data:`PREVIOUS`, :data:`DIFFERENCE`: the lane's context menu, or
:meth:`CompareOverlay.set_image_mode`). The time ranges that differ are shaded lightly on
every compared lane (one filled curve for all of them, however many). A small label in the
lane's top right says what is shown. :meth:`CompareOverlay.clear` takes it all away and
gives image lanes their current picture back.

The overlay only adds items to lanes the plot area made (and takes them away again): the
lanes themselves stay the plot area's. After a reload the window hands it the lanes again
(:meth:`CompareOverlay.apply`): a kept lane keeps its items, a new lane gets its own.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsSimpleTextItem, QMenu

from diagnostics_app.qt.plots.features import make_line_curve
from diagnostics_app.qt.plots.images import ImageView, color_map, show_image
from diagnostics_app.qt.plots.lane_menu import lane_menu
from diagnostics_app.qt.plots.lane_style import book

if TYPE_CHECKING:
    from diagnostics_app.qt.compare_mode import CompareResult
    from diagnostics_app.qt.plots.lanes import Lane

CURRENT: Final = "current"
PREVIOUS: Final = "previous"
DIFFERENCE: Final = "difference"
IMAGE_MODES: Final = (CURRENT, PREVIOUS, DIFFERENCE)
MODE_TITLES: Final = {
    CURRENT: "Show Current Version",
    PREVIOUS: "Show Previous Version",
    DIFFERENCE: "Show Difference (new − old)",
}
GHOST_COLOR = (175, 175, 175, 200)
SHADE_BRUSH = pg.mkBrush(255, 70, 60, 38)  # light: the data stays readable through it
LABEL_COLOR = QColor(255, 205, 120)
LABEL_PLATE = QColor(20, 20, 24, 200)


@dataclass
class _Marks:
    """What the overlay added to one lane."""

    lane: weakref.ref[Lane]
    ghosts: list[pg.PlotDataItem] = field(default_factory=list)
    shade: pg.PlotCurveItem | None = None
    label: QGraphicsSimpleTextItem | None = None
    menu_for: Callable[[], QMenu | None] | None = None  # the lane's own menu, wrapped
    place: Callable[[], None] | None = None  # puts the label in the top right corner


def shade_polyline(
    ranges: Sequence[tuple[float, float]], lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """One outline for all ``ranges``: filled down to ``lo`` it shades each range from ``lo``
    to ``hi`` and nothing between them."""
    x = np.repeat(np.asarray(ranges, np.float64).reshape(-1, 2), 2, axis=1).ravel()
    y = np.tile(np.array([lo, hi, hi, lo]), len(ranges))
    return x, y


class CompareOverlay:
    """The compare marks of one row's lanes (at most one row is compared at a time)."""

    def __init__(self) -> None:
        self.result: CompareResult | None = None
        self.image_mode = CURRENT
        self._marks: dict[int, _Marks] = {}  # by id of the lane
        # called when a compared image lane's style changes: its views were prepared in the
        # old one (the window prepares them again; the plot area already redrew the lane)
        # (held weakly: the window holds the overlay, and Qt's wrappers break no cycles)
        self._restyled: weakref.WeakMethod[Callable[[], None]] | None = None
        book().listen(self._on_style_changed)

    def on_restyle(self, method: Callable[[], None]) -> None:
        """Call the bound ``method`` when a compared image lane's style changes."""
        self._restyled = weakref.WeakMethod(method)

    # --- state --------------------------------------------------------------------------

    def lanes(self) -> list[Lane]:
        """The lanes that carry compare marks now."""
        return [lane for m in self._marks.values() if (lane := m.lane()) is not None]

    def ghosts(self, lane: Lane) -> list[pg.PlotDataItem]:
        marks = self._marks.get(id(lane))
        return list(marks.ghosts) if marks is not None else []

    def shade(self, lane: Lane) -> pg.PlotCurveItem | None:
        marks = self._marks.get(id(lane))
        return marks.shade if marks is not None else None

    def label_text(self, lane: Lane) -> str:
        marks = self._marks.get(id(lane))
        return marks.label.text() if marks is not None and marks.label is not None else ""

    # --- marks ----------------------------------------------------------------------------

    def apply(self, lanes: Sequence[Lane], result: CompareResult) -> list[Lane]:
        """Mark the lanes of ``result``'s row among ``lanes`` (the plot area's now); lanes
        marked before and gone are forgotten. Returns the row's lanes."""
        if self.result is not result:
            mode = self.image_mode  # a new result for the same row keeps the view chosen
            self.clear()
            self.result = result
            self.image_mode = mode if result.current else CURRENT
        prefix = result.prefix
        mine = [ln for ln in lanes if ln.key[: len(prefix)] == prefix]
        alive = {id(ln) for ln in mine}
        for key in [k for k, m in self._marks.items() if k not in alive or m.lane() is None]:
            gone = self._marks.pop(key)
            lane = gone.lane()
            if lane is not None:
                self._remove(lane, gone)
        for lane in mine:
            marks = self._marks.get(id(lane)) or self._add(lane, result)
            self._marks[id(lane)] = marks
            self._wrap_menu(lane, marks)
            if lane.kind == "image":
                self._show_mode(lane, marks)
        return mine

    def clear(self) -> None:
        """Take every mark away; image lanes show their current version again."""
        if self.image_mode != CURRENT:
            self.set_image_mode(CURRENT)
        for marks in self._marks.values():
            lane = marks.lane()
            if lane is not None:
                self._remove(lane, marks)
        self._marks = {}
        self.result = None
        self.image_mode = CURRENT

    def set_image_mode(self, mode: str) -> None:
        """Image lanes show the current version, the previous one or the difference."""
        if mode not in IMAGE_MODES:
            return
        self.image_mode = mode
        for marks in self._marks.values():
            lane = marks.lane()
            if lane is not None and lane.kind == "image":
                self._show_mode(lane, marks)

    def _on_style_changed(self, key: str) -> None:
        method = self._restyled() if self._restyled is not None else None
        if method is None or self.result is None or not self.result.current:
            return
        if any(lane.style_key == key and lane.kind == "image" for lane in self.lanes()):
            method()

    def _add(self, lane: Lane, result: CompareResult) -> _Marks:
        marks = _Marks(weakref.ref(lane))
        prev = result.previous.get(lane.key)
        if lane.kind != "image" and prev is not None:
            series = prev.series[:1] if lane.kind == "pitch" else prev.series
            for x, y in series:  # grey, under the current curves
                # empty until added: pyqtgraph would clip the data to no view before
                ghost = make_line_curve(None, None, GHOST_COLOR, False, width=1.6)
                ghost.setZValue(-5)
                lane.vb.addItem(ghost, ignoreBounds=True)
                ghost.setData(x, y)
                marks.ghosts.append(ghost)
        ranges = result.comparison.ranges
        if ranges:
            lo, hi = lane.y_range
            x, y = shade_polyline(ranges, lo, hi)
            shade = pg.PlotCurveItem(
                x, y, pen=None, brush=SHADE_BRUSH, fillLevel=lo, skipFiniteCheck=True
            )
            shade.setZValue(50 if lane.kind == "image" else -10)  # over an opaque picture
            lane.vb.addItem(shade, ignoreBounds=True)
            marks.shade = shade
        # a dark plate under the text: readable over any picture (a white difference too)
        plate = QGraphicsRectItem(lane.vb)
        plate.setBrush(LABEL_PLATE)
        plate.setPen(QPen(Qt.PenStyle.NoPen))
        plate.setZValue(210)
        label = QGraphicsSimpleTextItem(plate)
        font = QFont()
        font.setPointSizeF(8.0)
        label.setFont(font)
        label.setBrush(LABEL_COLOR)
        marks.label = label
        ref = weakref.ref(label)
        vb_ref = weakref.ref(lane.vb)

        def place() -> None:
            item, vb = ref(), vb_ref()
            box = item.parentItem() if item is not None else None
            if item is not None and vb is not None and isinstance(box, QGraphicsRectItem):
                text = item.boundingRect()
                box.setRect(0, 0, text.width() + 8, text.height() + 2)
                item.setPos(4, 1)
                box.setPos(vb.rect().right() - text.width() - 12, 2)

        lane.vb.sigResized.connect(place)
        marks.place = place
        self._set_label(lane, marks)
        return marks

    def _set_label(self, lane: Lane, marks: _Marks) -> None:
        if marks.label is None or self.result is None:
            return
        verdict = self.result.comparison.verdict
        if lane.kind != "image":
            text = f"A/B: grey = previous version · {verdict}"
        else:
            text = f"A/B: {self.image_mode} · {verdict}"
            if self.image_mode == DIFFERENCE and self.result.note:
                text += f" ({self.result.note})"
        marks.label.setText(text)
        if marks.place is not None:
            marks.place()

    def _show_mode(self, lane: Lane, marks: _Marks) -> None:
        result = self.result
        if result is None or lane.image is None:
            return
        view: ImageView | None = None
        if self.image_mode == PREVIOUS and lane.key in result.previous:
            view = result.previous[lane.key].image
        elif self.image_mode == DIFFERENCE:
            view = result.difference.get(lane.key)
        if view is None and lane.key in result.current:
            current = result.current[lane.key]
            # a lane handed newer data since keeps it (the comparison is of the old data)
            if current.version is not None and current.version == lane.version:
                view = current.image
        if marks.shade is not None:  # over a difference picture white must read "equal"
            marks.shade.setVisible(self.image_mode != DIFFERENCE)
        if view is not None:
            if lane.color_bar is not None and view.cmap != lane.image.cmap_name:
                lane.color_bar.setColorMap(color_map(view.cmap))
            show_image(lane.image, view)
            if lane.color_bar is not None:
                lane.color_bar.setLevels(values=view.levels)
        self._set_label(lane, marks)

    def _wrap_menu(self, lane: Lane, marks: _Marks) -> None:
        """The lane's context menu gets the compare entries (image lanes: the three views)."""
        box = lane.view_box
        if getattr(box.menu_for, "compare_overlay", None) is self:
            return
        marks.menu_for = box.menu_for
        ref = weakref.ref(lane)
        own = marks.menu_for

        def menu_for() -> QMenu | None:
            shown = ref()
            if shown is None:
                return None
            menu = (own() if own is not None else None) or lane_menu(shown) or QMenu()
            if shown.kind == "image":
                menu.addSection("Compare with previous")
                group = QActionGroup(menu)
                for mode in IMAGE_MODES:
                    action = QAction(MODE_TITLES[mode], menu)
                    action.setObjectName(f"laneCompare{mode.capitalize()}")
                    action.setCheckable(True)
                    action.setChecked(mode == self.image_mode)
                    action.triggered.connect(lambda _=False, m=mode: self.set_image_mode(m))
                    group.addAction(action)
                    menu.addAction(action)
            return menu

        menu_for.compare_overlay = self  # type: ignore[attr-defined]
        box.menu_for = menu_for

    def _remove(self, lane: Lane, marks: _Marks) -> None:
        for item in [*marks.ghosts, marks.shade]:
            if item is not None and item.getViewBox() is lane.vb:
                lane.vb.removeItem(item)
        if marks.label is not None:
            if marks.place is not None:
                with contextlib.suppress(RuntimeError, TypeError):
                    lane.vb.sigResized.disconnect(marks.place)
            plate = marks.label.parentItem()
            scene = plate.scene() if plate is not None else None
            if plate is not None and scene is not None:
                scene.removeItem(plate)
        if getattr(lane.view_box.menu_for, "compare_overlay", None) is self:
            lane.view_box.menu_for = marks.menu_for
