"""The pictures of the QA report: a stored feature (and its previous version) → PNG bytes.

Which kind of lane a feature is follows its output meta, as the window's plots decide it: bin
centres make an image (spectrogram, mel, chroma), the widths ``min, max`` a waveform band
(peaks), anything else a line of its first value per frame (rms, centroid, f0 of pitch) on the
first channel. Drawing is :mod:`.thumbnails`, encoding :mod:`.png`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from diagnostics_app.core import thumbnails as th
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.png import encode_png
from diagnostics_app.core.store import LoadedFeature


@dataclass(frozen=True)
class Picture:
    """One PNG of the report, with what it shows (its alt text)."""

    png: bytes
    alt: str
    width: int
    height: int


def lane_kind(meta: OutputMeta) -> th.Kind:
    if meta.bins and meta.width > 1:
        return "image"
    if tuple(meta.width_names[:2]) == ("min", "max"):
        return "band"
    return "line"


def lane_duration(*features: LoadedFeature) -> float:
    """The seconds a lane's picture spans: to the end of the last frame of the longest."""
    ends = [float(f.times[-1]) for f in features if len(f.times)]
    steps = [f.meta.frame_step or 0.0 for f in features]
    return max([*ends, 0.0]) + max([*steps, 0.0])


def _first(feature: LoadedFeature) -> np.ndarray:
    """Channel 0, first value of each frame (f0 of pitch, the value of rms…)."""
    return feature.data[:, 0, 0]


def _picture(pixels: np.ndarray, alt: str) -> Picture:
    return Picture(encode_png(pixels), alt, pixels.shape[1], pixels.shape[0])


def current_picture(feature: LoadedFeature, what: str) -> Picture:
    """The lane of one stored feature."""
    duration = lane_duration(feature)
    kind = lane_kind(feature.meta)
    if kind == "image":
        values = feature.data[:, 0, :]
        limits = th.robust_limits(_sampled_frames(values, feature.times, duration))
        pixels = th.draw_image(values, feature.times, duration, limits, rows=_rows(feature.meta))
        return _picture(pixels, what)
    pixels = th.canvas(th.LINE_HEIGHT)
    if kind == "band":
        lo, hi = feature.data[:, 0, 0], feature.data[:, 0, 1]
        limits = th.value_limits(_sampled(lo), _sampled(hi))
        th.draw_band(pixels, lo, hi, feature.times, duration, limits, th.NEW_COLOUR)
    else:
        values = _first(feature)
        limits = th.value_limits(_sampled(values))
        th.draw_line(pixels, values, feature.times, duration, limits, th.NEW_COLOUR)
    return _picture(pixels, what)


def comparison_pictures(
    old: LoadedFeature,
    new: LoadedFeature,
    ranges: Sequence[tuple[float, float]],
    what: str,
) -> list[Picture]:
    """Old vs new: one overlay for a line or band (old grey under new blue), or old, new and
    their difference (diverging colours) for an image; the differing time ranges in red."""
    duration = lane_duration(old, new)
    if lane_kind(new.meta) != "image" or lane_kind(old.meta) != "image":
        pixels = th.canvas(th.LINE_HEIGHT)
        if lane_kind(new.meta) == "band" and lane_kind(old.meta) == "band":
            parts = [
                (f, f.data[:, 0, 0], f.data[:, 0, 1]) for f in (old, new)
            ]  # (feature, min, max)
            limits = th.value_limits(*(_sampled(a) for _, lo, hi in parts for a in (lo, hi)))
            for (f, lo, hi), colour in zip(parts, (th.OLD_COLOUR, th.NEW_COLOUR), strict=True):
                th.draw_band(pixels, lo, hi, f.times, duration, limits, colour)
        else:
            limits = th.value_limits(_sampled(_first(old)), _sampled(_first(new)))
            for f, colour in ((old, th.OLD_COLOUR), (new, th.NEW_COLOUR)):
                th.draw_line(pixels, _first(f), f.times, duration, limits, colour)
        th.mark_ranges(pixels, ranges, duration)
        return [_picture(pixels, f"{what}: previous (grey) and current (blue)")]
    old_v, new_v = old.data[:, 0, :], new.data[:, 0, :]
    limits = th.robust_limits(
        _sampled_frames(old_v, old.times, duration), _sampled_frames(new_v, new.times, duration)
    )  # one colour scale for both: the same colour is the same value
    h, w = th.IMAGE_HEIGHT, th.WIDTH
    pictures = []
    for values, f, label in ((old_v, old, "previous"), (new_v, new, "current")):
        pixels = th.draw_image(values, f.times, duration, limits, rows=_rows(f.meta))
        th.mark_ranges(pixels, ranges, duration)
        pictures.append(_picture(pixels, f"{what}: {label}"))
    if old_v.shape[1] == new_v.shape[1]:
        rows = _rows(new.meta)
        diff = th.image_grid(new_v, new.times, duration, h, w, rows) - th.image_grid(
            old_v, old.times, duration, h, w, rows
        )
        finite = diff[np.isfinite(diff)]
        span = float(np.max(np.abs(finite))) if finite.size else 0.0
        span = span if span > 0 else 1.0
        pixels = th.colour_map((diff + span) / (2 * span), diverging=True)
        th.mark_ranges(pixels, ranges, duration)
        pictures.append(_picture(pixels, f"{what}: current − previous (±{span:.3g})"))
    return pictures


def _rows(meta: OutputMeta) -> np.ndarray | None:
    """Log-frequency rows for a feature whose bins are frequencies (spectrogram, mel)."""
    return th.log_rows(meta.bins, th.IMAGE_HEIGHT) if meta.bin_unit == "Hz" else None


def _sampled_frames(values: np.ndarray, times: np.ndarray, duration: float) -> np.ndarray:
    """The frames an image picture shows (one per pixel column): its colour range is theirs,
    and a long memory-mapped feature is not read whole for it."""
    return np.asarray(values[_column_frames(times, duration)], np.float64)


def _column_frames(times: np.ndarray, duration: float) -> np.ndarray:
    n = len(times)
    if n == 0:
        return np.zeros(0, np.intp)
    centres = (np.arange(th.WIDTH) + 0.5) / th.WIDTH * (duration if duration > 0 else 1.0)
    return np.unique(np.clip(np.searchsorted(times, centres), 0, n - 1))


def _sampled(values: np.ndarray, most: int = 200_000) -> np.ndarray:
    """Evenly chosen values for the colour or y range (a long memory map is not read whole)."""
    step = max(1, len(values) // most)
    return np.asarray(values[::step], np.float64)
