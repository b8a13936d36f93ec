"""Small pictures of a feature lane, drawn into numpy arrays (RGB uint8), for the QA report.

No plotting library: the core imports no Qt and matplotlib is not a dependency, so pictures
are a few vectorised numpy operations, encoded by :mod:`.png`. Three kinds of lane:

- ``line`` (rms, centroid, pitch's f0…): one pixel column per time bucket spans the bucket's
  min..max, widened to touch its neighbours so the curve is continuous;
- ``band`` (peaks: min and max per block): the waveform's filled envelope;
- ``image`` (spectrogram, mel, chroma): values through a sequential colour map, low bins at
  the bottom; a difference image through a diverging map centred on zero.

An image reads one frame per pixel column (a one-hour spectrogram: 480 frames), so a
memory-mapped feature is never read whole; a line or band reads its frames (one or two values
each) up to :data:`MOST_FRAMES`, evenly chosen ones beyond. Time maps to x over ``[0, duration]``, so old and
new versions of a lane line up even when their frame counts differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np

Kind = Literal["line", "band", "image"]

WIDTH: Final = 480
LINE_HEIGHT: Final = 90
IMAGE_HEIGHT: Final = 110
MOST_FRAMES: Final = 2_000_000  # frames of a line or band read for one picture

BACKGROUND: Final = (255, 255, 255)
NEW_COLOUR: Final = (31, 92, 204)  # the current data
OLD_COLOUR: Final = (170, 170, 170)  # the previous (or stored) data, drawn under the new
MARK_COLOUR: Final = (230, 60, 50)  # time ranges that differ

# anchors of a perceptually ordered sequential map (viridis' ends and middle) and of a
# blue-white-red diverging map
_SEQUENTIAL: Final = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64
)
_DIVERGING: Final = np.array([[33, 102, 172], [247, 247, 247], [178, 24, 43]], np.float64)


def canvas(height: int, width: int = WIDTH) -> np.ndarray:
    out = np.empty((height, width, 3), np.uint8)
    out[:] = BACKGROUND
    return out


def _columns(times: np.ndarray, duration: float, width: int) -> np.ndarray:
    """The pixel column of each frame time (a hair of slack: 0.29 s of 1 s is column 29, not
    28 by a rounding error)."""
    span = duration if duration > 0 else 1.0
    where = np.floor(np.asarray(times, np.float64) / span * width + 1e-6)
    return np.clip(where.astype(np.int64), 0, width - 1)


def _bucket_ranges(
    values: np.ndarray, cols: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel column: min and max of the finite values that fall in it (NaN if none)."""
    lo = np.full(width, np.inf)
    hi = np.full(width, -np.inf)
    finite = np.isfinite(values)
    np.minimum.at(lo, cols[finite], values[finite])
    np.maximum.at(hi, cols[finite], values[finite])
    empty = ~np.isfinite(lo)
    lo[empty] = np.nan
    hi[empty] = np.nan
    # a column no frame falls in (uneven frame times) takes its neighbours' values; one whose
    # frames are all NaN stays a gap
    framed = np.bincount(cols, minlength=width) > 0
    have = np.flatnonzero(framed)
    if have.size > 1:
        x = np.arange(width)
        between = ~framed & (x > have[0]) & (x < have[-1])
        lo[between] = np.interp(x[between], have, lo[have])
        hi[between] = np.interp(x[between], have, hi[have])
    return lo, hi


def robust_limits(*arrays: np.ndarray) -> tuple[float, float]:
    """The 1st to 99.5th percentile of the finite values of ``arrays``: an image's colour
    range that a few extreme values (silence at the floor, one loud click) cannot wash out."""
    finite = [a[np.isfinite(a)] for a in arrays]
    joined = np.concatenate([a.ravel() for a in finite]) if finite else np.zeros(0)
    if joined.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(joined, [1.0, 99.5]))
    return (lo, hi) if hi - lo > 1e-12 else value_limits(joined)


def value_limits(*arrays: np.ndarray) -> tuple[float, float]:
    """The finite range shared by ``arrays`` (a flat range is widened so it has a height)."""
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return 0.0, 1.0
    lo = float(min(a.min() for a in finite))
    hi = float(max(a.max() for a in finite))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def _sample(values: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every frame up to :data:`MOST_FRAMES` (a line is one value per frame: hours of rms are
    a few MB), evenly chosen ones beyond: a column's min..max is then an estimate."""
    step = max(1, -(-len(values) // MOST_FRAMES))
    idx = np.arange(0, len(values), step)
    return np.asarray(values[idx], np.float64), np.asarray(times[idx], np.float64)


def draw_line(
    pixels: np.ndarray,
    values: np.ndarray,
    times: np.ndarray,
    duration: float,
    limits: tuple[float, float],
    colour: tuple[int, int, int],
) -> None:
    """Draw a 1-D feature over time into ``pixels`` (in place)."""
    width = pixels.shape[1]
    if len(values) == 0:
        return
    vals, ts = _sample(values, times)
    if len(vals) < width:
        # fewer frames than columns: the value at each column's centre, linearly between
        # frames (a NaN frame, an unvoiced pitch, leaves a gap on both sides)
        span = duration if duration > 0 else 1.0
        centres = (np.arange(width) + 0.5) / width * span
        lo = np.interp(centres, ts, vals, left=np.nan, right=np.nan)
        hi = lo.copy()
    else:
        lo, hi = _bucket_ranges(vals, _columns(ts, duration, width), width)
    # reach the neighbouring column's value so a steep curve has no gaps
    prev_lo, prev_hi = np.roll(lo, 1), np.roll(hi, 1)
    prev_lo[0], prev_hi[0] = lo[0], hi[0]
    joined = np.isfinite(prev_lo) & np.isfinite(lo)
    lo = np.where(joined, np.fmin(lo, prev_hi), lo)
    hi = np.where(joined, np.fmax(hi, prev_lo), hi)
    _fill_spans(pixels, lo, hi, limits, colour)


def draw_band(
    pixels: np.ndarray,
    minimum: np.ndarray,
    maximum: np.ndarray,
    times: np.ndarray,
    duration: float,
    limits: tuple[float, float],
    colour: tuple[int, int, int],
) -> None:
    """Draw a min/max envelope (a waveform) into ``pixels`` (in place)."""
    width = pixels.shape[1]
    if len(minimum) == 0:
        return
    mins, ts = _sample(minimum, times)
    maxs, _ = _sample(maximum, times)
    cols = _columns(ts, duration, width)
    lo, _ = _bucket_ranges(mins, cols, width)
    _, hi = _bucket_ranges(maxs, cols, width)
    _fill_spans(pixels, lo, hi, limits, colour)


def _fill_spans(
    pixels: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    limits: tuple[float, float],
    colour: tuple[int, int, int],
) -> None:
    height = pixels.shape[0]
    vmin, vmax = limits
    scale = (height - 1) / (vmax - vmin)
    top = np.round((vmax - np.clip(hi, vmin, vmax)) * scale)  # row of the larger value
    bottom = np.round((vmax - np.clip(lo, vmin, vmax)) * scale)
    rows = np.arange(height)[:, None]
    valid = np.isfinite(lo) & np.isfinite(hi)
    mask = valid[None, :] & (rows >= np.nan_to_num(top)) & (rows <= np.nan_to_num(bottom))
    pixels[mask] = colour


def colour_map(unit: np.ndarray, diverging: bool = False) -> np.ndarray:
    """Values in [0, 1] (NaN: the background) → RGB uint8 through the chosen map."""
    anchors = _DIVERGING if diverging else _SEQUENTIAL
    pos = np.clip(np.nan_to_num(unit, nan=0.0), 0.0, 1.0) * (len(anchors) - 1)
    base = np.minimum(pos.astype(np.int64), len(anchors) - 2)
    frac = (pos - base)[..., None]
    rgb = anchors[base] * (1 - frac) + anchors[base + 1] * frac
    rgb[np.isnan(unit)] = BACKGROUND
    return np.round(rgb).astype(np.uint8)


def log_rows(centres: Sequence[float], height: int, lowest: float = 30.0) -> np.ndarray | None:
    """The bin shown on each pixel row (top row first) when the rows are spaced evenly in log
    frequency from ``lowest`` Hz (or the first positive centre above it) to the top bin: a
    linear STFT otherwise spends most of a small picture above 5 kHz. None when ``centres``
    are not increasing positive frequencies."""
    c = np.asarray(centres, np.float64)
    if c.size < 16 or not np.all(np.diff(c) > 0) or c[-1] <= 0:
        return None
    low = max(lowest, float(c[c > 0][0]))
    if low >= c[-1]:
        return None
    wanted = np.geomspace(c[-1], low, height)  # top row: the highest frequency
    idx = np.clip(np.searchsorted(c, wanted), 1, c.size - 1)
    nearer_below = (wanted - c[idx - 1]) < (c[idx] - wanted)
    return np.where(nearer_below, idx - 1, idx)


def image_grid(
    values: np.ndarray,
    times: np.ndarray,
    duration: float,
    height: int,
    width: int,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """A ``(frames, bins)`` feature sampled onto ``(height, width)`` pixels (NaN where no frame
    covers a column): each column shows the frame nearest its centre; ``rows`` is the bin of
    each pixel row, top first (default: bins evenly, the lowest at the bottom row)."""
    out = np.full((height, width), np.nan)
    n, bins = values.shape[:2]
    if n == 0 or bins == 0:
        return out
    ts = np.asarray(times, np.float64)
    centres = (np.arange(width) + 0.5) / width * (duration if duration > 0 else 1.0)
    idx = np.clip(np.searchsorted(ts, centres), 0, n - 1)
    covered = centres <= ts[-1] + (ts[-1] - ts[0]) / max(n - 1, 1) + 1e-9
    if rows is None:
        rows = np.clip(((height - 1 - np.arange(height)) * bins) // height, 0, bins - 1)
    sampled = np.asarray(values[idx], np.float64)  # (width, bins): only these frames are read
    out[:, covered] = sampled[covered][:, rows].T
    return out


def draw_image(
    values: np.ndarray,
    times: np.ndarray,
    duration: float,
    limits: tuple[float, float],
    height: int = IMAGE_HEIGHT,
    width: int = WIDTH,
    diverging: bool = False,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    grid = image_grid(values, times, duration, height, width, rows)
    lo, hi = limits
    return colour_map((grid - lo) / (hi - lo), diverging)


def mark_ranges(
    pixels: np.ndarray, ranges: Sequence[tuple[float, float]], duration: float, rows: int = 5
) -> None:
    """A red strip along the bottom under each time range (seconds) that differs."""
    height, width = pixels.shape[:2]
    span = duration if duration > 0 else 1.0
    for start, end in ranges:
        a = int(np.clip(start / span * width, 0, width - 1))
        b = int(np.clip(np.ceil(end / span * width), a + 1, width))
        pixels[height - rows :, a:b] = MARK_COLOUR
