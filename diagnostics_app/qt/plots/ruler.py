"""The time ruler over the plot area's lanes: m:ss.mmm or bars.beats, the playhead and the hover
position.

A plain widget above the lanes' scroll area, so it stays visible however far the lanes are
scrolled. It draws nothing of its own about time: :class:`~.plot_area.PlotArea` hands it the
visible range and the pixel columns where the lanes' views begin and end
(:meth:`TimeRuler.set_view`), so a time is at the same x in the ruler and in every lane. The
labels follow the zoom (:mod:`diagnostics_app.core.timefmt`): 1:02, 1:02.3, 1:02.345; in
bars.beats mode the ticks are the tempo map's beats and bars, thinned like the lanes' grid.
A left click asks to seek there; the context menu switches the mode (:attr:`modeChanged`).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QColor,
    QContextMenuEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QMenu, QSizePolicy, QWidget

from diagnostics_app.core.timefmt import (
    BEATS_PER_BAR,
    decimals_for,
    format_time,
    time_step,
    time_ticks,
)

RULER_HEIGHT = 24
MIN_LABEL_PX = 64.0  # labelled ticks at least this far apart
MIN_TICK_PX = 6.0
BACKGROUND = QColor(32, 32, 36)
TICK_COLOR = QColor(150, 150, 155)
LABEL_COLOR = QColor(215, 215, 215)
PLAYHEAD_COLOR = QColor(255, 80, 70)
HOVER_COLOR = QColor(255, 255, 255, 140)
MARK_COLOR = QColor(235, 60, 50, 170)  # marked time ranges (compare mode: what differs)
TIME, BARS = "time", "bars"


class TimeRuler(QWidget):
    """Object name ``timeRuler``. :attr:`ticks` holds the labelled ticks last drawn (tests
    read them)."""

    seekRequested = Signal(float)
    modeChanged = Signal(str)  # TIME or BARS, chosen in the context menu

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeRuler")
        self.setFixedHeight(RULER_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click: move the playhead · right-click: m:ss.mmm or bars.beats")
        self._view: tuple[float, float, float, float] | None = None  # t0, t1, px0, px1
        self._mode = TIME
        self._beat_times = np.zeros(0)
        self._playhead = 0.0
        self._hover: float | None = None
        self.bars_enabled = True  # the project has a tempo map: bars.beats may be chosen
        self.ticks: list[tuple[float, str]] = []
        self.marks: tuple[tuple[float, float], ...] = ()  # (start, end) s, drawn as red bands

    # --- state ---------------------------------------------------------------------------

    def set_view(self, t0: float, t1: float, px0: float, px1: float) -> None:
        """The visible time range and the x (in this widget) where it begins and ends."""
        view = (t0, t1, px0, px1)
        if view != self._view:
            self._view = view
            self.update()

    def clear_view(self) -> None:
        self._view = None
        self.ticks = []
        self.update()

    def set_beats(self, beat_times: np.ndarray) -> None:
        """The tempo map's beat starts (the first a bar start); empty: no bars.beats."""
        self._beat_times = beat_times
        self.update()

    @property
    def has_beats(self) -> bool:
        return self._beat_times.shape[0] > 0

    def mode(self) -> str:
        return self._mode

    @property
    def in_bars(self) -> bool:
        """Bars.beats are shown (chosen, and there is a tempo map with beats)."""
        return self._mode == BARS and self.bars_enabled and self.has_beats

    def set_mode(self, mode: str) -> None:
        if mode in (TIME, BARS) and mode != self._mode:
            self._mode = mode
            self.update()

    def set_playhead(self, seconds: float) -> None:
        if seconds != self._playhead:
            self._playhead = seconds
            self.update()

    def set_hover(self, seconds: float | None) -> None:
        if seconds != self._hover:
            self._hover = seconds
            self.update()

    def set_marks(self, ranges: tuple[tuple[float, float], ...]) -> None:
        """Time ranges to mark (red bands under the ticks); empty: none."""
        ranges = tuple((float(a), float(b)) for a, b in ranges)
        if ranges != self.marks:
            self.marks = ranges
            self.update()

    def mark_spans(self) -> list[tuple[float, float]]:
        """The x spans (in this widget) of the marks in view, at least 2 px wide each."""
        if self._view is None:
            return []
        px0, px1 = self._view[2], self._view[3]
        spans = []
        for start, end in self.marks:
            a, b = self.x_of(start), self.x_of(end)
            if a is None or b is None or b < px0 or a > px1:
                continue
            a, b = max(a, px0), min(b, px1)
            if b - a < 2.0:
                a, b = (a + b) / 2 - 1.0, (a + b) / 2 + 1.0
            spans.append((a, b))
        return spans

    def x_of(self, seconds: float) -> float | None:
        if self._view is None:
            return None
        t0, t1, px0, px1 = self._view
        return px0 + (seconds - t0) / (t1 - t0) * (px1 - px0) if t1 > t0 else None

    def time_at(self, x: float) -> float | None:
        if self._view is None:
            return None
        t0, t1, px0, px1 = self._view
        if px1 <= px0 or not px0 <= x <= px1:
            return None
        return t0 + (x - px0) / (px1 - px0) * (t1 - t0)

    # --- ticks ---------------------------------------------------------------------------

    def labelled_ticks(self) -> list[tuple[float, str]]:
        """(time, label) of the ticks to label now, for the mode and the zoom."""
        if self._view is None:
            return []
        t0, t1, px0, px1 = self._view
        pixels = px1 - px0
        if t1 <= t0 or pixels <= 0:
            return []
        if self.in_bars:
            return self._bar_ticks(t0, t1, pixels)
        step = time_step(t1 - t0, pixels, MIN_LABEL_PX)
        decimals = decimals_for(step)
        return [(float(t), format_time(float(t), decimals)) for t in time_ticks(t0, t1, step)]

    def _bar_ticks(self, t0: float, t1: float, pixels: float) -> list[tuple[float, str]]:
        beats = self._beat_times
        i0, i1 = (int(i) for i in np.searchsorted(beats, [t0, t1], side="left"))
        per_px = (t1 - t0) / pixels
        mean_beat = float(np.mean(np.diff(beats))) if beats.shape[0] > 1 else 0.5
        beat_px = mean_beat / per_px
        if beat_px >= MIN_LABEL_PX:  # every beat: bar.beat
            return [(float(beats[i]), f"{i // 4 + 1}.{i % 4 + 1}") for i in range(i0, i1)]
        bar_px = beat_px * BEATS_PER_BAR
        every = 1
        while bar_px * every < MIN_LABEL_PX:
            every *= 2
        return [
            (float(beats[i]), str(i // BEATS_PER_BAR + 1))
            for i in range(i0, i1)
            if i % BEATS_PER_BAR == 0 and (i // BEATS_PER_BAR) % every == 0
        ]

    def _minor_ticks(self) -> np.ndarray:
        assert self._view is not None
        t0, t1, px0, px1 = self._view
        if self.in_bars:
            beats = self._beat_times
            i0, i1 = np.searchsorted(beats, [t0, t1], side="left")
            shown = beats[i0:i1]
            spacing = (px1 - px0) / max(1, shown.shape[0])
            return shown if spacing >= MIN_TICK_PX else shown[:0]
        step = time_step(t1 - t0, px1 - px0, MIN_TICK_PX * 2)
        return time_ticks(t0, t1, step)

    # --- painting and input ----------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), BACKGROUND)
            h = self.height()
            painter.setPen(QPen(TICK_COLOR, 1))
            painter.drawLine(0, h - 1, self.width(), h - 1)
            self.ticks = self.labelled_ticks()
            if self._view is None:
                return
            for a, b in self.mark_spans():
                painter.fillRect(QRectF(a, h / 2, b - a, h / 2 - 1), MARK_COLOR)
            for t in self._minor_ticks():
                x = self.x_of(float(t))
                if x is not None:
                    painter.drawLine(QPointF(x, h - 5), QPointF(x, h - 1))
            font = painter.font()
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            painter.setFont(font)
            metrics = painter.fontMetrics()
            for t, label in self.ticks:
                x = self.x_of(t)
                if x is None:
                    continue
                painter.setPen(QPen(TICK_COLOR, 1))
                painter.drawLine(QPointF(x, h - 11), QPointF(x, h - 1))
                painter.setPen(LABEL_COLOR)
                painter.drawText(QPointF(x + 3, metrics.ascent() + 2), label)
            self._paint_marker(painter, self._hover, HOVER_COLOR, filled=False)
            self._paint_marker(painter, self._playhead, PLAYHEAD_COLOR, filled=True)
        finally:
            painter.end()

    def _paint_marker(
        self, painter: QPainter, seconds: float | None, color: QColor, filled: bool
    ) -> None:
        if seconds is None or self._view is None:
            return
        x = self.x_of(seconds)
        if x is None or not self._view[2] - 1 <= x <= self._view[3] + 1:
            return
        h = float(self.height())
        painter.setPen(QPen(color, 1))
        if filled:  # the playhead: a triangle pointing down at the lanes
            painter.setBrush(color)
            painter.drawPolygon(
                QPolygonF([QPointF(x - 5, h - 9), QPointF(x + 5, h - 9), QPointF(x, h - 1)])
            )
            painter.setBrush(Qt.BrushStyle.NoBrush)
        else:
            painter.drawLine(QPointF(x, 0), QPointF(x, h))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            t = self.time_at(event.position().x())
            if t is not None:
                self.seekRequested.emit(t)
                event.accept()
                return
        super().mousePressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.mode_menu(self)
        menu.exec(event.globalPos())
        menu.deleteLater()

    def mode_menu(self, parent: QWidget) -> QMenu:
        """The menu of the two modes (bars.beats only with a tempo map)."""
        menu = QMenu(parent)
        group = QActionGroup(menu)
        for mode, text in ((TIME, "Time (m:ss.mmm)"), (BARS, "Bars.beats")):
            action = QAction(text, menu)
            action.setCheckable(True)
            action.setChecked(self._mode == mode)
            action.setEnabled(mode == TIME or (self.has_beats and self.bars_enabled))
            action.setData(mode)
            group.addAction(action)
            menu.addAction(action)
            action.triggered.connect(lambda _=False, m=mode: self.modeChanged.emit(m))
        return menu
