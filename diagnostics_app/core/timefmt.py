"""Time as people read it: ``m:ss.mmm`` with a precision that follows the zoom, and bar.beat
positions on a tempo map's beat grid.

One home for these rules: the plot area's ruler and crosshair readout, the playhead label and
any front end that prints a time use them. Bars are of four beats, as the plot grid assumes
(:meth:`~diagnostics_app.core.tempo.TempoMap.beats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BEATS_PER_BAR = 4
# tick steps of a time ruler, seconds: 1-2-5 below a second, then minute-friendly steps
TIME_STEPS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
)  # fmt: skip


def format_time(seconds: float, decimals: int = 3) -> str:
    """``m:ss`` and ``decimals`` (0..3) digits of the second: 1:02, 1:02.3, 1:02.345 (minutes
    unbounded; negative times are shown as 0)."""
    decimals = min(max(int(decimals), 0), 3)
    scale = 10**decimals
    units = max(0, round(seconds * scale))
    minutes, rest = divmod(units, 60 * scale)
    whole, frac = divmod(rest, scale)
    return f"{minutes}:{whole:02d}" + (f".{frac:0{decimals}d}" if decimals else "")


def decimals_for(step: float) -> int:
    """Digits of the second that tell apart times ``step`` seconds apart (0..3)."""
    if step <= 0:
        return 3
    return min(3, max(0, math.ceil(-math.log10(step) - 1e-9)))


def time_step(span: float, pixels: float, min_px: float) -> float:
    """The smallest of :data:`TIME_STEPS` whose ticks over ``span`` seconds drawn on
    ``pixels`` pixels are at least ``min_px`` apart."""
    if span <= 0 or pixels <= 0:
        return TIME_STEPS[-1]
    per_px = span / pixels
    return next((s for s in TIME_STEPS if s / per_px >= min_px), TIME_STEPS[-1])


def time_ticks(x0: float, x1: float, step: float) -> np.ndarray:
    """Multiples of ``step`` in [x0, x1] (computed from integers, so no drift)."""
    if step <= 0 or x1 < x0:
        return np.zeros(0)
    i0, i1 = math.ceil(x0 / step - 1e-9), math.floor(x1 / step + 1e-9)
    return np.arange(i0, i1 + 1, dtype=np.float64) * step


@dataclass(frozen=True)
class BarBeat:
    """A position on the beat grid: 1-based bar and beat, and the fraction of the beat."""

    bar: int
    beat: int
    fraction: float

    def text(self, fraction: bool = False) -> str:
        """``bar.beat`` (``fraction``: with the beat's hundredths, ``12.3.50``)."""
        base = f"{self.bar}.{self.beat}"
        return f"{base}.{min(99, int(self.fraction * 100)):02d}" if fraction else base


def bar_beat(seconds: float, beat_times: np.ndarray) -> BarBeat | None:
    """Where ``seconds`` falls on the grid of ``beat_times`` (sorted beat starts, the first a
    bar start); None before the first beat or with no beats. After the last beat the last
    beat's length goes on."""
    n = beat_times.shape[0]
    if n == 0 or seconds < beat_times[0]:
        return None
    i = int(np.searchsorted(beat_times, seconds, side="right")) - 1
    start = float(beat_times[i])
    if i + 1 < n:
        length = float(beat_times[i + 1]) - start
    else:
        length = start - float(beat_times[i - 1]) if i > 0 else 0.0
    frac = (seconds - start) / length if length > 0 else 0.0
    if frac >= 1.0 and length > 0:  # past the end of the grid: count on at the last tempo
        extra = int(frac)
        i, frac = i + extra, frac - extra
    bar, beat = divmod(i, BEATS_PER_BAR)
    return BarBeat(bar + 1, beat + 1, min(max(frac, 0.0), 1.0))
