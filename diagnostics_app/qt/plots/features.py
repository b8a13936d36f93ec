"""Feature lanes: what the plot area is given (:class:`FeaturePlot`) and how each kind of
feature is turned into pyqtgraph items.

Kinds (:func:`lane_kind`):

- ``line``: one value per frame (rms, centroid, onset): one curve per channel, with peak
  downsampling and clip-to-view so a million frames cost only what the screen can show.
- ``steps``: explicit, non-uniform frame times (``meta.frame_step is None``, e.g. beat_rms):
  frame ``k`` holds from ``times[k]`` to ``times[k + 1]`` (the last to the end of the source),
  drawn as a step line.
- ``pitch``: width 2, f0 and confidence. f0 (Hz) is the lane's curve on the left axis, drawn
  only where the frame is *voiced* (:func:`voiced`: YIN found a trough under its threshold,
  which is what the pitch calculator's confidence says): unvoiced frames, and silence, are
  gaps in the curve, never a wall at ``fmax``. The confidence (0..1) is a second, thin grey
  curve in its own view with its own right axis: it shows how sure each frame is, including
  the unvoiced ones the f0 curve leaves out.
- ``image``: bins (``meta.bins``) × frames (spectrogram, mel, chroma): see :mod:`.images`
  (frequency scale, colour range and map per lane, :mod:`.lane_style`).

A feature without data (:func:`pending_plot`), or without frames, is a *placeholder* lane: no
scales at all, only a centred text that says why (:attr:`LaneData.placeholder`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from diagnostics_app.core.axes import complete_names
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.params import PARAMS

# the image half lives in .images; re-exported here, where callers found it
from diagnostics_app.qt.plots.images import MAX_IMAGE_COLUMNS as MAX_IMAGE_COLUMNS
from diagnostics_app.qt.plots.images import ImageView, prepare_image
from diagnostics_app.qt.plots.images import LaneImage as LaneImage
from diagnostics_app.qt.plots.images import color_lut as color_lut
from diagnostics_app.qt.plots.images import pool_columns as pool_columns
from diagnostics_app.qt.plots.images import render_rgb as render_rgb
from diagnostics_app.qt.plots.lane_style import LaneStyle, book

LaneKind = Literal["line", "steps", "pitch", "image"]

LINE_COLORS = ((95, 211, 141), (224, 123, 216), (127, 178, 255), (255, 140, 105))
CONFIDENCE_COLOR = (190, 190, 190, 110)  # dim: the f0 curve is what the lane is about
STALE_COLOR = "#ffb000"  # amber: lane titles and borders of stale features


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
    calculator: str = ""  # the row's calculator id: with the feature, the lane's style key
    reason: str = ""  # why there is no data (a pending plot's placeholder text)
    params: Mapping[str, Any] = field(default_factory=dict)  # the row's parameters

    @property
    def style_key(self) -> str:
        """What the lane's :class:`~.lane_style.LaneStyle` is remembered by."""
        return f"{self.calculator}:{self.feature}" if self.calculator else self.feature

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
    reason: str = "",
    calculator: str = "",
) -> FeaturePlot:
    """A placeholder for a requested feature without data; ``spec_kind`` is its calculator's
    :attr:`FeatureSpec.kind` (``image`` or ``line``); ``reason`` why there is none (the row's
    message)."""
    kind: LaneKind = "image" if spec_kind == "image" else "pitch" if feature == "pitch" else "line"
    meta = OutputMeta(feature, 1, 1, unit=unit, bin_unit=bin_unit)
    empty = np.zeros((0, 1, 1), np.float32)
    return FeaturePlot(
        label,
        feature,
        empty,
        np.zeros(0),
        meta,
        state=state,
        pending=kind,
        calculator=calculator,
        reason=reason,
    )


def placeholder_text(feature: str, state: str, reason: str = "") -> str:
    """The centred text of a lane without data: what is missing and why."""
    what = {
        "queued": f"{feature}: queued, waiting for a worker",
        "running": f"{feature}: being calculated",
        "failed": f"{feature} failed",
        "invalid": f"{feature}: invalid request",
    }.get(state, f"{feature} not calculated")
    return f"{what} — {reason}" if reason else what


def trough_threshold(params: Mapping[str, Any]) -> float:
    """The YIN threshold a pitch row was computed with (the parameter's default if absent)."""
    value = params.get("trough_threshold")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    default = PARAMS["trough_threshold"].default
    return float(default) if isinstance(default, int | float) else 0.1


def voiced(f0: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    """Voiced frames, by the pitch calculator's own rule: YIN takes the first trough of the
    normalised difference d' below ``threshold`` and its confidence is ``1 - d'``, so a
    frame is voiced when its confidence is above ``1 - threshold``; below it YIN found no
    trough and fell back to the global minimum (often at ``fmax``), and silence has
    confidence 0."""
    return np.isfinite(f0) & (f0 > 0) & (confidence > 1.0 - threshold)


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
    """y range of a pitch lane: f0 of the confident frames (≥ 0.5), else of all frames
    (NaN frames, left out as unvoiced, count as neither)."""
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
    placeholder: str | None = None  # no data: the text shown instead of scales
    y_tip: str = ""  # the long form of ``y_label`` (the axis' tooltip)
    style_key: str = ""  # image lanes: what their LaneStyle is remembered by
    source: FeaturePlot | None = None  # image lanes: what to prepare again when restyled
    voicing: float | None = None  # pitch lanes: the confidence above which f0 is drawn


def prepare_lanes(
    item: FeaturePlot, duration: float, style: LaneStyle | None = None
) -> tuple[LaneData, ...]:
    """The lanes of ``item`` in a plot of ``duration`` seconds (steps are held to its end):
    one per channel for images and pitch, one with a curve per channel and width otherwise.
    The expensive numpy work of a lane (max-pooling and resampling images, contiguous float32
    series, step polylines, value ranges) happens here. Image lanes are drawn as ``style``
    says (None: as the style book remembers for the item's style key)."""
    kind = item.kind
    meta = item.meta
    n = item.frames
    names = item.channel_names()
    unit = meta.unit or "value"
    base = (item.label, item.feature)
    if item.pending is not None or n == 0:
        text = (
            placeholder_text(item.feature, item.state, item.reason)
            if item.pending is not None
            else f"{item.feature}: no frames"
        )
        return (
            LaneData(
                (*base, 0),
                kind,
                item.label,
                (0.0, 1.0),
                "",
                item.stale,
                item.state,
                bar_label=meta.unit or None,
                pending=item.pending is not None,
                placeholder=text,
                style_key=item.style_key,
            ),
        )
    stale, state = item.stale, item.state
    # steps are held to the end of the plot: the same data in a longer plot is other curves
    version = item.version if kind != "steps" or item.version is None else (item.version, duration)
    times = np.asarray(item.times[:n], np.float64)
    lanes: list[LaneData] = []
    if kind == "image":
        if style is None:
            style = book().get(item.style_key)
        for ch, name in enumerate(names):
            view = prepare_image(item, ch, style=style)
            title = item.label if len(names) == 1 else f"{item.label} · {name}"
            lo, h = view.rect[1], view.rect[3]
            lanes.append(
                LaneData(
                    (*base, ch),
                    kind,
                    title,
                    (lo, lo + h),
                    view.y_label,
                    stale,
                    state,
                    image=view,
                    bar_label=meta.unit or "level",
                    # another style draws the same data otherwise: not the same picture
                    version=None if version is None else (version, style),
                    y_tip=view.y_tip,
                    style_key=item.style_key,
                    source=item,
                )
            )
    elif kind == "pitch":
        threshold = trough_threshold(item.params)
        for ch, name in enumerate(names):
            f0 = np.ascontiguousarray(item.data[:n, ch, 0], np.float32)
            conf = np.ascontiguousarray(item.data[:n, ch, 1], np.float32)
            f0 = np.where(voiced(f0, conf, threshold), f0, np.float32(np.nan))
            title = item.label if len(names) == 1 else f"{item.label} · {name}"
            lanes.append(
                LaneData(
                    (*base, ch),
                    kind,
                    f"{title}  (f0 where voiced; grey: confidence, right axis)",
                    pitch_range(f0, conf),
                    unit,
                    stale,
                    state,
                    series=((times, f0), (times, conf)),
                    version=version,
                    voicing=1.0 - threshold,
                    y_tip=f"f0, {unit}: voiced frames only (confidence > {1 - threshold:g}, "
                    f"i.e. YIN's trough_threshold {threshold:g}; a higher trough_threshold "
                    "calls more frames voiced)",
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
                y_tip=f"{item.feature}, {unit}",
            )
        )
    return tuple(lanes)


def plot_duration(source_duration: float, items: Sequence[FeaturePlot]) -> float:
    """The time axis of a plot: the source's duration, or longer when a feature's last frame
    is later."""
    return max(
        [float(source_duration)] + [float(it.times[it.frames - 1]) for it in items if it.frames > 0]
    )


def line_pen(color: tuple[int, ...], stale: bool, width: float = 1.2) -> pg.QtGui.QPen:
    """Curve pen; stale data keeps its colour, translucent and dashed."""
    if stale:
        return pg.mkPen((*color[:3], 150), width=width, style=Qt.PenStyle.DashLine)
    return pg.mkPen(color, width=width)


def title_html(text: str, color: str, bold: bool) -> str:
    """A lane title's rich text (9 pt), as ``pyqtgraph.LabelItem.setText`` makes it."""
    argb = pg.mkColor(color).name(pg.QtGui.QColor.NameFormat.HexArgb)
    weight = "bold" if bold else "normal"
    return f"<span style='color: {argb}; font-size: 9pt; font-weight: {weight}'>{text}</span>"


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
