"""The axes of feature data: what its channels are called and when its frames are.

Calculators name the channels of what they write, the store rebuilds frame times from a
uniform axis, the export writes both as column names and times, and the plots label lanes
and place frames: all by these functions, so a channel is called the same everywhere and a
frame sits at the same time in a plot as in an export.

A leaf of the core (numpy only), so that the store below the calculators can use it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

MIX: Final = "mix"  # the one channel of a mono mix (``channel_mode: mix``)


def channel_names(channels: int, mixed: bool = False) -> tuple[str, ...]:
    """The names of ``channels`` channels: ``("mix",)`` for a mono mix of the audio, else
    ``ch1``, ``ch2``, ... (also for a stereo file: the stored data of every entry says so, and
    a waveform and its feature lanes should not call one channel by two names)."""
    if mixed:
        return (MIX,)
    return tuple(f"ch{i + 1}" for i in range(channels))


def complete_names(names: Sequence[str], channels: int) -> tuple[str, ...]:
    """``names`` (e.g. a feature's stored ones) for exactly ``channels`` channels: cut, or
    completed by :func:`channel_names` for the channels it does not name."""
    given = tuple(names[:channels])
    return given + channel_names(channels)[len(given) :]


def frame_times(
    start: float, step: float | None, count: int, explicit: np.ndarray | None = None
) -> np.ndarray:
    """The times (seconds) of ``count`` frames: ``explicit`` ones (a feature without a uniform
    axis, e.g. beat_rms), else ``start + step * k``."""
    if explicit is not None:
        return np.asarray(explicit, dtype=np.float64)
    return start + (step or 0.0) * np.arange(count, dtype=np.float64)


def frame_step(step: float | None, times: np.ndarray) -> float:
    """Seconds between frames: the uniform ``step`` when there is one, else the median
    spacing of ``times`` (explicit times), else 1."""
    if step is not None and step > 0:
        return float(step)
    if times.shape[0] > 1:
        spacing = float(np.median(np.diff(times)))
        if spacing > 0:
            return spacing
    return 1.0
