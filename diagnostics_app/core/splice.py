"""Frame splices: a feature's stored frames with some of them replaced, the unit of a partial
recomputation (issue 13: edit one second of a long file, recompute one second).

A :class:`FrameSplice` says "frames ``[first, first + removed)`` of the current data are
replaced by ``data``" (``len(data)`` may differ from ``removed``: appended or truncated audio,
a tempo change that re-segments the beats from some time on). Splices of one feature are given
in ascending order of ``first``, without overlap, in the frame indices of the data *before*
any of them applies. :func:`apply_splices` is the rule (the store composes its files by it; the
tests compare a partial recomputation with a full one through it).

Pure values and numpy only: the engine produces the frames, the store keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameSplice:
    """Frames ``[first, first + removed)`` of a feature's current data, replaced by ``data``
    (float32 ``(frames, channels, width)``); ``times``: the explicit frame times of ``data``
    for a feature stored with a times file (None for a uniform time axis)."""

    first: int
    removed: int
    data: np.ndarray
    times: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.first < 0 or self.removed < 0:
            raise ValueError(f"splice at frame {self.first} removing {self.removed} frames")
        if self.data.ndim != 3:
            raise ValueError(f"splice data of shape {self.data.shape}: (frames, channels, width)")
        if self.times is not None and self.times.shape != (len(self.data),):
            raise ValueError(f"splice times of shape {self.times.shape} for {len(self.data)}")

    @property
    def stop(self) -> int:
        """The first frame of the current data after the replaced ones."""
        return self.first + self.removed

    @property
    def growth(self) -> int:
        """Frames the splice adds to the length (negative: removes)."""
        return len(self.data) - self.removed


def check_splices(splices: Sequence[FrameSplice], frames: int) -> None:
    """Raise ValueError unless ``splices`` are ascending, disjoint and inside ``frames``."""
    end = 0
    for s in splices:
        if s.first < end:
            raise ValueError(f"splices out of order or overlapping at frame {s.first}")
        if s.stop > frames:
            raise ValueError(f"splice [{s.first}, {s.stop}) past the data's {frames} frames")
        end = s.stop


def spliced_length(frames: int, splices: Sequence[FrameSplice]) -> int:
    """The number of frames once ``splices`` are applied to ``frames`` frames."""
    return frames + sum(s.growth for s in splices)


def apply_splices(data: np.ndarray, splices: Sequence[FrameSplice]) -> np.ndarray:
    """``data`` (frames first) with ``splices`` applied: the one definition of a splice."""
    check_splices(splices, len(data))
    parts: list[np.ndarray] = []
    at = 0
    for s in splices:
        parts.append(data[at : s.first])
        parts.append(s.data.astype(data.dtype, copy=False))
        at = s.stop
    parts.append(data[at:])
    return np.concatenate(parts, axis=0) if parts else data[:0]


def apply_times(times: np.ndarray, splices: Sequence[FrameSplice]) -> np.ndarray:
    """Explicit frame ``times`` with ``splices`` applied (each splice must carry times)."""
    check_splices(splices, len(times))
    parts: list[np.ndarray] = []
    at = 0
    for s in splices:
        if s.times is None:
            raise ValueError(f"splice at frame {s.first} carries no times for a timed feature")
        parts.append(times[at : s.first])
        parts.append(s.times.astype(times.dtype, copy=False))
        at = s.stop
    parts.append(times[at:])
    return np.concatenate(parts)
