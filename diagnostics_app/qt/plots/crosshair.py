"""The crosshair: what is under the mouse in a lane, as text for the status bar, and a vertical
hover line drawn across every lane.

:func:`lane_readout` reads a lane at a time and height: a waveform's level, the values of a
line lane's curves at that time (a steps lane's held value), a pitch lane's f0 (or
"unvoiced") and confidence, an image's bin (frequency and note, band, or pitch class) and its
level. :class:`HoverLines` keeps one thin line per lane at the hovered time.
:class:`~.plot_area.PlotArea` finds the lane under the mouse and says the time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt

from diagnostics_app.core.calculators.spectral import PITCH_CLASSES
from diagnostics_app.core.timefmt import bar_beat, format_time
from diagnostics_app.qt.plots.lanes import Lane

# dashed: told apart from the beat grid's solid lines
HOVER_PEN = pg.mkPen((255, 255, 255, 170), width=1, style=Qt.PenStyle.DashLine)
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class LaneMeaning:
    """What a feature lane's numbers are: bin centres and their unit, the value unit."""

    bins: tuple[float, ...] = ()
    bin_unit: str = ""
    unit: str = ""


def note_name(hz: float) -> str:
    """The nearest equal-tempered note (A4 = 440 Hz) and the cents off it: ``A3 +12c``."""
    if not hz > 0 or not math.isfinite(hz):
        return ""
    midi = 69 + 12 * math.log2(hz / 440.0)
    nearest = round(midi)
    cents = round((midi - nearest) * 100)
    name = f"{PITCH_CLASSES[nearest % 12]}{nearest // 12 - 1}"
    return f"{name} {cents:+d}c" if cents else name


def format_hz(hz: float) -> str:
    return f"{hz / 1000:.2f} kHz" if hz >= 1000 else f"{hz:.1f} Hz"


def plain_title(lane: Lane) -> str:
    return _TAGS.sub("", lane.title).split("  (")[0].strip()


def _value(v: float, unit: str) -> str:
    if not math.isfinite(v):
        return "—"
    text = f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return f"{text} {unit}".rstrip() if unit and unit != "value" else text


def _at(x: np.ndarray, y: np.ndarray, t: float, hold: bool) -> float | None:
    """The curve's value at ``t``: the nearest point, or (``hold``) the last one at or before."""
    n = min(x.shape[0], y.shape[0])
    if n == 0:
        return None
    i = int(np.searchsorted(x[:n], t, side="right"))
    if hold:
        return float(y[max(0, i - 1)])
    lo, hi = max(0, i - 1), min(n - 1, i)
    return float(y[lo] if abs(t - x[lo]) <= abs(x[hi] - t) else y[hi])


def readout_text(
    lane: Lane, meaning: LaneMeaning | None, scene_pos: QPointF, beats: np.ndarray | None
) -> str:
    """The status bar's readout for the mouse at ``scene_pos`` over ``lane``: the time (and
    bar.beat when ``beats``, the ruler being in bars), and the lane's value there."""
    at = lane.vb.mapSceneToView(scene_pos)
    t = float(at.x())
    parts = [format_time(t)]
    position = bar_beat(t, beats) if beats is not None else None
    if position is not None:
        parts.append(f"bar {position.text(fraction=True)}")
    parts.append(lane_readout(lane, meaning, t, float(at.y()), scene_pos))
    return "  ·  ".join(parts)


def lane_readout(
    lane: Lane, meaning: LaneMeaning | None, t: float, y: float, scene_pos: QPointF
) -> str:
    """``title: value`` of what is under the mouse in ``lane`` at time ``t``, height ``y``."""
    title = plain_title(lane)
    if lane.kind == "waveform":
        db = 20 * math.log10(abs(y)) if y else -math.inf
        level = f"{db:.1f} dBFS" if math.isfinite(db) else "-inf dBFS"
        return f"{title}: {y:+.3f} FS ({level})"
    if lane.image is not None:
        return f"{title}: {_image_readout(lane, meaning, y, scene_pos)}"
    values = []
    for curve in lane.curves:
        x_data, y_data = curve.xData, curve.yData
        if x_data is None or y_data is None:
            continue
        v = _at(np.asarray(x_data), np.asarray(y_data), t, hold=lane.kind == "steps")
        if v is not None:
            values.append(v)
    if not values:
        return f"{title}: no data"
    if lane.kind == "pitch":
        f0 = values[0]
        voiced = math.isfinite(f0) and f0 > 0
        text = f"f0 {format_hz(f0)} ({note_name(f0)})" if voiced else "unvoiced"
        if len(values) > 1 and math.isfinite(values[1]):
            text += f" · confidence {values[1]:.2f}"
        return f"{title}: {text}"
    return f"{title}: " + ", ".join(_value(v, lane.y_label) for v in values)


def _image_readout(lane: Lane, meaning: LaneMeaning | None, y: float, scene_pos: QPointF) -> str:
    image = lane.image
    assert image is not None
    data = image.image
    if data is None or data.ndim != 2:
        return "no data"
    at = image.mapFromScene(scene_pos)
    row, col = math.floor(at.y()), math.floor(at.x())
    rows, cols = data.shape
    if not (0 <= row < rows and 0 <= col < cols):
        return "—"
    unit = meaning.unit if meaning is not None else ""
    level = _value(float(data[row, col]), unit)
    return f"{_bin_text(lane, meaning, row, rows, y)} · {level}"


def _bin_text(lane: Lane, meaning: LaneMeaning | None, row: int, rows: int, y: float) -> str:
    """The bin of image row ``row``: its centre frequency and note, its pitch class, or its
    number (the lane's y when the rows are not the stored bins, e.g. resampled)."""
    bins = meaning.bins if meaning is not None else ()
    bin_unit = meaning.bin_unit if meaning is not None else ""
    if bin_unit == "pitch class":
        return PITCH_CLASSES[int(row * 12 / rows) % 12] if rows else "—"
    if len(bins) == rows:
        if bin_unit == "Hz":
            hz = float(bins[row])
            return f"{format_hz(hz)} ({note_name(hz)})" if hz > 0 else format_hz(hz)
        return f"{bins[row]:g} {bin_unit}".rstrip()
    # resampled rows: the lane's y is the frequency, in log10(Hz) on a log scale
    scale = getattr(lane.image, "scale", "native")
    hz = 10.0**y if scale == "log" else y if scale == "linear" or lane.y_label == "Hz" else 0.0
    if hz > 0 and math.isfinite(hz):
        return f"{format_hz(hz)} ({note_name(hz)})"
    return f"bin {row}"


class HoverLines:
    """A thin vertical line at the hovered time in every attached lane (hidden: None)."""

    def __init__(self) -> None:
        self._lines: dict[int, tuple[Lane, pg.InfiniteLine]] = {}
        self._at: float | None = None

    def attach(self, lanes: Sequence[Lane]) -> None:
        wanted = {id(lane): lane for lane in lanes}
        for key in [k for k in self._lines if k not in wanted]:
            lane, line = self._lines.pop(key)
            lane.vb.removeItem(line)
        for key, lane in wanted.items():
            if key not in self._lines:
                line = pg.InfiniteLine(pos=0.0, angle=90, movable=False, pen=HOVER_PEN)
                line.setZValue(90)  # under the playhead
                line.setVisible(self._at is not None)
                lane.vb.addItem(line, ignoreBounds=True)
                self._lines[key] = (lane, line)
        self.set_time(self._at)

    def set_time(self, seconds: float | None) -> None:
        self._at = seconds
        for _, line in self._lines.values():
            line.setVisible(seconds is not None)
            if seconds is not None and line.value() != seconds:
                line.setValue(seconds)

    def time(self) -> float | None:
        return self._at
