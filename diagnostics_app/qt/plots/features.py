"""Feature lanes: what the plot area is given (:class:`FeaturePlot`) and how each kind of
feature is turned into pyqtgraph items.

Kinds (:func:`lane_kind`):

- ``line``: one value per frame (rms, centroid, onset): one curve per channel, with peak
  downsampling and clip-to-view so a million frames cost only what the screen can show.
- ``steps``: explicit, non-uniform frame times (``meta.frame_step is None``, e.g. beat_rms):
  frame ``k`` holds from ``times[k]`` to ``times[k + 1]`` (the last to the end of the source),
  drawn as a step line.
- ``pitch``: width 2, f0 and confidence. f0 (Hz) is the lane's curve on the left axis; the
  confidence (0..1) is a second, thin grey curve in its own view with its own right axis. A
  second curve was chosen over confidence-as-pen-alpha because a pen has one alpha for the
  whole curve (per-point alpha would mean a scatter plot of every frame), and because it shows
  the raw confidence rather than hiding low-confidence f0 behind a threshold.
- ``image``: bins (``meta.bins``) × frames (spectrogram, mel, chroma): an ``ImageItem`` of at
  most :data:`MAX_IMAGE_COLUMNS` columns (the time axis max-pooled for long files), explicit
  levels and a 256-entry colour map, with a colour bar. Uniformly spaced Hz bins map to Hz on
  the y axis; other bins (mel bands, pitch classes) map to the bin index with ticks that name
  them (Hz of the band centre, or the pitch class).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.calculators.spectral import PITCH_CLASSES

LaneKind = Literal["line", "steps", "pitch", "image"]

MAX_IMAGE_COLUMNS = 4096
LINE_COLORS = ((95, 211, 141), (224, 123, 216), (127, 178, 255), (255, 140, 105))
CONFIDENCE_COLOR = (200, 200, 200, 150)
STALE_COLOR = "#ffb000"  # amber: lane titles and borders of stale features
COLOR_MAP_NAME = "viridis"


@dataclass(frozen=True, eq=False)
class FeaturePlot:
    """One feature of the shown source, as the plot area draws it.

    ``data`` is ``(frames, channels, width)`` float32 as the store returns it, ``times`` the
    time in seconds of each frame (frame centres for uniform features, the start of each
    subdivision for beat_rms). ``stale`` data is still drawn, visibly marked; ``state`` is the
    row's state (shown in the lane title when it is not ``ok``).
    """

    label: str
    feature: str
    data: np.ndarray
    times: np.ndarray
    meta: OutputMeta
    stale: bool = False
    state: str = "ok"

    @property
    def kind(self) -> LaneKind:
        return lane_kind(self.meta, self.feature)

    @property
    def frames(self) -> int:
        return int(min(self.data.shape[0], self.times.shape[0]))

    def channel_names(self) -> list[str]:
        n = self.data.shape[1] if self.data.ndim == 3 else 1
        names = list(self.meta.channel_names[:n])
        return names + [f"ch{i + 1}" for i in range(len(names), n)]


def lane_kind(meta: OutputMeta, feature: str = "") -> LaneKind:
    if meta.bins and meta.width > 1:
        return "image"
    if meta.width == 2 and (meta.width_names[:2] == ("f0", "confidence") or feature == "pitch"):
        return "pitch"
    if meta.frame_step is None:
        return "steps"
    return "line"


def frame_step(times: np.ndarray, meta: OutputMeta) -> float:
    """Seconds between frames: the meta's, else the median spacing of ``times``."""
    if meta.frame_step is not None and meta.frame_step > 0:
        return float(meta.frame_step)
    if times.shape[0] > 1:
        step = float(np.median(np.diff(times)))
        if step > 0:
            return step
    return 1.0


def value_range(arrays: Sequence[np.ndarray], *, pad: float = 0.05) -> tuple[float, float]:
    """A fixed y range for a lane: finite min..max of all ``arrays``, padded; starting at 0
    when no value is negative (rms, onset strength, centroid)."""
    lo, hi = math.inf, -math.inf
    for a in arrays:
        if a.size == 0:
            continue
        finite = a[np.isfinite(a)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if not math.isfinite(lo):
        return 0.0, 1.0
    if lo >= 0.0:
        lo = 0.0
    if hi - lo <= 0.0:
        hi = lo + (abs(lo) if lo else 1.0)
    span = hi - lo
    return (lo if lo == 0.0 else lo - pad * span), hi + pad * span


def pitch_range(f0: np.ndarray, confidence: np.ndarray) -> tuple[float, float]:
    """y range of a pitch lane: f0 of the confident frames (≥ 0.5), else of all frames."""
    finite = np.isfinite(f0) & (f0 > 0)
    sure = finite & (confidence >= 0.5)
    values = f0[sure] if sure.any() else f0[finite]
    if values.size == 0:
        return 0.0, 1000.0
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        lo, hi = lo * 0.5, lo * 2.0 + 1.0
    span = hi - lo
    return max(0.0, lo - 0.1 * span), hi + 0.1 * span


def step_polyline(
    times: np.ndarray, values: np.ndarray, end: float
) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``k`` held from ``times[k]`` to ``times[k + 1]`` (the last one to ``end``), as a
    polyline with two points per frame (x never decreases, so clip-to-view still works)."""
    n = min(times.shape[0], values.shape[0])
    if n == 0:
        return np.zeros(0), np.zeros(0, np.float32)
    t = np.asarray(times[:n], np.float64)
    last = float(t[-1])
    if end <= last:
        end = last + (float(t[-1] - t[-2]) if n > 1 else 1.0)
    edges = np.append(t, end)
    x = np.empty(2 * n, np.float64)
    x[0::2] = edges[:-1]
    x[1::2] = edges[1:]
    y = np.repeat(np.asarray(values[:n], np.float32), 2)
    return x, y


def pool_columns(
    values: np.ndarray, max_columns: int = MAX_IMAGE_COLUMNS
) -> tuple[np.ndarray, int]:
    """Max-pool ``values`` (frames, bins) over time to at most ``max_columns`` frames: returns
    the pooled array and the pool size (frames per column)."""
    frames = values.shape[0]
    k = max(1, math.ceil(frames / max_columns))
    if k == 1:
        return values, 1
    full = frames // k * k
    pooled = values[:full].reshape(full // k, k, values.shape[1]).max(axis=1)
    if full < frames:
        pooled = np.concatenate([pooled, values[full:].max(axis=0, keepdims=True)])
    return pooled, k


def _format_hz(hz: float) -> str:
    if hz >= 1000:
        return f"{hz / 1000:.1f}k".replace(".0k", "k")
    return f"{hz:.0f}"


def _pitch_class_ticks(n_bins: int) -> list[list[tuple[float, str]]]:
    """Ticks naming the pitch class of each bin on a pitch class; three levels (C E G#, then
    D F# A#, then the rest) so a short lane still shows some of them."""
    per_class = n_bins / 12.0
    levels: list[list[tuple[float, str]]] = [[], [], []]
    for pc, name in enumerate(PITCH_CLASSES):
        centre = pc * per_class + 0.5 if per_class >= 1.0 else pc * per_class
        level = 0 if pc % 4 == 0 else 1 if pc % 2 == 0 else 2
        if centre < n_bins:
            levels[level].append((centre, name))
    return levels


@dataclass(frozen=True)
class ImageView:
    """An image feature ready for an ``ImageItem``."""

    image: np.ndarray  # (bins, columns) float32, C-contiguous (row-major: rows are bins)
    rect: tuple[float, float, float, float]  # x, y, width, height in view coordinates
    levels: tuple[float, float]
    y_label: str
    # None: numeric ticks (the y axis is in Hz); else tick levels, most important first
    # (pyqtgraph drops the later levels' labels when the lane is too short for them)
    y_ticks: list[list[tuple[float, str]]] | None
    pool: int  # frames per column


def image_levels(values: np.ndarray, meta: OutputMeta) -> tuple[float, float]:
    """Explicit colour levels: the quantisation range when known (spectrogram's min/max dB),
    0..1 for chroma, the top 80 dB for other dB images, else the 1st..99th percentile."""
    if meta.value_range is not None:
        lo, hi = meta.value_range
        if hi > lo:
            return float(lo), float(hi)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    if meta.bin_unit == "pitch class":
        return 0.0, max(1.0, float(finite.max()))
    if "dB" in meta.unit:
        hi = float(finite.max())
        return max(float(finite.min()), hi - 80.0), hi if hi > float(finite.min()) else hi + 1
    lo, hi = (float(v) for v in np.percentile(finite, [1.0, 99.0]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def prepare_image(
    item: FeaturePlot, channel: int, max_columns: int = MAX_IMAGE_COLUMNS
) -> ImageView:
    """The ``channel`` of an image feature as an image of at most ``max_columns`` columns."""
    meta = item.meta
    n = item.frames
    values = np.asarray(item.data[:n, channel, :], np.float32)
    levels = image_levels(values, meta)
    if values.size and not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, np.float32(levels[0]))
    pooled, k = pool_columns(values, max_columns)
    image = np.ascontiguousarray(pooled.T, dtype=np.float32)
    step = frame_step(item.times[:n], meta)
    x0 = (float(item.times[0]) if n else meta.frame_start) - step / 2
    width = max(image.shape[1], 1) * k * step
    bins = np.asarray(meta.bins, np.float64)
    nb = image.shape[0]
    ticks: list[list[tuple[float, str]]] | None = None
    uniform = (
        nb > 1
        and bins.shape[0] == nb
        and meta.bin_unit == "Hz"
        and np.allclose(np.diff(bins), bins[1] - bins[0], rtol=1e-6, atol=1e-9)
    )
    if uniform:
        df = float(bins[1] - bins[0])
        rect = (x0, float(bins[0]) - df / 2, width, nb * df)
        y_label = "Hz"
    else:
        rect = (x0, 0.0, width, float(nb))
        if meta.bin_unit == "pitch class":
            y_label = "pitch class"
            ticks = _pitch_class_ticks(nb)
        elif bins.shape[0] == nb and meta.bin_unit == "Hz":
            y_label = "Hz (band centres)"
            picks = sorted({round(v) for v in np.linspace(0, nb - 1, min(nb, 6))})
            ticks = [[(i + 0.5, _format_hz(float(bins[i]))) for i in picks]]
        else:
            y_label = meta.bin_unit or "bin"
    return ImageView(image, rect, levels, y_label, ticks, k)


@functools.lru_cache(maxsize=1)
def color_map() -> pg.ColorMap:
    return pg.colormap.get(COLOR_MAP_NAME)


def make_image_item(view: ImageView, stale: bool) -> pg.ImageItem:
    img = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
    img.setLookupTable(color_map().getLookupTable(nPts=256))
    img.setImage(view.image, levels=view.levels, autoLevels=False)
    img.setRect(QRectF(*view.rect))
    if stale:
        img.setOpacity(0.55)
    return img


def make_color_bar(img: pg.ImageItem, view: ImageView, unit: str) -> pg.ColorBarItem:
    bar = pg.ColorBarItem(
        values=view.levels,
        colorMap=color_map(),
        label=unit or None,
        interactive=True,
        width=12,
        rounding=0.01,
    )
    bar.setImageItem(img)
    return bar


def line_pen(color: tuple[int, ...], stale: bool, width: float = 1.2) -> pg.QtGui.QPen:
    """Curve pen; stale data keeps its colour, translucent and dashed."""
    if stale:
        return pg.mkPen((*color[:3], 150), width=width, style=Qt.PenStyle.DashLine)
    return pg.mkPen(color, width=width)


def make_line_curve(
    x: np.ndarray, y: np.ndarray, color: tuple[int, ...], stale: bool, width: float = 1.2
) -> pg.PlotDataItem:
    """A frame-rate curve: peak downsampling and clip-to-view (the lane's x never auto-ranges,
    so clipping is in effect)."""
    curve = pg.PlotDataItem(x, y, pen=line_pen(color, stale, width), antialias=False)
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    return curve
