"""The project's tempo map: segments of constant tempo, and the beat grid they define."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from diagnostics_app.core.errors import ProjectError

DEFAULT_BPM = 120.0


@dataclass(frozen=True)
class TempoSegment:
    time: float  # seconds where the segment starts
    bpm: float


MIN_STEP_S = 1e-4  # 0.1 ms between subdivisions: 600,000 BPM at one per beat


@dataclass(frozen=True)
class TempoMap:
    """Constant-tempo segments, sorted by start time; the first starts at 0."""

    segments: tuple[TempoSegment, ...] = (TempoSegment(0.0, DEFAULT_BPM),)

    @classmethod
    def from_json(
        cls, items: Sequence[Mapping[str, Any]] | None, where: str = "tempo_map"
    ) -> TempoMap:
        """Build from the project file's list; raises ProjectError naming the bad entry."""
        if items is None:
            return cls()
        if not isinstance(items, list) or not items:
            raise ProjectError(f"{where}: expected a non-empty list of {{time, bpm}} segments")
        segments: list[TempoSegment] = []
        for i, item in enumerate(items):
            here = f"{where}[{i}]"
            if not isinstance(item, Mapping):
                raise ProjectError(f"{here}: expected an object with time and bpm")
            time, bpm = item.get("time"), item.get("bpm")
            if (
                isinstance(time, bool)
                or not isinstance(time, int | float)
                or not math.isfinite(time)
                or time < 0
            ):
                raise ProjectError(f"{here}.time: expected seconds >= 0, got {time!r}")
            if (
                isinstance(bpm, bool)
                or not isinstance(bpm, int | float)
                or not math.isfinite(bpm)
                or bpm <= 0
            ):
                raise ProjectError(f"{here}.bpm: expected a tempo > 0, got {bpm!r}")
            if segments and time <= segments[-1].time:
                raise ProjectError(
                    f"{here}.time: {time} is not after the previous segment's {segments[-1].time}"
                )
            segments.append(TempoSegment(float(time), float(bpm)))
        if segments[0].time != 0.0:
            raise ProjectError(
                f"{where}[0].time: the first segment must start at 0, not {segments[0].time}"
            )
        return cls(tuple(segments))

    def to_json(self) -> list[dict[str, float]]:
        return [{"time": s.time, "bpm": s.bpm} for s in self.segments]

    def beat_times(self, duration: float, subdivision: int = 1) -> np.ndarray:
        """Start times (s) of every beat subdivision that begins before ``duration``.

        Raises ProjectError when a segment's subdivisions would be closer than
        :data:`MIN_STEP_S` (a bpm of 1e10 is valid JSON and > 0, but no tempo: its grid would
        not fit in memory); the row that needs the grid then fails with that message."""
        starts: list[np.ndarray] = []
        ends = [s.time for s in self.segments[1:]] + [max(duration, self.segments[-1].time)]
        offset = 0.0  # where the grid stands when a segment starts mid-subdivision: restart it
        for seg, end in zip(self.segments, ends, strict=True):
            step = 60.0 / seg.bpm / subdivision
            if step < MIN_STEP_S and seg.time < duration:
                raise ProjectError(
                    f"tempo_map: {seg.bpm:g} BPM at {seg.time:g} s is too fast to analyse "
                    f"(beat subdivisions {step:.3g} s apart; the limit is {MIN_STEP_S:g} s)"
                )
            start = seg.time + offset
            span = min(end, duration) - start
            # the tolerance drops a last subdivision that only rounding puts before the end
            # (the next segment starting on a beat); the segment's own start always counts
            n = 0 if span <= 0 else max(1, math.ceil(span / step - 1e-9))
            starts.append(start + step * np.arange(n))
        times = np.concatenate(starts) if starts else np.zeros(0)
        return times[times < duration]

    def beats(self, until: float) -> Iterable[tuple[float, bool]]:
        """(time, is_bar_start) for each beat before ``until``, assuming 4/4 (for plot grids)."""
        for i, t in enumerate(self.beat_times(until, 1)):
            yield float(t), i % 4 == 0
