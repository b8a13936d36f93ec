"""The sides of a comparison (:mod:`diagnostics_app.core.compare`): a feature's layout, its
frame times and a reader of blocks of frames, from the store (current data or a previous
version), from arrays at hand, or from a ``.npy`` file laid out as a row's data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.files import printable, read_head
from diagnostics_app.core.store import FeatureStore, PreviousVersion, StoredEntry


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a feature's layout, its frame times (held whole), and a
    reader of frames ``[start, stop)`` as float32 ``(n, channels, width)``."""

    label: str
    meta: OutputMeta
    frames: int
    channels: int
    width: int
    times: np.ndarray
    read: Callable[[int, int], np.ndarray] = field(repr=False)


def side_of_entry(
    store: FeatureStore, entry: StoredEntry, feature: str, label: str = "current"
) -> Side:
    """A stored feature (StoreError if it has no such feature or its files are unreadable)."""
    stored = entry.features.get(feature)
    if stored is None:
        raise DiagnosticsError(f"{entry.key}: has no feature {feature!r}")
    times = store.load_times(entry, feature)

    def read(start: int, stop: int) -> np.ndarray:
        return store.load(entry, feature, mmap=True, frames=slice(start, stop)).data

    return Side(label, stored.meta, stored.frames, stored.channels, stored.width, times, read)


def side_of_previous(
    store: FeatureStore, version: PreviousVersion, label: str = "previous"
) -> Side:
    stored = version.feature
    times = store.load_previous_times(version)

    def read(start: int, stop: int) -> np.ndarray:
        return store.load_previous(version, mmap=True, frames=slice(start, stop)).data

    return Side(label, stored.meta, stored.frames, stored.channels, stored.width, times, read)


def side_of_array(
    meta: OutputMeta, data: np.ndarray, times: np.ndarray | None = None, label: str = "array"
) -> Side:
    """Values already at hand (an array or a memory map) ``(n, channels, width)``; ``times``
    default to the meta's uniform axis."""
    if data.ndim != 3:
        raise DiagnosticsError(
            f"{label}: values must be (frames, channels, width), got {data.shape}"
        )
    n = int(data.shape[0])
    if times is None:
        times = meta.frame_start + (meta.frame_step or 0.0) * np.arange(n, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (n,):
        raise DiagnosticsError(f"{label}: {len(times)} frame times for {n} frames")

    def read(start: int, stop: int) -> np.ndarray:
        return np.asarray(data[start:stop], dtype=np.float32)

    return Side(label, meta, n, int(data.shape[1]), int(data.shape[2]), times, read)


_NPY_MAGIC = b"\x93NUMPY"


def side_of_npy(path: str | Path, like: Side, label: str | None = None) -> Side:
    """A ``.npy`` file of numbers compared against ``like`` (a row's data): shaped
    ``(frames, channels, width)``, or ``(frames, width)`` / ``(frames,)`` when ``like`` has
    one channel (and one column); its frames are taken to lie on ``like``'s time axis when the
    counts match, else on ``like``'s uniform frame step. One-line errors name the file."""
    name = label or str(path)
    try:
        # checked first: np.load would block on a FIFO, read a device, or call any other file
        # "pickled data" (its guess when the magic bytes are missing)
        if read_head(path, len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise DiagnosticsError(
                f"{printable(path)}: not a readable .npy array: no NumPy header (not a .npy file)"
            )
        raw = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DiagnosticsError(f"{printable(path)}: no such file") from None
    except NotADirectoryError:
        raise DiagnosticsError(f"{printable(path)}: no such file (a parent is a file)") from None
    except (OSError, ValueError, EOFError) as exc:
        cause = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DiagnosticsError(f"{path}: not a readable .npy array: {cause}") from None
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in "fiub":
        what = getattr(raw, "dtype", type(raw).__name__)
        raise DiagnosticsError(f"{path}: holds {what}, not numbers")
    shape = raw.shape
    if raw.ndim == 1 and like.channels == 1 and like.width == 1:
        data = raw.reshape(-1, 1, 1)
    elif raw.ndim == 2 and like.channels == 1 and shape[1] == like.width:
        data = raw.reshape(shape[0], 1, shape[1])
    elif raw.ndim == 3 and shape[1:] == (like.channels, like.width):
        data = raw
    elif raw.ndim == 3 and shape[1] == like.channels and like.meta.bins:
        data = raw  # another bin count: compared on the common grid if bins can be matched
    else:
        raise DiagnosticsError(
            f"{path}: shape {shape} does not match the row's frames x {like.channels} "
            f"channel(s) x {like.width} column(s)"
        )
    n = int(data.shape[0])
    if n == 0 and like.frames:  # else "within tolerance": nothing differs in no frames
        raise DiagnosticsError(f"{path}: holds no frames, the row has {like.frames}")
    if n == like.frames:
        times = np.asarray(like.times, dtype=np.float64)
    elif like.meta.frame_step:
        times = like.meta.frame_start + like.meta.frame_step * np.arange(n, dtype=np.float64)
    else:
        raise DiagnosticsError(
            f"{path}: {n} frames, the row has {like.frames} with explicit frame times; "
            "cannot place them in time"
        )
    meta = like.meta
    if data.shape[2] != like.width:
        raise DiagnosticsError(
            f"{path}: {data.shape[2]} columns, the row has {like.width} (and the file has no "
            "bin centres to match them by)"
        )
    return side_of_array(meta, data, times, name)
