"""m:ss.mmm with zoom-adaptive precision, ruler tick steps and bar.beat positions."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics_app.core.tempo import TempoMap, TempoSegment
from diagnostics_app.core.timefmt import (
    BarBeat,
    bar_beat,
    decimals_for,
    format_time,
    time_step,
    time_ticks,
)


def test_format_time_precision() -> None:
    assert format_time(62.345, 0) == "1:02"
    assert format_time(62.345, 1) == "1:02.3"
    assert format_time(62.5, 2) == "1:02.50"
    assert format_time(62.345) == "1:02.345"
    assert format_time(59.9996) == "1:00.000"  # rounding carries into the minute
    assert format_time(3725.5, 1) == "62:05.5"  # minutes unbounded
    assert format_time(-1.0) == "0:00.000"


def test_decimals_follow_the_step() -> None:
    assert [decimals_for(s) for s in (60.0, 1.0, 0.5, 0.1, 0.05, 0.01, 0.002, 0.001)] == [
        0, 0, 1, 1, 2, 2, 3, 3,
    ]  # fmt: skip


def test_time_step_and_ticks() -> None:
    # 5 min 27 s on 1,000 px with labels >= 64 px apart: 30 s steps
    assert time_step(327.0, 1000.0, 64.0) == 30.0
    assert time_step(1.0, 1000.0, 64.0) == 0.1
    assert time_step(0.01, 1000.0, 64.0) == 0.001
    ticks = time_ticks(0.95, 1.32, 0.1)
    assert ticks == pytest.approx([1.0, 1.1, 1.2, 1.3])
    assert time_ticks(0.0, 60.0, 30.0) == pytest.approx([0.0, 30.0, 60.0])


def test_bar_beat_on_a_tempo_map() -> None:
    tempo = TempoMap((TempoSegment(0.0, 120.0), TempoSegment(8.0, 60.0)))
    beats = tempo.beat_times(20.0)
    assert bar_beat(0.0, beats) == BarBeat(1, 1, 0.0)
    assert bar_beat(0.75, beats) == BarBeat(1, 2, pytest.approx(0.5))
    assert bar_beat(2.0, beats) == BarBeat(2, 1, 0.0)  # 4 beats of 0.5 s
    assert bar_beat(9.0, beats) == BarBeat(5, 2, 0.0)  # 16 beats to 8 s, then 1 s beats
    assert bar_beat(0.75, beats).text() == "1.2"  # type: ignore[union-attr]
    assert bar_beat(0.75, beats).text(fraction=True) == "1.2.50"  # type: ignore[union-attr]
    assert bar_beat(25.0, beats) == BarBeat(9, 2, 0.0)  # past the grid: the last tempo goes on
    assert bar_beat(1.0, np.zeros(0)) is None
