"""Frequency axes of image lanes: rows resampled to a log or linear Hz grid, and the ticks
that name them in Hz.

On a log axis the view's y coordinate is ``log10(Hz)``: the image's rows are *resampled*
(:func:`resample_rows`) so that a tone of f Hz lands at ``log10(f)``, not merely relabelled.
Rows that span several stored bins (the top octaves of a spectrogram) take the loudest of
them, so a narrow partial never vanishes; rows narrower than a bin (the bottom octaves)
interpolate between the two nearest bins. Plain numpy, safe in the plot loader's threads.
"""

from __future__ import annotations

import math

import numpy as np

LOG_ROWS = 256  # rows of a resampled image: ~25 per octave over 20 Hz .. 24 kHz; more rows
# than a lane has pixels would be drawn by skipping rows (a partial in a skipped row vanishes)
LOWEST_HZ = 20.0  # a log axis starts no lower (what is below is not music)
# tick frequencies of a log axis, most important level first (pyqtgraph drops later levels'
# labels when a lane is too short for them)
LOG_TICK_LEVELS: tuple[tuple[float, ...], ...] = (
    (100.0, 1000.0, 10000.0),
    (50.0, 200.0, 500.0, 2000.0, 5000.0, 20000.0),
    (20.0,),
)

Ticks = list[list[tuple[float, str]]]


def format_hz(hz: float) -> str:
    """A short tick label: ``50``, ``500``, ``1k``, ``2.5k``, ``20k``."""
    if hz >= 1000:
        return f"{hz / 1000:.1f}k".replace(".0k", "k")
    return f"{hz:.0f}"


def log_ticks(lo_hz: float, hi_hz: float) -> Ticks:
    """Ticks at 20, 50, 100, 200, 500 Hz, 1k ... 20k within ``lo_hz..hi_hz``, placed at
    ``log10(Hz)``."""
    return [
        [(math.log10(f), format_hz(f)) for f in level if lo_hz <= f <= hi_hz]
        for level in LOG_TICK_LEVELS
    ]


def linear_ticks(lo_hz: float, hi_hz: float, most: int = 6) -> Ticks:
    """Round ticks (1, 2 or 5 times a power of ten) over a linear Hz axis, at most ``most``."""
    span = max(hi_hz - lo_hz, 1e-9)
    step = 10.0 ** math.floor(math.log10(span / most))
    for m in (1.0, 2.0, 5.0, 10.0):
        if span / (step * m) <= most:
            step *= m
            break
    first = math.ceil(lo_hz / step) * step
    values = np.arange(first, hi_hz + step * 1e-6, step)
    return [[(float(v), format_hz(float(v))) for v in values]]


def band_ticks(centres: np.ndarray) -> Ticks:
    """Ticks of an axis whose rows are bands (y = band index, row i spans i..i+1) with the
    given centre frequencies: at round frequencies (the log axis' list), placed where that
    frequency falls between the band centres."""
    if centres.shape[0] < 2:
        return [[(0.5, format_hz(float(centres[0])))]] if centres.shape[0] else [[]]
    index = np.arange(centres.shape[0], dtype=np.float64) + 0.5
    lo, hi = float(centres[0]), float(centres[-1])
    return [
        [(float(np.interp(f, centres, index)), format_hz(f)) for f in level if lo <= f <= hi]
        for level in LOG_TICK_LEVELS
    ]


def log_span(freqs: np.ndarray) -> tuple[float, float]:
    """The Hz range a log axis shows for bins centred at ``freqs``: from the first bin
    above 0 (or :data:`LOWEST_HZ`) to the top edge of the last bin."""
    positive = freqs[freqs > 0]
    if positive.shape[0] == 0:
        return LOWEST_HZ, LOWEST_HZ * 1000
    lo = max(LOWEST_HZ, float(positive[0]) / 2)
    top = float(freqs[-1])
    if freqs.shape[0] > 1:
        top += (float(freqs[-1]) - float(freqs[-2])) / 2
    return lo, max(top, lo * 2)


def resample_rows(image: np.ndarray, freqs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``image`` (bins, columns), bin ``i`` centred at ``freqs[i]`` (increasing), as rows
    between the ``edges`` (rows + 1 increasing Hz values): the loudest bin of a row that
    holds two or more bin centres, else interpolated at the row's centre."""
    nb = freqs.shape[0]
    # a row's centre: geometric on a log grid (where the tick of that frequency sits)
    centres = np.sqrt(edges[:-1] * edges[1:]) if edges[0] > 0 else (edges[:-1] + edges[1:]) / 2
    pos = np.interp(centres, freqs, np.arange(nb, dtype=np.float64))
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, nb - 1)
    i1 = np.minimum(i0 + 1, nb - 1)
    w = (pos - i0).astype(np.float32)[:, None]
    out = image[i0] * (np.float32(1) - w) + image[i1] * w
    lo = np.searchsorted(freqs, edges[:-1])
    hi = np.searchsorted(freqs, edges[1:])
    many = np.flatnonzero(hi - lo >= 2)
    if many.shape[0]:
        bounds = np.empty(2 * many.shape[0], np.intp)
        bounds[0::2] = lo[many]
        bounds[1::2] = hi[many]
        if bounds[-1] >= nb:  # the last segment runs to the end
            bounds = bounds[:-1]
        out[many] = np.maximum.reduceat(image, bounds, axis=0)[0::2]
    return np.ascontiguousarray(out, np.float32)


def log_edges(lo_hz: float, hi_hz: float, rows: int = LOG_ROWS) -> np.ndarray:
    return np.logspace(math.log10(lo_hz), math.log10(hi_hz), rows + 1)


def linear_edges(lo_hz: float, hi_hz: float, rows: int = LOG_ROWS) -> np.ndarray:
    return np.linspace(lo_hz, hi_hz, rows + 1)
