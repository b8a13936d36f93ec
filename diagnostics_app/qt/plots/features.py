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
from PySide6.QtGui import QImage

from diagnostics_app.core.axes import complete_names, frame_step
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

    ``lanes`` may hold what :func:`prepare_lanes` made of it for a plot of ``lanes_duration``
    seconds (the plot loader computes it in its worker thread, so the GUI thread only hands
    arrays to items); the plot area computes it itself when absent or made for another
    duration. ``version`` names the data (the row key and its update time): a lane shown
    again with the same version keeps its items' data.

    A *pending* item (:func:`pending_plot`) stands for a requested feature with no data yet
    (missing, queued, running): it is drawn as an empty lane of the kind its data will need,
    titled with the state, so that the lanes do not come and go, and the layout does not
    jump, while an analysis fills them in.
    """

    label: str
    feature: str
    data: np.ndarray
    times: np.ndarray
    meta: OutputMeta
    stale: bool = False
    state: str = "ok"
    lanes: tuple[LaneData, ...] | None = None
    lanes_duration: float = 0.0
    version: object = None
    pending: LaneKind | None = None  # no data yet: the kind of lane the data will need

    @property
    def kind(self) -> LaneKind:
        if self.pending is not None:
            return self.pending
        return lane_kind(self.meta, self.feature)

    @property
    def frames(self) -> int:
        return int(min(self.data.shape[0], self.times.shape[0]))

    def channel_names(self) -> list[str]:
        n = self.data.shape[1] if self.data.ndim == 3 else 1
        return list(complete_names(self.meta.channel_names, n))


def pending_plot(
    label: str,
    feature: str,
    spec_kind: str,
    unit: str = "",
    bin_unit: str = "",
    state: str = "missing",
) -> FeaturePlot:
    """A placeholder for a requested feature without data; ``spec_kind`` is its calculator's
    :attr:`FeatureSpec.kind` (``image`` or ``line``)."""
    kind: LaneKind = "image" if spec_kind == "image" else "pitch" if feature == "pitch" else "line"
    meta = OutputMeta(feature, 1, 1, unit=unit, bin_unit=bin_unit)
    empty = np.zeros((0, 1, 1), np.float32)
    return FeaturePlot(label, feature, empty, np.zeros(0), meta, state=state, pending=kind)


def lane_kind(meta: OutputMeta, feature: str = "") -> LaneKind:
    if meta.bins and meta.width > 1:
        return "image"
    if meta.width == 2 and (meta.width_names[:2] == ("f0", "confidence") or feature == "pitch"):
        return "pitch"
    if meta.frame_step is None:
        return "steps"
    return "line"


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
    # ``image`` through the colour map at ``levels``, as 0xffRRGGBB words (bins, columns)
    # uint32: rendered where the view is prepared (a worker thread), so the GUI thread's
    # first paint of the lane only draws it (None: the lane renders ``image`` itself)
    rgb: np.ndarray | None = None


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
    step = frame_step(meta.frame_step, item.times[:n])
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
    return ImageView(image, rect, levels, y_label, ticks, k, render_rgb(image, levels))


def color_lut() -> np.ndarray:
    """The colour map's 256-entry RGB lookup table (uint8), as the image items use it."""
    return _color_lut()


@functools.lru_cache(maxsize=1)
def _color_lut() -> np.ndarray:
    lut = np.ascontiguousarray(color_map().getLookupTable(nPts=256, alpha=False), np.uint8)
    lut.setflags(write=False)
    return lut


def render_rgb(image: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """``image`` (float, no NaN) mapped through the colour map at ``levels`` as pyqtgraph's
    ``ImageItem`` maps it (level ``lo`` to the first colour, ``hi`` to the last, clipped):
    (rows, columns) uint32 words 0xffRRGGBB, i.e. a ``QImage.Format_RGB32`` buffer. Plain
    numpy, safe in any thread."""
    lo, hi = float(levels[0]), float(levels[1])
    lut = color_lut()
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


def _hex(color: tuple[int, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color[:3])


def _nth(names: Sequence[str], i: int) -> str:
    return names[i] if i < len(names) else str(i)


@dataclass(frozen=True, eq=False)
class LaneData:
    """What one feature lane draws: plain numbers and numpy arrays, no Qt object, so it can
    be made in a worker thread (:func:`prepare_lanes`).

    ``key`` identifies the lane across reloads (the item's label and feature, and which of the
    item's lanes): the plot area keeps a lane whose key is shown again, with its plot, and
    hands it the new data and styling (a lane whose kind changed, e.g. pending to shown, gets
    new content items inside the same plot)."""

    key: tuple[object, ...]
    kind: LaneKind
    title: str  # without the state suffix (the lane adds " — STALE" and the like)
    y_range: tuple[float, float]
    y_label: str
    stale: bool
    state: str
    series: tuple[tuple[np.ndarray, np.ndarray], ...] = ()  # (x, y) per curve
    image: ImageView | None = None
    bar_label: str | None = None  # the colour bar's label (images)
    version: object = None
    pending: bool = False  # no data yet: an empty lane


def prepare_lanes(item: FeaturePlot, duration: float) -> tuple[LaneData, ...]:
    """The lanes of ``item`` in a plot of ``duration`` seconds (steps are held to its end):
    one per channel for images and pitch, one with a curve per channel and width otherwise.
    The expensive numpy work of a lane (max-pooling images, contiguous float32 series, step
    polylines, value ranges) happens here."""
    kind = item.kind
    meta = item.meta
    n = item.frames
    names = item.channel_names()
    unit = meta.unit or "value"
    base = (item.label, item.feature)
    if item.pending is not None:
        return (
            LaneData(
                (*base, 0),
                kind,
                item.label,
                (0.0, 1.0),
                unit if kind != "image" else meta.bin_unit or "bin",
                item.stale,
                item.state,
                bar_label=meta.unit or None,
                pending=True,
            ),
        )
    if n == 0:
        title = f"{item.label} — no frames"
        return (LaneData((*base, 0), kind, title, (0.0, 1.0), unit, False, item.state),)
    stale, state = item.stale, item.state
    # steps are held to the end of the plot: the same data in a longer plot is other curves
    version = item.version if kind != "steps" or item.version is None else (item.version, duration)
    times = np.asarray(item.times[:n], np.float64)
    lanes: list[LaneData] = []
    if kind == "image":
        for ch, name in enumerate(names):
            view = prepare_image(item, ch)
            title = item.label if len(names) == 1 else f"{item.label} · {name}"
            lo, h = view.rect[1], view.rect[3]
            y_range = (lo, lo + h)
            lanes.append(
                LaneData(
                    (*base, ch),
                    kind,
                    title,
                    y_range,
                    view.y_label,
                    stale,
                    state,
                    image=view,
                    bar_label=meta.unit or None,
                    version=version,
                )
            )
    elif kind == "pitch":
        for ch, name in enumerate(names):
            f0 = np.ascontiguousarray(item.data[:n, ch, 0], np.float32)
            conf = np.ascontiguousarray(item.data[:n, ch, 1], np.float32)
            title = item.label if len(names) == 1 else f"{item.label} · {name}"
            lanes.append(
                LaneData(
                    (*base, ch),
                    kind,
                    f"{title}  (f0; grey: confidence, right axis)",
                    pitch_range(f0, conf),
                    unit,
                    stale,
                    state,
                    series=((times, f0), (times, conf)),
                    version=version,
                )
            )
    else:
        series: list[tuple[str, np.ndarray, np.ndarray]] = []
        width_names = list(meta.width_names)
        for ch, name in enumerate(names):
            for w in range(item.data.shape[2]):
                values = np.ascontiguousarray(item.data[:n, ch, w], np.float32)
                label = name if item.data.shape[2] == 1 else f"{name} {_nth(width_names, w)}"
                if kind == "steps":
                    x, y = step_polyline(times, values, duration)
                else:
                    x, y = times, values
                series.append((label, x, y))
        title = item.label
        if len(series) > 1:
            title += "  " + " ".join(
                f"<span style='color:{_hex(LINE_COLORS[i % len(LINE_COLORS)])}'>{label}</span>"
                for i, (label, _, _) in enumerate(series)
            )
        lanes.append(
            LaneData(
                (*base, 0),
                kind,
                title,
                value_range([y for _, _, y in series]),
                unit,
                stale,
                state,
                series=tuple((x, y) for _, x, y in series),
                version=version,
            )
        )
    return tuple(lanes)


def plot_duration(source_duration: float, items: Sequence[FeaturePlot]) -> float:
    """The time axis of a plot: the source's duration, or longer when a feature's last frame
    is later."""
    return max(
        [float(source_duration)] + [float(it.times[it.frames - 1]) for it in items if it.frames > 0]
    )


@functools.lru_cache(maxsize=1)
def color_map() -> pg.ColorMap:
    return pg.colormap.get(COLOR_MAP_NAME)


class LaneImage(pg.ImageItem):  # type: ignore[misc]
    """An ``ImageItem`` that can be handed its picture ready-made (:attr:`ImageView.rgb`,
    rendered by a worker thread): while its levels and lookup table are the ones that
    picture was rendered for, a paint only draws it, instead of pyqtgraph's render of the
    float image (downsampling, rescaling and the lookup, on the GUI thread). Other levels
    (the user dragged the colour bar) or another lookup table: pyqtgraph renders as usual."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._ready: tuple[QImage, np.ndarray, tuple[float, float]] | None = None

    def setImage(
        self, image: np.ndarray | None = None, autoLevels: bool | None = None, **kwargs: object
    ) -> None:
        if image is not None:
            self._ready = None  # new data: the ready picture is of the old one
        super().setImage(image, autoLevels, **kwargs)

    def clear(self) -> None:
        self._ready = None
        super().clear()

    def set_ready(self, rgb: np.ndarray, levels: tuple[float, float]) -> None:
        """``rgb`` (:func:`render_rgb` of the current image at ``levels``) is what to draw
        while the item's levels are ``levels`` and its lookup table the colour map's."""
        image = QImage(
            rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB32
        )
        self._ready = (image, rgb, (float(levels[0]), float(levels[1])))
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
        want = color_lut()
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
    img.setLookupTable(color_lut())
    if view is not None:
        show_image(img, view)
    if stale:
        img.setOpacity(0.55)
    return img


def show_image(img: pg.ImageItem, view: ImageView) -> None:
    """Hand an image item new data: explicit levels, the rect in seconds and bins (and the
    picture a worker rendered, for a :class:`LaneImage`)."""
    img.setImage(view.image, levels=view.levels, autoLevels=False)
    if view.rgb is not None and isinstance(img, LaneImage):
        img.set_ready(view.rgb, view.levels)
    img.setRect(QRectF(*view.rect))


def make_color_bar(
    img: pg.ImageItem, levels: tuple[float, float], unit: str | None
) -> pg.ColorBarItem:
    bar = pg.ColorBarItem(
        values=levels,
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
    x: np.ndarray | None,
    y: np.ndarray | None,
    color: tuple[int, ...],
    stale: bool,
    width: float = 1.2,
) -> pg.PlotDataItem:
    """A frame-rate curve: peak downsampling and clip-to-view (the lane's x never auto-ranges,
    so clipping is in effect). ``x`` None: no data yet (a curve for a view that is already
    in a scene must get its data only once added: pyqtgraph clips to the wrong view before)."""
    pen = line_pen(color, stale, width)
    curve = (
        pg.PlotDataItem(pen=pen, antialias=False)
        if x is None or y is None
        else pg.PlotDataItem(x, y, pen=pen, antialias=False)
    )
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    return curve
