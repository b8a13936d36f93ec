"""Where the audio changed, shaded on the lanes of stale rows (issue 13, "in the window").

A stale row whose reasons carry changed time ranges (:attr:`Reason.ranges
<diagnostics_app.core.fingerprint.Reason>`, seconds of the current audio: today the
``audio.content`` reason's, any reason's that carries them later) has those ranges shaded on
its lanes, with a tooltip such as "audio changed 1:02.300–1:03.100 (stale)". When the row is
no longer stale (regenerated, or the file restored) the shading goes, on the lanes already
built: the window hands :attr:`PlotArea.range_shading <.plot_area.PlotArea.range_shading>`
the rows' ranges with every diagnosis (:meth:`RangeShading.set_changes`, beside the lanes'
state marks), the plot area attaches the lanes it places after each layout, and the lane
stack says when the view moved.

Looks: the stale colour (amber, the lanes' stale titles and borders), translucent under the
curves of line lanes; over an image a tint alone would vanish in the colour map's own yellows
and greens, so image lanes get it hatched (the picture shows between the hatch lines); both
have their edges drawn as lines. The plot canvas is dark in every application theme.

Cheap painting: one rect item per drawn span, only the spans near the view (a view's width
either side, so a pan shows them before the next refresh), ranges closer than a pixel drawn as
one span, and at most :data:`MAX_SPANS` per lane (the narrowest gaps merged first). An
insertion near the start is one range to the end; thousands of small ones stay a few hundred
items.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QLineF, QObject, QRectF, Qt, QTimer, Slot
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QStyleOptionGraphicsItem, QWidget

from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.fingerprint import AUDIO_CONTENT
from diagnostics_app.core.timefmt import format_time
from diagnostics_app.qt.plots.features import STALE_COLOR
from diagnostics_app.qt.plots.lanes import Lane
from diagnostics_app.qt.plots.layout import LaneStack

REFRESH_MS = 30  # at most one redraw per this many ms while zooming/panning
MAX_SPANS = 200  # drawn spans per lane at most
MIN_SPAN_PX = 2.0  # a drawn span is at least this wide (a one-sample change stays visible)
_AMBER = QColor(STALE_COLOR)
FILL_COLOR = QColor(_AMBER.red(), _AMBER.green(), _AMBER.blue(), 55)  # under curves
HATCH_COLOR = QColor(_AMBER.red(), _AMBER.green(), _AMBER.blue(), 210)  # over images
IMAGE_FILL_COLOR = QColor(_AMBER.red(), _AMBER.green(), _AMBER.blue(), 40)
EDGE_COLOR = QColor(_AMBER.red(), _AMBER.green(), _AMBER.blue(), 230)
CURVE_Z = -15.0  # over the beat grid (-20, -19), under the curves (0)
IMAGE_Z = 40.0  # over the (opaque) picture, under the time selection (50) and playhead (100)

Prefix = tuple[object, ...]


@dataclass(frozen=True)
class Changed:
    """One changed time range of a stale row (seconds) and what changed there ("audio" for
    ``audio.content``, else the reason's input)."""

    start: float
    end: float
    what: str = "audio"


def row_changes(row: Row) -> tuple[Changed, ...]:
    """The changed ranges of ``row`` to shade, sorted by start: those of every reason that
    carries ranges, while the row is stale (a queued or running row is being redone)."""
    if row.state != "stale":
        return ()
    out = [
        Changed(float(a), float(b), "audio" if r.input == AUDIO_CONTENT else r.input)
        for r in row.reasons
        if r.ranges
        for a, b in r.ranges
    ]
    return tuple(sorted(out, key=lambda c: (c.start, c.end)))


@dataclass(frozen=True)
class Span:
    """What one item draws: ``start``..``end`` seconds (merged, clipped near the view, at
    least :data:`MIN_SPAN_PX` wide) and its tooltip, which names the ranges it covers."""

    start: float
    end: float
    tip: str


def span_tip(changes: Sequence[Changed]) -> str:
    """ "audio changed 1:02.300–1:03.100 (stale)"; for merged ranges their count and extent."""
    whats = ", ".join(sorted({c.what for c in changes}))
    first, last = changes[0].start, max(c.end for c in changes)
    if len(changes) == 1:
        return f"{whats} changed {format_time(first)}–{format_time(last)} (stale)"
    return (
        f"{whats} changed in {len(changes)} ranges, "
        f"{format_time(first)}–{format_time(last)} (stale)"
    )


def drawn_spans(
    changes: Sequence[Changed], x0: float, x1: float, pixels: float, limit: int = MAX_SPANS
) -> list[Span]:
    """The spans to draw for ``changes`` (sorted by start) in a view of ``x0``..``x1`` seconds
    ``pixels`` wide: only those within a view's width of it, ranges less than a pixel apart
    as one, at most ``limit`` (the narrowest gaps closed first)."""
    if not changes or x1 <= x0 or limit < 1:
        return []
    px = (x1 - x0) / max(pixels, 1.0)
    lo, hi = x0 - (x1 - x0), x1 + (x1 - x0)
    starts = np.fromiter((c.start for c in changes), np.float64, len(changes))
    ends = np.fromiter((c.end for c in changes), np.float64, len(changes))
    near = np.flatnonzero((ends >= lo) & (starts <= hi))
    if near.size == 0:
        return []
    s, reach = starts[near], np.maximum.accumulate(ends[near])
    gaps = s[1:] - reach[:-1]  # from the furthest end so far to the next start
    threshold = px
    if np.count_nonzero(gaps > threshold) >= limit:
        threshold = max(px, float(np.sort(gaps)[gaps.size - limit]))
    breaks = np.flatnonzero(gaps > threshold)
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [near.size - 1]))
    spans = []
    for i, j in zip(firsts.tolist(), lasts.tolist(), strict=True):
        # clipped near the view: a range of an hour is not an item millions of pixels wide
        a, b = max(float(s[i]), lo), min(float(reach[j]), hi)
        if b - a < MIN_SPAN_PX * px:
            mid = (a + b) / 2
            a, b = mid - MIN_SPAN_PX * px / 2, mid + MIN_SPAN_PX * px / 2
        spans.append(Span(a, b, span_tip([changes[k] for k in near[i : j + 1].tolist()])))
    return spans


class ShadeItem(QGraphicsRectItem):
    """One drawn span in a lane's view (data coordinates): the fill, hatched over images,
    and its two edges as lines (the top and bottom are the lane's own)."""

    def __init__(self, hatched: bool) -> None:
        super().__init__()
        self.hatched = hatched
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setZValue(IMAGE_Z if hatched else CURVE_Z)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        rect = self.rect()
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.fillRect(rect, IMAGE_FILL_COLOR if self.hatched else FILL_COLOR)
        if self.hatched:  # pattern brushes are cosmetic: the hatch is in screen pixels
            painter.fillRect(rect, QBrush(HATCH_COLOR, Qt.BrushStyle.BDiagPattern))
        pen = QPen(EDGE_COLOR, 1.0)
        pen.setCosmetic(True)
        painter.setPen(pen)
        for x in (rect.left(), rect.right()):
            painter.drawLine(QLineF(x, rect.top(), x, rect.bottom()))
        painter.restore()


class RangeShading(QObject):
    """The changed ranges by lane key prefix, and their items in the attached lanes (the
    ``stack``'s placed lanes, attached by the plot area after each layout); the items follow
    the stack's view changes, at most one redraw per :data:`REFRESH_MS`."""

    def __init__(self, stack: LaneStack) -> None:
        super().__init__(stack)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        stack.viewChanged.connect(self._schedule)
        self._changes: dict[Prefix, tuple[Changed, ...]] = {}
        self._lanes: dict[int, Lane] = {}  # attached, by id
        self._items: dict[int, list[ShadeItem]] = {}  # drawn in each attached lane
        self._drawn: dict[int, tuple[object, ...]] = {}  # what each lane's items show

    # --- state ----------------------------------------------------------------------------

    def changes(self, lane: Lane) -> tuple[Changed, ...]:
        """The changed ranges shaded on ``lane`` (its row's: the first prefix it matches)."""
        for prefix, changes in self._changes.items():
            if lane.key[: len(prefix)] == prefix:
                return changes
        return ()

    def items(self, lane: Lane) -> list[ShadeItem]:
        """The items drawn in ``lane`` now (tests look at them)."""
        return list(self._items.get(id(lane), ()))

    # --- what the plot area calls ------------------------------------------------------------

    def set_changes(self, changes: Mapping[Prefix, Sequence[Changed]]) -> None:
        """The rows' changed ranges now, by lane key prefix (rows without any may be left
        out): the attached lanes follow at once; lanes placed later get theirs on attach."""
        self._changes = {p: tuple(c) for p, c in changes.items() if c}
        self.refresh()

    def attach(self, lanes: Sequence[Lane]) -> None:
        """Shade in ``lanes`` (the placed ones): lanes gone lose their items."""
        wanted = {id(lane): lane for lane in lanes}
        for key in [k for k in self._lanes if k not in wanted]:
            lane = self._lanes.pop(key)
            self._drawn.pop(key, None)
            for item in self._items.pop(key, []):
                lane.vb.removeItem(item)
            with contextlib.suppress(RuntimeError, TypeError):  # (not connected any more)
                lane.vb.sigYRangeChanged.disconnect(self._schedule)
        for key, lane in wanted.items():
            if key not in self._lanes:
                self._lanes[key] = lane
                lane.vb.sigYRangeChanged.connect(self._schedule)  # a new fixed y range
        self.refresh()

    @Slot()
    def _schedule(self) -> None:
        # a throttle, not a debounce: while panning, one redraw every REFRESH_MS (the items
        # are in data coordinates: they move with the view between redraws)
        if not self._timer.isActive():
            self._timer.start()

    @property
    def refresh_pending(self) -> bool:
        """A view change waits for its (rate-limited) redraw."""
        return self._timer.isActive()

    @Slot()
    def refresh(self) -> None:
        """Draw each attached lane's spans for the view now (only lanes whose spans or
        extent changed are touched): after a change of ranges, lanes or view."""
        self._timer.stop()
        for key, lane in self._lanes.items():
            (x0, x1), (y0, y1) = lane.vb.viewRange()
            changes = self.changes(lane)
            drawn = (changes, x0, x1, lane.vb.width(), y0, y1, lane.kind == "image")
            if drawn == self._drawn.get(key):
                continue
            self._drawn[key] = drawn
            spans = drawn_spans(changes, float(x0), float(x1), float(lane.vb.width()))
            self._draw(lane, spans, (float(y0), float(y1)))

    def _draw(self, lane: Lane, spans: list[Span], y: tuple[float, float]) -> None:
        items = self._items.setdefault(id(lane), [])
        hatched = lane.kind == "image"
        while len(items) > len(spans) or (items and items[-1].hatched != hatched):
            lane.vb.removeItem(items.pop())
        for i, span in enumerate(spans):
            if i == len(items):
                item = ShadeItem(hatched)
                lane.vb.addItem(item, ignoreBounds=True)
                items.append(item)
            item = items[i]
            rect = QRectF(span.start, y[0], span.end - span.start, y[1] - y[0])
            if item.rect() != rect:
                item.setRect(rect)
            if item.toolTip() != span.tip:
                item.setToolTip(span.tip)
