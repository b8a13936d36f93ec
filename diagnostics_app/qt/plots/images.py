"""Image lanes (spectrogram, mel, chroma): the picture a worker prepares (:class:`ImageView`)
and the items that draw it.

An image is at most :data:`MAX_IMAGE_COLUMNS` columns (the time axis max-pooled for long
files), with explicit levels and a 256-entry colour map, drawn with a colour bar. The lane's
:class:`~.lane_style.LaneStyle` chooses the frequency scale (Hz bins resampled to a log or
linear Hz grid, :mod:`.freq_axis`, or the bins as stored), the colour range and the colour
map. Ticks always name frequencies in Hz (mel: of the band centres) or notes (chroma).
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage

from diagnostics_app.core.axes import frame_step
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.calculators.spectral import PITCH_CLASSES
from diagnostics_app.qt.plots import freq_axis
from diagnostics_app.qt.plots.lane_style import DEFAULT_COLOR_MAP, LaneStyle, Scale

MAX_IMAGE_COLUMNS = 4096

Ticks = list[list[tuple[float, str]]]


class _ItemLike(Protocol):
    """What :func:`prepare_image` reads of a :class:`~.features.FeaturePlot`."""

    @property
    def meta(self) -> OutputMeta: ...
    @property
    def data(self) -> np.ndarray: ...
    @property
    def times(self) -> np.ndarray: ...
    @property
    def frames(self) -> int: ...


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


def pitch_class_ticks(n_bins: int) -> Ticks:
    """Ticks naming the note of each bin of a chroma; three levels (C E G#, then D F# A#,
    then the rest) so a short lane still shows some of them."""
    per_class = n_bins / 12.0
    levels: Ticks = [[], [], []]
    for pc, name in enumerate(PITCH_CLASSES):
        centre = pc * per_class + 0.5 if per_class >= 1.0 else pc * per_class
        level = 0 if pc % 4 == 0 else 1 if pc % 2 == 0 else 2
        if centre < n_bins:
            levels[level].append((centre, name))
    return levels


@dataclass(frozen=True)
class ImageView:
    """An image feature ready for an ``ImageItem``."""

    image: np.ndarray  # (rows, columns) float32, C-contiguous (row-major: rows are bins)
    rect: tuple[float, float, float, float]  # x, y, width, height in view coordinates
    levels: tuple[float, float]
    y_label: str  # short (the axis is narrow); ``y_tip`` is the long form
    # None: numeric ticks; else tick levels, most important first (pyqtgraph drops the later
    # levels' labels when the lane is too short for them)
    y_ticks: Ticks | None
    pool: int  # frames per column
    # ``image`` through the colour map at ``levels``, as 0xffRRGGBB words (rows, columns)
    # uint32: rendered where the view is prepared (a worker thread), so the GUI thread's
    # first paint of the lane only draws it (None: the lane renders ``image`` itself)
    rgb: np.ndarray | None = None
    cmap: str = DEFAULT_COLOR_MAP
    scale: Scale = "native"  # what the rows are (log / linear Hz, or the bins as stored)
    y_tip: str = ""
    auto_levels: tuple[float, float] = (0.0, 1.0)  # the levels the data alone gives


def image_levels(values: np.ndarray, meta: OutputMeta) -> tuple[float, float]:
    """Automatic colour levels: the quantisation range when known (spectrogram's min/max
    dB), 0..1 for chroma, the top 80 dB for other dB images, else the 1st..99th percentile."""
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


def hz_bins(meta: OutputMeta, rows: int) -> np.ndarray | None:
    """The bin centres in Hz when the rows are frequencies (increasing), else None."""
    bins = np.asarray(meta.bins, np.float64)
    if meta.bin_unit != "Hz" or rows < 2 or bins.shape[0] != rows:
        return None
    return bins if bool(np.all(np.diff(bins) > 0)) else None


def is_uniform(freqs: np.ndarray) -> bool:
    step = freqs[1] - freqs[0]
    return bool(np.allclose(np.diff(freqs), step, rtol=1e-6, atol=1e-9))


def default_scale(meta: OutputMeta) -> Scale:
    """Log Hz for a spectrogram (music spans ten octaves), the bands as they are for mel
    (already log-like), the bins as they are for anything else."""
    freqs = hz_bins(meta, meta.width)
    return "log" if freqs is not None and is_uniform(freqs) else "native"


def scales_of(meta: OutputMeta) -> tuple[Scale, ...]:
    """The scales a lane of ``meta`` offers (native is linear Hz for uniform bins)."""
    freqs = hz_bins(meta, meta.width)
    if freqs is None:
        return ("native",)
    return ("log", "linear") if is_uniform(freqs) else ("log", "linear", "native")


def _frequency_axis(
    image: np.ndarray, freqs: np.ndarray, scale: Scale
) -> tuple[np.ndarray, float, float, Ticks, str]:
    """Rows of ``image`` (bins at ``freqs`` Hz) on ``scale``: the image, the y of its bottom
    and top edges, the ticks and the axis tooltip."""
    uniform = is_uniform(freqs)
    if scale == "log":
        lo, hi = freq_axis.log_span(freqs)
        rows = freq_axis.resample_rows(image, freqs, freq_axis.log_edges(lo, hi))
        y0, y1 = math.log10(lo), math.log10(hi)
        return rows, y0, y1, freq_axis.log_ticks(lo, hi), "frequency, Hz (log scale)"
    if uniform:  # linear: the bins as they are
        df = float(freqs[1] - freqs[0])
        lo, hi = float(freqs[0]) - df / 2, float(freqs[-1]) + df / 2
        return image, lo, hi, freq_axis.linear_ticks(max(lo, 0.0), hi), "frequency, Hz"
    if scale == "linear":
        lo, hi = max(0.0, float(freqs[0])), freq_axis.log_span(freqs)[1]
        rows = freq_axis.resample_rows(image, freqs, freq_axis.linear_edges(lo, hi))
        return rows, lo, hi, freq_axis.linear_ticks(lo, hi), "frequency, Hz"
    nb = freqs.shape[0]
    return image, 0.0, float(nb), freq_axis.band_ticks(freqs), "band centre frequency, Hz"


class _PooledCache:
    """The last few pooled images (bins × columns, float32), by the data they were pooled from
    (held weakly: an entry goes with its data): a restyle prepares its lane's image again, and
    the pooling, the level scan and the transposed copy do not depend on the style (~60 ms of
    a 10-minute spectrogram's ~100 ms). Only data without NaN/inf is kept (their fill value
    follows the style's levels). Thread-safe: the plot loader and the GUI thread prepare."""

    def __init__(self, size: int = 2) -> None:
        self._size = size
        self._lock = threading.RLock()  # the weakref callback may run in a collection here
        # (id(data), channel, frames, max_columns) -> (data ref, image, auto levels, pool size)
        self._entries: OrderedDict[tuple[int, ...], tuple[Any, np.ndarray, Any, int]] = (
            OrderedDict()
        )

    def get(self, data: np.ndarray, key: tuple[int, ...]) -> tuple[np.ndarray, Any, int] | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0]() is not data:
                return None
            self._entries.move_to_end(key)
            return hit[1], hit[2], hit[3]

    def put(
        self, data: np.ndarray, key: tuple[int, ...], value: tuple[np.ndarray, Any, int]
    ) -> None:
        def gone(_ref: Any) -> None:
            with self._lock:
                if key in self._entries and self._entries[key][0] is _ref:
                    del self._entries[key]

        with self._lock:
            self._entries[key] = (weakref.ref(data, gone), *value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


_POOLED = _PooledCache()


def prepare_image(
    item: _ItemLike,
    channel: int,
    max_columns: int = MAX_IMAGE_COLUMNS,
    style: LaneStyle | None = None,
) -> ImageView:
    """The ``channel`` of an image feature as an image of at most ``max_columns`` columns,
    drawn as ``style`` says (None: the default style)."""
    style = style if style is not None else LaneStyle()
    meta = item.meta
    n = item.frames
    data = item.data
    key = (id(data), channel, n, max_columns)
    cached = _POOLED.get(data, key) if isinstance(data, np.ndarray) else None
    if cached is not None:
        image, auto, k = cached
        levels = style.levels(auto)
    else:
        values = np.asarray(data[:n, channel, :], np.float32)
        auto = image_levels(values, meta)
        levels = style.levels(auto)
        finite = not values.size or bool(np.isfinite(values).all())
        if not finite:
            values = np.where(np.isfinite(values), values, np.float32(min(auto[0], levels[0])))
        pooled, k = pool_columns(values, max_columns)
        image = np.ascontiguousarray(pooled.T, dtype=np.float32)
        if finite and isinstance(data, np.ndarray):
            image.setflags(write=False)  # shared by the views prepared from it
            _POOLED.put(data, key, (image, auto, k))
    step = frame_step(meta.frame_step, item.times[:n])
    x0 = (float(item.times[0]) if n else meta.frame_start) - step / 2
    width = max(image.shape[1], 1) * k * step
    nb = image.shape[0]
    freqs = hz_bins(meta, nb)
    scale: Scale = style.scale or default_scale(meta)
    if scale not in scales_of(meta):
        scale = default_scale(meta)
    ticks: Ticks | None = None
    if freqs is not None:
        image, y0, y1, ticks, tip = _frequency_axis(image, freqs, scale)
        y_label = "Hz"
    else:
        y0, y1 = 0.0, float(nb)
        if meta.bin_unit == "pitch class":
            y_label, tip = "note", "pitch class (chroma bin), note name"
            ticks = pitch_class_ticks(nb)
        else:
            y_label = meta.bin_unit or "bin"
            tip = y_label
    rect = (x0, y0, width, y1 - y0)
    rgb = render_rgb(image, levels, style.cmap)
    return ImageView(image, rect, levels, y_label, ticks, k, rgb, style.cmap, scale, tip, auto)


def color_map(name: str = DEFAULT_COLOR_MAP) -> pg.ColorMap:
    return _color_map(name)


@functools.lru_cache(maxsize=16)
def _color_map(name: str) -> pg.ColorMap:
    try:
        return pg.colormap.get(name)
    except (FileNotFoundError, KeyError, ValueError):
        return pg.colormap.get(DEFAULT_COLOR_MAP)


def color_lut(name: str = DEFAULT_COLOR_MAP) -> np.ndarray:
    """The colour map's 256-entry RGB lookup table (uint8), as the image items use it."""
    return _color_lut(name)


@functools.lru_cache(maxsize=16)
def _color_lut(name: str) -> np.ndarray:
    lut = np.ascontiguousarray(color_map(name).getLookupTable(nPts=256, alpha=False), np.uint8)
    lut.setflags(write=False)
    return lut


def render_rgb(
    image: np.ndarray, levels: tuple[float, float], cmap: str = DEFAULT_COLOR_MAP
) -> np.ndarray:
    """``image`` (float, no NaN) mapped through the colour map at ``levels`` as pyqtgraph's
    ``ImageItem`` maps it (level ``lo`` to the first colour, ``hi`` to the last, clipped):
    (rows, columns) uint32 words 0xffRRGGBB, i.e. a ``QImage.Format_RGB32`` buffer. Plain
    numpy, safe in any thread."""
    lo, hi = float(levels[0]), float(levels[1])
    lut = color_lut(cmap)
    n = lut.shape[0]
    scale = n / (hi - lo) if hi != lo else 0.0
    index = np.empty(image.shape, np.float32)
    np.subtract(image, np.float32(lo), out=index)
    np.multiply(index, np.float32(scale), out=index)
    np.clip(index, 0, n - 1, out=index)
    words = (
        np.uint32(0xFF000000)
        | (lut[:, 0].astype(np.uint32) << 16)
        | (lut[:, 1].astype(np.uint32) << 8)
        | lut[:, 2].astype(np.uint32)
    )
    return np.ascontiguousarray(words[index.astype(np.intp)])


class LaneImage(pg.ImageItem):  # type: ignore[misc]
    """An ``ImageItem`` that can be handed its picture ready-made (:attr:`ImageView.rgb`,
    rendered by a worker thread): while its levels and lookup table are the ones that
    picture was rendered for, a paint only draws it, instead of pyqtgraph's render of the
    float image (downsampling, rescaling and the lookup, on the GUI thread). Other levels
    (the user dragged the colour bar) or another lookup table: pyqtgraph renders as usual."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._ready: tuple[QImage, np.ndarray, tuple[float, float], str] | None = None
        self.cmap_name = DEFAULT_COLOR_MAP  # the colour map of the lookup table
        self.scale: Scale = "native"  # what its rows are: the crosshair reads y through it

    def setImage(
        self, image: np.ndarray | None = None, autoLevels: bool | None = None, **kwargs: object
    ) -> None:
        if image is not None:
            self._ready = None  # new data: the ready picture is of the old one
        super().setImage(image, autoLevels, **kwargs)

    def clear(self) -> None:
        self._ready = None
        super().clear()

    def set_cmap(self, name: str) -> None:
        """Draw through the colour map ``name``."""
        if name != self.cmap_name or self.lut is None:
            self.cmap_name = name
            self.setLookupTable(color_lut(name))

    def set_ready(
        self, rgb: np.ndarray, levels: tuple[float, float], cmap: str = DEFAULT_COLOR_MAP
    ) -> None:
        """``rgb`` (:func:`render_rgb` of the current image at ``levels`` through ``cmap``) is
        what to draw while the item's levels are ``levels`` and its lookup table ``cmap``'s."""
        image = QImage(
            rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB32
        )
        self._ready = (image, rgb, (float(levels[0]), float(levels[1])), cmap)
        self._renderRequired = True
        self.update()

    @property
    def ready(self) -> bool:
        """The next paint draws the ready picture (no render of the float image)."""
        return self._ready is not None and self._ready_fits()

    def _ready_fits(self) -> bool:
        assert self._ready is not None
        levels = self.levels
        if levels is None or np.ndim(levels) != 1 or len(levels) != 2:
            return False
        if (float(levels[0]), float(levels[1])) != self._ready[2]:
            return False
        lut = self.lut
        want = color_lut(self._ready[3])
        if not isinstance(lut, np.ndarray) or lut.ndim != 2 or lut.shape[0] != want.shape[0]:
            return False
        if lut.shape[1] == 4 and not np.all(lut[:, 3] == 255):
            return False
        return bool(np.array_equal(lut[:, :3], want))

    def render(self) -> None:
        if self._ready is not None and self.image is not None and self._ready_fits():
            self.qimage = self._ready[0]
            self._renderRequired = False
            self._unrenderable = False
            return
        super().render()


def make_image_item(view: ImageView | None, stale: bool) -> LaneImage:
    """The image of an image lane (``view`` None: empty until :func:`show_image`)."""
    img = LaneImage(axisOrder="row-major", autoDownsample=True)
    img.set_cmap(view.cmap if view is not None else DEFAULT_COLOR_MAP)
    if view is not None:
        show_image(img, view)
    if stale:
        img.setOpacity(0.55)
    return img


def show_image(img: pg.ImageItem, view: ImageView) -> None:
    """Hand an image item new data: explicit levels, the colour map, the rect in seconds and
    rows (and the picture a worker rendered, for a :class:`LaneImage`)."""
    if isinstance(img, LaneImage):
        img.set_cmap(view.cmap)
        img.scale = view.scale
    img.setImage(view.image, levels=view.levels, autoLevels=False)
    if view.rgb is not None and isinstance(img, LaneImage):
        img.set_ready(view.rgb, view.levels, view.cmap)
    img.setRect(QRectF(*view.rect))


def make_color_bar(
    img: pg.ImageItem,
    levels: tuple[float, float],
    unit: str | None,
    cmap: str = DEFAULT_COLOR_MAP,
) -> pg.ColorBarItem:
    bar = pg.ColorBarItem(
        values=levels,
        colorMap=color_map(cmap),
        label=unit or None,
        interactive=True,
        width=12,
        rounding=0.01,
    )
    bar.setImageItem(img)
    return bar
