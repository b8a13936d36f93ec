"""Moving about the time axis: navigation keys, click-to-seek and the tempo (beat) grid.

What a key, a click or the tempo map asks of the plot area, computed without touching it:
:func:`key_time_range` turns a key into the time range to show, :func:`clicked_time` a scene
click into the time to seek to, and :class:`BeatGrid` a tempo map into the beat and bar lines
visible in a range. :class:`~diagnostics_app.qt.plots.plot_area.PlotArea` applies the answers
(and moves the playhead, which every lane draws). Kept apart so the arithmetic of navigation
can be read, and changed, without the lane and layout bookkeeping around it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from PySide6.QtCore import Qt

from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.qt.plots.lanes import Lane

MIN_GRID_SPACING_PX = 6.0
ZOOM_STEP = 1.5
PAN_FRACTION = 0.1


def key_time_range(
    key: int, shift: bool, current: tuple[float, float], duration: float
) -> tuple[float, float] | None:
    """The time range a navigation key asks for (None: not a navigation key): ``+``/``=``
    and ``-`` zoom about the centre, arrows pan (Shift: further), Home/End jump to an end
    keeping the span, ``0`` shows everything."""
    x0, x1 = current
    span = x1 - x0
    if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
        return _zoomed(current, 1 / ZOOM_STEP)
    if key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
        return _zoomed(current, ZOOM_STEP)
    if key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
        step = span * (0.5 if shift else PAN_FRACTION)
        step = -step if key == Qt.Key.Key_Left else step
        return x0 + step, x1 + step
    if key == Qt.Key.Key_Home:
        return 0.0, span
    if key == Qt.Key.Key_End:
        return duration - span, duration
    if key == Qt.Key.Key_0:
        return 0.0, max(duration, 1e-3)
    return None


def _zoomed(current: tuple[float, float], factor: float) -> tuple[float, float]:
    x0, x1 = current
    centre, half = (x0 + x1) / 2, (x1 - x0) * factor / 2
    return centre - half, centre + half


def _plain_left_click(event: object) -> bool:
    button = getattr(event, "button", None)
    return button is not None and button() == Qt.MouseButton.LeftButton and not event.double()  # type: ignore[attr-defined]


def clicked_lane(event: object, lanes: Iterable[Lane]) -> Lane | None:
    """The lane (title and axes included) under a plain left click, or None."""
    if not _plain_left_click(event):
        return None
    pos = event.scenePos()  # type: ignore[attr-defined]
    return next((lane for lane in lanes if lane.plot.sceneBoundingRect().contains(pos)), None)


def clicked_time(event: object, lanes: Iterable[Lane], duration: float) -> float | None:
    """The time under a left click on a lane (clamped to [0, duration]); None for any other
    click, a double click, or a click outside every lane."""
    if not _plain_left_click(event):
        return None
    pos = event.scenePos()  # type: ignore[attr-defined]
    for lane in lanes:
        if lane.vb.sceneBoundingRect().contains(pos):
            t = float(lane.vb.mapSceneToView(pos).x())
            return min(max(t, 0.0), duration)
    return None


class BeatGrid:
    """The beat times of a tempo map over a duration, and the lines of them visible in a
    range (the last answer is kept: a repaint without a view change asks again)."""

    def __init__(self) -> None:
        self._for: tuple[TempoMap | None, float] | None = None  # (tempo, duration)
        self._beat_times = np.zeros(0)
        self._bar_flags = np.zeros(0, bool)
        self._bar_numbers = np.zeros(0, np.int64)
        self._visible: tuple[np.ndarray, np.ndarray] | None = None  # visible (beats, bars)
        self._visible_key: tuple[object, ...] = ()

    def set_tempo(self, tempo: TempoMap | None, duration: float) -> None:
        """The beat times of ``tempo`` over ``duration`` (recomputed only when either
        changed)."""
        if (tempo, duration) == self._for:
            return
        self._for = (tempo, duration)
        try:
            beats = list(tempo.beats(duration)) if tempo is not None else []
        except DiagnosticsError:  # a tempo too fast to draw: no grid (its rows say why)
            beats = []
        self._beat_times = np.array([t for t, _ in beats], np.float64)
        self._bar_flags = np.array([bar for _, bar in beats], bool)
        self._bar_numbers = np.cumsum(self._bar_flags) - 1

    @property
    def beat_times(self) -> np.ndarray:
        """Every beat start of the tempo map over the duration (the first a bar start)."""
        return self._beat_times

    def visible(self, x0: float, x1: float, pixels: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`lines` of the range, the same arrays again while nothing changed (so the
        lanes skip handing their curves the same data)."""
        key = (id(self._beat_times), x0, x1, pixels)  # the beat times are replaced, not edited
        if self._visible is None or self._visible_key != key:
            self._visible = self.lines(x0, x1, pixels)
            self._visible_key = key
        return self._visible

    def lines(self, x0: float, x1: float, pixels: float) -> tuple[np.ndarray, np.ndarray]:
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
