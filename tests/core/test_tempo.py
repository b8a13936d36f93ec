"""The tempo map: validation of the project file's list, and the beat grid it defines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics_app.core.errors import ProjectError
from diagnostics_app.core.tempo import DEFAULT_BPM, TempoMap, TempoSegment


def test_absent_means_120_bpm_throughout() -> None:
    tempo = TempoMap.from_json(None)
    assert tempo == TempoMap()
    assert tempo.segments == (TempoSegment(0.0, DEFAULT_BPM),)
    assert DEFAULT_BPM == 120.0


def test_round_trip() -> None:
    items = [{"time": 0.0, "bpm": 120.0}, {"time": 30.0, "bpm": 90.0}, {"time": 61.5, "bpm": 174.0}]
    tempo = TempoMap.from_json(items)
    assert tempo.to_json() == items
    assert TempoMap.from_json(tempo.to_json()) == tempo


def test_integers_are_accepted_as_numbers() -> None:
    tempo = TempoMap.from_json([{"time": 0, "bpm": 100}, {"time": 2, "bpm": 60}])
    assert tempo.segments == (TempoSegment(0.0, 100.0), TempoSegment(2.0, 60.0))
    assert all(isinstance(s.time, float) and isinstance(s.bpm, float) for s in tempo.segments)


BAD: list[tuple[Any, str]] = [
    ({"time": 0, "bpm": 120}, "tempo_map: expected a non-empty list"),
    ([], "tempo_map: expected a non-empty list"),
    ("120", "tempo_map: expected a non-empty list"),
    ([120], "tempo_map[0]: expected an object with time and bpm"),
    ([{"time": 0.0, "bpm": 120}, [1, 2]], "tempo_map[1]: expected an object"),
    ([{"bpm": 120}], "tempo_map[0].time: expected seconds >= 0, got None"),
    ([{"time": 0}], "tempo_map[0].bpm: expected a tempo > 0, got None"),
    ([{"time": -1.0, "bpm": 120}], "tempo_map[0].time: expected seconds >= 0, got -1.0"),
    ([{"time": math.nan, "bpm": 120}], "tempo_map[0].time: expected seconds >= 0, got nan"),
    ([{"time": math.inf, "bpm": 120}], "tempo_map[0].time: expected seconds >= 0, got inf"),
    ([{"time": "0", "bpm": 120}], "tempo_map[0].time: expected seconds >= 0, got '0'"),
    ([{"time": False, "bpm": 120}], "tempo_map[0].time: expected seconds >= 0, got False"),
    ([{"time": 0, "bpm": 0}], "tempo_map[0].bpm: expected a tempo > 0, got 0"),
    ([{"time": 0, "bpm": -90.0}], "tempo_map[0].bpm: expected a tempo > 0, got -90.0"),
    ([{"time": 0, "bpm": math.nan}], "tempo_map[0].bpm: expected a tempo > 0, got nan"),
    ([{"time": 0, "bpm": math.inf}], "tempo_map[0].bpm: expected a tempo > 0, got inf"),
    ([{"time": 0, "bpm": True}], "tempo_map[0].bpm: expected a tempo > 0, got True"),
    ([{"time": 0, "bpm": "fast"}], "tempo_map[0].bpm: expected a tempo > 0, got 'fast'"),
    (
        [{"time": 0, "bpm": 120}, {"time": 10, "bpm": 90}, {"time": 10, "bpm": 100}],
        "tempo_map[2].time: 10 is not after the previous segment's 10.0",
    ),
    (
        [{"time": 0, "bpm": 120}, {"time": 10, "bpm": 90}, {"time": 5, "bpm": 100}],
        "tempo_map[2].time: 5 is not after the previous segment's 10.0",
    ),
    (
        [{"time": 1.5, "bpm": 120}],
        "tempo_map[0].time: the first segment must start at 0, not 1.5",
    ),
    (
        [{"time": 0, "bpm": 120}, {"time": 4, "bpm": 0.0}],
        "tempo_map[1].bpm: expected a tempo > 0, got 0.0",
    ),
]


@pytest.mark.parametrize(("items", "message"), BAD, ids=lambda v: repr(v)[:40])
def test_bad_tempo_map_is_a_project_error_naming_the_entry(items: Any, message: str) -> None:
    with pytest.raises(ProjectError) as exc:
        TempoMap.from_json(items)
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


def test_where_names_the_field() -> None:
    with pytest.raises(ProjectError, match=r"^project\.tempo_map\[1\]\.bpm: "):
        TempoMap.from_json([{"time": 0, "bpm": 1}, {"time": 1, "bpm": -1}], "project.tempo_map")


# --- the beat grid ---------------------------------------------------------------------------


def test_constant_tempo_grid() -> None:
    tempo = TempoMap()
    np.testing.assert_allclose(tempo.beat_times(2.0), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(tempo.beat_times(2.0, 4), np.arange(16) * 0.125)
    np.testing.assert_allclose(tempo.beat_times(2.01), [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(tempo.beat_times(0.1), [0.0])
    assert tempo.beat_times(0.0).size == 0


def test_each_segment_restarts_the_grid_at_its_start() -> None:
    tempo = TempoMap.from_json([{"time": 0, "bpm": 120}, {"time": 1.2, "bpm": 60}])
    # 120 bpm: 0, 0.5, 1.0; then 60 bpm from 1.2: 1.2, 2.2, 3.2
    np.testing.assert_allclose(tempo.beat_times(4.0), [0.0, 0.5, 1.0, 1.2, 2.2, 3.2])
    np.testing.assert_allclose(tempo.beat_times(2.0, 2), [0.0, 0.25, 0.5, 0.75, 1.0, 1.2, 1.7])


def test_segment_boundary_on_a_beat_gives_no_duplicate() -> None:
    tempo = TempoMap.from_json([{"time": 0, "bpm": 120}, {"time": 1.0, "bpm": 90}])
    np.testing.assert_allclose(tempo.beat_times(2.4), [0.0, 0.5, 1.0, 1.0 + 2 / 3, 1.0 + 4 / 3])


def test_segments_after_the_end_are_ignored() -> None:
    tempo = TempoMap.from_json([{"time": 0, "bpm": 60}, {"time": 30, "bpm": 200}])
    np.testing.assert_allclose(tempo.beat_times(3.0), [0.0, 1.0, 2.0])


def test_segment_of_non_dividing_tempo() -> None:
    """0.7 s at 97.5 bpm (step 0.6154 s): the grid stops before the next segment."""
    tempo = TempoMap.from_json([{"time": 0, "bpm": 97.5}, {"time": 0.7, "bpm": 143}])
    times = tempo.beat_times(1.5)
    np.testing.assert_allclose(times, [0.0, 60 / 97.5, 0.7, 0.7 + 60 / 143])


def test_beats_mark_bar_starts_in_four_four() -> None:
    beats = list(TempoMap().beats(4.0))
    assert [t for t, _ in beats] == pytest.approx([0.5 * i for i in range(8)])
    assert [bar for _, bar in beats] == [True, False, False, False] * 2


segments_strategy = st.lists(
    st.tuples(
        st.floats(0.05, 20.0, allow_nan=False),  # gap to the previous segment, s
        st.floats(20.0, 300.0, allow_nan=False),  # bpm
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    segments=segments_strategy,
    duration=st.floats(0.0, 60.0, allow_nan=False),
    subdivision=st.integers(1, 16),
)
def test_beat_grid_properties(
    segments: list[tuple[float, float]], duration: float, subdivision: int
) -> None:
    """For any map: strictly increasing times in [0, duration); each segment's grid starts at
    the segment's start and steps by 60 / bpm / subdivision up to the next segment (or the
    end), leaving no gap of a whole step."""
    items = []
    t = 0.0
    for i, (gap, bpm) in enumerate(segments):
        t = 0.0 if i == 0 else t + gap
        items.append({"time": t, "bpm": bpm})
    tempo = TempoMap.from_json(items)
    times = tempo.beat_times(duration, subdivision)
    assert np.all(np.diff(times) > 0)
    assert np.all((times >= 0) & (times < duration))
    for i, seg in enumerate(tempo.segments):
        end = min(tempo.segments[i + 1].time if i + 1 < len(tempo.segments) else duration, duration)
        mine = times[(times >= seg.time - 1e-12) & (times < end)]
        if seg.time >= duration:
            assert mine.size == 0
            continue
        step = 60.0 / seg.bpm / subdivision
        assert mine.size >= 1
        assert mine[0] == seg.time
        np.testing.assert_allclose(np.diff(mine), step, rtol=1e-9)
        assert mine[-1] + step >= end - 1e-6  # nothing missing before the end


def test_a_subdivision_starting_just_before_the_end_counts() -> None:
    """Every subdivision that begins before the end is listed, however close to it."""
    np.testing.assert_array_equal(TempoMap().beat_times(1e-12), [0.0])
    tempo = TempoMap.from_json([{"time": 0, "bpm": 120}, {"time": 1.0, "bpm": 60}])
    np.testing.assert_allclose(tempo.beat_times(1.0 + 1e-12), [0.0, 0.5, 1.0])


def test_an_absurd_tempo_is_a_failed_row_not_an_internal_error(tmp_path: Path) -> None:
    """bpm 1e10 is valid JSON and > 0, but its beat grid would not fit in memory: the rows that
    need it fail with a message naming the tempo (the pass is the unit: its other calculators
    fail with it, and the next analysis after a fix recomputes them)."""
    from diagnostics_app.core.calculators.registry import Registry
    from diagnostics_app.core.session import Session
    from tests.core.project_factory import write_project, write_tone

    write_tone(tmp_path / "a.wav", 1.0)
    project = write_project(
        tmp_path,
        {
            "name": "Fast",
            "tempo_map": [{"time": 0.0, "bpm": 1e10}],
            "sources": [{"id": "a", "path": "a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [{"feature": "beat_rms"}, {"feature": "rms"}],
                }
            ],
        },
    )
    with Session.open(project, Registry.builtin()) as session:
        session.enqueue(session.plan())
        results = {r.batch.calculators: r for r in session.runner.run_all()}
        rows = {r.key.feature: r for r in session.diagnose().rows}
    assert rows["beat_rms"].state == "failed"
    message = rows["beat_rms"].message or ""
    assert "1e+10 BPM" in message and "too fast" in message, message
    assert all(r.status == "failed" for r in results.values())
