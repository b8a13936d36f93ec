"""Waveform lanes: a min/max peaks pyramid and what one view of it hands to pyqtgraph.

An hour at 48 kHz is 173 M samples, and even its 64-sample peaks are 2.7 M blocks per channel:
far too many to hand a curve. :class:`PeaksPyramid` keeps coarser min/max levels (each 16 times
shorter, :func:`~diagnostics_app.core.calculators.temporal.peaks_pyramid`), and
:meth:`PeaksPyramid.band` picks, for a visible time range and a width in pixels, a decimation
``d`` (a power of two) giving 1–2 blocks per pixel: the stored level ``16**L <= d``, then a
further min/max reduction by ``d / 16**L`` (2, 4 or 8) of only the visible slice (plus a margin,
so a pan does not uncover blank space before the next update). Block boundaries are aligned to
the decimation, so panning does not make the outline shimmer.

Each block is two points. At one block per pixel or more they are the ends of a vertical stroke
(``connect="pairs"``: cheap ``drawLines``, and the strokes fill the band with no polygon fill to
rasterise); zoomed in further, where blocks are wider than a pixel, the blocks become a closed
outline (max edge left to right, min edge back) drawn as a filled polygon. Either way a curve
gets 2–4 points per pixel column when zoomed out, and fewer when zoomed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyqtgraph as pg

from diagnostics_app.core.calculators.temporal import peaks_pyramid

LEVEL_FACTOR = 16  # blocks per block from one stored pyramid level to the next
MAX_BLOCKS_PER_PIXEL = 2.0  # decimate to the smallest power of two giving at most this many
MARGIN = 0.25  # of the visible span, on each side, also handed to the curve

WAVE_COLOR = (92, 165, 230)  # strokes and fill alike: zooming does not change the colour

BandMode = Literal["lines", "fill"]


@dataclass(frozen=True)
class Band:
    """What one view hands a waveform lane's curve: x and one y array per channel."""

    mode: BandMode  # "lines": vertical min-max strokes; "fill": closed outline, filled
    decimation: int  # level-0 blocks per block handed over (a power of two)
    level: int  # stored pyramid level the blocks come from
    step: float  # seconds per block handed over
    first: float  # start time of the first block
    blocks: int  # blocks handed over
    x: np.ndarray  # (2 * blocks,)
    ys: tuple[np.ndarray, ...]  # per channel (2 * blocks,)


class PeaksPyramid:
    """Min/max levels of a ``(blocks, channels, 2)`` peaks array, ``step`` seconds per block."""

    def __init__(self, peaks: np.ndarray, step: float) -> None:
        if peaks.ndim != 3 or peaks.shape[2] != 2:
            raise ValueError(f"peaks must be (blocks, channels, 2), got shape {peaks.shape}")
        if not step > 0:
            raise ValueError(f"peaks step must be > 0 seconds, got {step}")
        base = np.ascontiguousarray(peaks, dtype=np.float32)
        if base.size and not np.isfinite(base).all():
            base = np.nan_to_num(base, nan=0.0, posinf=1.0, neginf=-1.0)
        self.levels: list[np.ndarray] = peaks_pyramid(base, factor=LEVEL_FACTOR, min_blocks=256)
        self.step: float = step
        self.channels: int = int(base.shape[1])
        self.blocks: int = int(base.shape[0])
        self.duration: float = base.shape[0] * step
        self.peak: float = float(max(base.max(), -base.min())) if base.size else 0.0

    def decimation_for(self, span: float, pixels: float) -> int:
        """The smallest power of two ``d`` such that ``span`` seconds of blocks of ``d``
        stored blocks are at most ``MAX_BLOCKS_PER_PIXEL`` per pixel."""
        blocks = span / self.step
        budget = MAX_BLOCKS_PER_PIXEL * max(pixels, 1.0)
        if blocks <= budget:
            return 1
        return 1 << math.ceil(math.log2(blocks / budget) - 1e-12)

    def band(self, start: float, end: float, pixels: float) -> Band:
        """Blocks between ``start`` and ``end`` seconds (plus the margin) at the decimation
        :meth:`decimation_for` picks for ``pixels`` pixels."""
        span = max(end - start, 1e-12)
        d = self.decimation_for(span, pixels)
        level = min(int(math.log2(d)) // 4, len(self.levels) - 1)
        data = self.levels[level]
        r = d // LEVEL_FACTOR**level  # further reduction of the slice
        unit = self.step * LEVEL_FACTOR**level  # seconds per block of the stored level
        margin = span * MARGIN
        first = max(0, math.floor((start - margin) / (unit * r))) * r
        stop = min(data.shape[0], (math.ceil((end + margin) / (unit * r)) + 1) * r)
        stop = max(stop, first)
        lows, highs = _reduce(data[first:stop], r)
        n = lows.shape[0]
        step = unit * r
        centres = first * unit + (np.arange(n, dtype=np.float64) + 0.5) * step
        # strokes while blocks are at most a pixel wide; a filled outline when wider
        mode: BandMode = "fill" if span / step < pixels else "lines"
        x = np.empty(2 * n, np.float64)
        ys = []
        if mode == "lines":
            x[0::2] = centres
            x[1::2] = centres
            for ch in range(self.channels):
                y = np.empty(2 * n, np.float32)
                y[0::2] = lows[:, ch]
                y[1::2] = highs[:, ch]
                ys.append(y)
        else:
            x[:n] = centres
            x[n:] = centres[::-1]
            for ch in range(self.channels):
                y = np.empty(2 * n, np.float32)
                y[:n] = highs[:, ch]
                y[n:] = lows[::-1, ch]
                ys.append(y)
        return Band(mode, d, level, step, first * unit, n, x, tuple(ys))


def _reduce(blocks: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) per channel of each group of ``r`` blocks: two (groups, channels) arrays."""
    lows, highs = blocks[:, :, 0], blocks[:, :, 1]
    if r == 1:
        return lows, highs
    n = blocks.shape[0]
    full = n // r * r
    c = blocks.shape[1]
    lo = lows[:full].reshape(full // r, r, c).min(axis=1)
    hi = highs[:full].reshape(full // r, r, c).max(axis=1)
    if full < n:
        lo = np.concatenate([lo, lows[full:].min(axis=0, keepdims=True)])
        hi = np.concatenate([hi, highs[full:].max(axis=0, keepdims=True)])
    return lo, hi


def make_band_curves() -> tuple[pg.PlotCurveItem, pg.PlotCurveItem]:
    """The two curves of a waveform lane (one shown at a time): vertical min-max strokes, and
    a filled closed outline for when blocks are wider than a pixel."""
    lines = pg.PlotCurveItem(
        pen=pg.mkPen(WAVE_COLOR, width=1), connect="pairs", skipFiniteCheck=True, antialias=False
    )
    fill = pg.PlotCurveItem(
        pen=pg.mkPen(WAVE_COLOR, width=1),
        brush=pg.mkBrush(WAVE_COLOR),
        fillLevel="enclosed",
        skipFiniteCheck=True,
        antialias=False,
    )
    return lines, fill
