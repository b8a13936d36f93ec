"""The context menu of an image lane: frequency scale, colour range and colour map.

A right click on a spectrogram, mel or chroma lane opens it. A choice goes to the style book
(:mod:`.lane_style`): it is remembered in the settings at once and every lane of the same
calculator and feature is drawn again in it. Dragging the ends of the lane's colour bar sets
the colour range the same way (:func:`set_range`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QMenu,
    QWidget,
)

from diagnostics_app.qt.plots.images import default_scale, scales_of
from diagnostics_app.qt.plots.lane_style import (
    COLOR_MAP_TITLES,
    COLOR_MAPS,
    LaneStyle,
    Scale,
    book,
)

if TYPE_CHECKING:
    from diagnostics_app.qt.plots.features import LaneData
    from diagnostics_app.qt.plots.lanes import Lane

SCALE_TITLES: dict[Scale, str] = {
    "log": "Log frequency",
    "linear": "Linear frequency",
    "native": "Mel bands (as computed)",
}
# colour ranges offered as presets, dB below the top (the ceiling is the data's top)
RANGE_PRESETS_DB = (60.0, 80.0, 100.0, 120.0)


def lane_menu(lane: Lane, parent: QWidget | None = None) -> QMenu | None:
    """The lane's menu (None: not an image lane with a style)."""
    source = lane.source
    if source is None or lane.kind != "image" or not lane.style_key:
        return None
    key = lane.style_key
    style = book().get(key)
    menu = QMenu(parent)
    menu.setObjectName("laneMenu")
    menu.setToolTipsVisible(True)
    scales = scales_of(source.meta)
    if len(scales) > 1:
        current = style.scale if style.scale in scales else default_scale(source.meta)
        group = QActionGroup(menu)
        for scale in scales:
            action = _check(menu, SCALE_TITLES[scale], group, current == scale)
            action.triggered.connect(lambda _=False, s=scale: _set(key, style.with_scale(s)))
        menu.addSeparator()
    ranges = menu.addMenu("Colour range")
    ranges.setObjectName("laneRangeMenu")
    auto = ranges.addAction("Automatic (from the data)")
    auto.triggered.connect(lambda: _set(key, replace(style, floor=None, ceiling=None)))
    top = _ceiling(lane)
    for span in RANGE_PRESETS_DB:
        action = ranges.addAction(f"{span:g} dB below the top ({top - span:g} … {top:g})")
        action.triggered.connect(lambda _=False, s=span: set_range(lane, top - s, top))
    custom = ranges.addAction("Floor and ceiling…")
    custom.triggered.connect(lambda: _ask_range(lane))
    maps = menu.addMenu("Colour map")
    maps.setObjectName("laneColourMapMenu")
    group = QActionGroup(maps)
    for name in COLOR_MAPS:
        action = _check(maps, COLOR_MAP_TITLES.get(name, name), group, style.cmap == name)
        action.triggered.connect(lambda _=False, n=name: _set(key, replace(style, cmap=n)))
    menu.addSeparator()
    reset = menu.addAction("Reset lane settings")
    reset.triggered.connect(lambda: _set(key, LaneStyle()))
    return menu


def follow_style(lane: Lane, data: LaneData) -> None:
    """An image lane with a style key follows the style book and offers its menu."""
    lane.style_key = data.style_key
    lane.source = data.source
    if data.kind == "image" and data.style_key:
        lane.listen_to_styles()
        ref = weakref.ref(lane)  # no cycle through Qt: a dropped lane must go

        def menu() -> QMenu | None:
            shown = ref()
            return lane_menu(shown) if shown is not None else None

        lane.view_box.menu_for = menu


def levels_dragged(lane: Lane) -> Callable[[object], None]:
    """Dragging the colour bar's ends sets the lane's colour range (remembered)."""
    ref = weakref.ref(lane)  # the bar's connection must not keep the lane alive

    def done(bar: object) -> None:
        lane = ref()
        if (
            lane is not None
            and lane.color_bar is not None
            and lane.style_key
            and lane.placeholder is None
        ):
            lo, hi = (float(v) for v in lane.color_bar.levels())
            set_range(lane, lo, hi)

    return done


def set_range(lane: Lane, floor: float, ceiling: float) -> None:
    """The lane's colour range (remembered for its style key)."""
    if ceiling > floor and lane.style_key:
        style = book().get(lane.style_key)
        _set(lane.style_key, replace(style, floor=round(floor, 2), ceiling=round(ceiling, 2)))


def _set(key: str, style: LaneStyle) -> None:
    book().set(key, style)


def _check(menu: QMenu, title: str, group: QActionGroup, checked: bool) -> QAction:
    action = menu.addAction(title)
    action.setCheckable(True)
    action.setChecked(checked)
    group.addAction(action)
    return action


def _ceiling(lane: Lane) -> float:
    """The top of the lane's automatic colour range (0 dB for a spectrogram)."""
    if lane.color_bar is not None:
        return float(round(max(lane.color_bar.levels()), 1))
    return 0.0


def _ask_range(lane: Lane) -> None:
    """A small dialog for the floor and ceiling."""
    lo, hi = (float(v) for v in lane.color_bar.levels()) if lane.color_bar else (-80.0, 0.0)
    dialog = QDialog()
    dialog.setWindowTitle("Colour range")
    form = QFormLayout(dialog)
    spins = []
    for label, value in (("Floor", lo), ("Ceiling", hi)):
        spin = QDoubleSpinBox(dialog)
        spin.setRange(-1e6, 1e6)
        spin.setDecimals(1)
        spin.setValue(value)
        form.addRow(label, spin)
        spins.append(spin)
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dialog
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)
    if dialog.exec() == QDialog.DialogCode.Accepted:
        set_range(lane, spins[0].value(), spins[1].value())
