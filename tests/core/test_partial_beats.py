"""Partial recomputation of beat_rms (core.engine_window): after a tempo edit, the frames from
the first moved segment on; after an audio edit, the segments the edit overlaps. The old output
with them spliced in equals a full recomputation, values and times, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from diagnostics_app.core.audio import read_info
from diagnostics_app.core.engine import PassPlan
from diagnostics_app.core.engine_window import (
    recompute_frames,
    tempo_changed_from,
    wanted_frames,
)
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.ranges import changed_ranges
from diagnostics_app.core.tempo import TempoMap, TempoSegment
from tests.core import audio_factory as af
from tests.core.partial_support import (
    KINDS,
    assert_spliced_equals_full,
    calculators,
    digests,
    full,
)
from tests.core.ranges_edits import EDITS, apply_edit

# --- tempo edits (beat_rms) ----------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**16),
    change_at=st.one_of(st.just(None), st.just(0.0), st.floats(0.3, 4.5)),
    bpm=st.floats(60.0, 200.0),
    subdivision=st.sampled_from([1, 2, 4]),
    kind=st.sampled_from(sorted(KINDS)),
    mode=st.sampled_from(["mix", "per_channel"]),
    decode=st.sampled_from([1000, 4096, 1 << 17]),
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_a_tempo_edit_recomputes_the_beats_from_the_change(
    tmp_path: Path,
    seed: int,
    change_at: float | None,
    bpm: float,
    subdivision: int,
    kind: str,
    mode: str,
    decode: int,
) -> None:
    rate = 16_000
    rng = np.random.default_rng(seed)
    path = af.write(
        tmp_path / f"a.{kind}", rng.uniform(-0.5, 0.5, (5 * rate, 2)), rate, *KINDS[kind]
    )
    params = resolve_params({"beat_subdivision": subdivision, "channel_mode": mode})
    (beats,) = calculators("core.beats")
    old_tempo = TempoMap((TempoSegment(0.0, 120.0), TempoSegment(2.5, 90.0)))
    if change_at is None:  # the same map: every frame kept
        new_tempo = old_tempo
    elif change_at == 0.0:
        new_tempo = TempoMap((TempoSegment(0.0, bpm),))
    else:
        new_tempo = TempoMap((TempoSegment(0.0, 120.0), TempoSegment(change_at, bpm)))
    n = read_info(path).frames
    old = full(path, [beats], params, tempo=old_tempo, block_frames=decode)
    new = full(path, [beats], params, tempo=new_tempo, block_frames=decode)
    first = tempo_changed_from(beats, params, rate, n, old_tempo, new_tempo)
    n_new = len(new[beats.id]["beat_rms"].data)
    kept = (
        "none"
        if first is None
        else "all"
        if first == len(old[beats.id]["beat_rms"].data)
        else "some"
    )
    event(f"kept frames: {kept}")
    if first is None:  # nothing kept: the very first segment differs
        assert not np.array_equal(
            old[beats.id]["beat_rms"].times[:1], new[beats.id]["beat_rms"].times[:1]
        ) or not np.array_equal(
            old[beats.id]["beat_rms"].data[:1], new[beats.id]["beat_rms"].data[:1]
        )
        return
    wanted = {beats.id: ((first, n_new - 1),) if first < n_new else ()}
    block = 4096
    result = recompute_frames(
        PassPlan(str(path), params, new_tempo, (beats,)),
        wanted,
        expected=digests(path, block),
        block_frames=decode,
    )
    assert result.n_frames[beats.id]["beat_rms"] == n_new
    assert_spliced_equals_full(old, new, result)
    starts = np.round(new[beats.id]["beat_rms"].times * rate).astype(int)
    if first < n_new:  # decoded from the first recomputed segment's block on
        assert result.decoded == n - starts[first] // block * block


def test_tempo_reach_edges() -> None:
    (beats,) = calculators("core.beats")
    params = resolve_params({"beat_subdivision": 1})
    a = TempoMap((TempoSegment(0.0, 120.0), TempoSegment(3.0, 100.0)))
    b = TempoMap((TempoSegment(0.0, 120.0), TempoSegment(3.0, 140.0)))
    n = 8000 * 10
    # 120 BPM: beats every 0.5 s; 3.0 s is beat 6, whose segment [3.0, 3.6) becomes
    # [3.0, 3.43): frames 0-5 are kept
    assert tempo_changed_from(beats, params, 8000, n, a, b) == 6
    assert tempo_changed_from(beats, params, 8000, n, a, TempoMap()) == 6
    # unchanged: every frame is kept (the frame count)
    assert tempo_changed_from(beats, params, 8000, n, a, a) == len(a.beat_times(10.0))
    # the first segment already ends elsewhere: nothing kept
    assert (
        tempo_changed_from(beats, params, 8000, n, a, TempoMap((TempoSegment(0.0, 60.0),))) is None
    )
    (rms,) = calculators("core.rms")
    with pytest.raises(ValueError, match=r"core\.rms does not read the tempo map"):
        tempo_changed_from(rms, params, 8000, 8000, a, b)


# --- audio edits (beat_rms) ----------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    edit=st.sampled_from(EDITS),
    kind=st.sampled_from(sorted(KINDS)),
    channels=st.sampled_from([1, 2]),
    mode=st.sampled_from(["mix", "per_channel"]),
    subdivision=st.sampled_from([1, 2, 4]),
    bpm=st.floats(60.0, 300.0),
    block=st.sampled_from([2048, 4096]),
    decode=st.sampled_from([1000, 4096, 1 << 17]),
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_an_audio_edit_recomputes_the_segments_it_touches(
    tmp_path: Path,
    seed: int,
    edit: str,
    kind: str,
    channels: int,
    mode: str,
    subdivision: int,
    bpm: float,
    block: int,
    decode: int,
) -> None:
    rate = 8000
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20_000, 50_000))
    original = rng.uniform(-0.5, 0.5, (n, channels))
    edited = apply_edit(original, edit, rng)
    old_path, new_path = tmp_path / f"old.{kind}", tmp_path / f"new.{kind}"
    af.write(old_path, original, rate, *KINDS[kind])
    af.write(new_path, edited, rate, *KINDS[kind])
    params = resolve_params({"beat_subdivision": subdivision, "channel_mode": mode})
    tempo = TempoMap((TempoSegment(0.0, bpm), TempoSegment(1.7, 97.0)))
    (beats,) = calculators("core.beats")
    old_d, new_d = digests(old_path, block), digests(new_path, block)
    spans = changed_ranges(old_d, new_d)
    assert spans is not None
    old = full(old_path, [beats], params, tempo=tempo, block_frames=decode)
    new = full(new_path, [beats], params, tempo=tempo, block_frames=decode)
    n_new = len(new[beats.id]["beat_rms"].data)
    frames = read_info(new_path).frames
    wanted = wanted_frames(beats, params, rate, spans, n_new, tempo=tempo, n_samples=frames)
    assert wanted is not None and wanted  # every edit changes some segment
    assert wanted_frames(beats, params, rate, spans, n_new) is None  # without the map: whole
    result = recompute_frames(
        PassPlan(str(new_path), params, tempo, (beats,)),
        {beats.id: wanted},
        expected=new_d,
        block_frames=decode,
    )
    assert_spliced_equals_full(old, new, result)
    event(f"decoded {'all' if result.decoded == result.total else 'part'}")


def test_audio_reach_of_the_beats() -> None:
    """Frame k reads [bounds[k], bounds[k + 1]); the last frame reaches past the end."""
    (beats,) = calculators("core.beats")
    params = resolve_params({"beat_subdivision": 1})
    tempo = TempoMap((TempoSegment(0.0, 60.0),))  # a frame per second: bounds 0, 8000, ...
    n = 8000 * 5 + 100  # frames 0-5, the last one 100 samples long

    def reach(*spans: tuple[int, int]) -> tuple[tuple[int, int], ...]:
        return beats.audio_reach(params, 8000, n, tempo, spans)

    assert reach((8000, 8001)) == ((1, 1),)
    assert reach((7999, 8001)) == ((0, 1),)
    assert reach((100, 200), (16_100, 16_200)) == ((0, 0), (2, 2))
    assert reach((100, 200), (8000, 8001)) == ((0, 1),)  # touching frames merge
    assert reach((n, n + 500)) == ((5, 5),)  # a truncation: the new last frame
    assert reach((39_000, 41_000)) == ((4, 5),)


@pytest.mark.parametrize("new_length", [9 * 2048, 10 * 2048 + 900])
def test_a_length_change_on_a_block_boundary(tmp_path: Path, new_length: int) -> None:
    """The old file ends on a digest block's edge (or the new one does): the changed range
    starts at the shorter end, and the last frame of the new grid, whose segment ends at the
    file's end, is recomputed (a truncation's splice also drops the old tail)."""
    rng = np.random.default_rng(5)
    longer = rng.uniform(-0.5, 0.5, (max(new_length, 10 * 2048), 1))
    old_path = af.write(tmp_path / "old.wav", longer[: 10 * 2048], 8000)
    new_path = af.write(tmp_path / "new.wav", longer[:new_length], 8000)
    params = resolve_params({"beat_subdivision": 2})
    tempo = TempoMap((TempoSegment(0.0, 113.0),))
    (beats,) = calculators("core.beats")
    old_d, new_d = digests(old_path, 2048), digests(new_path, 2048)
    spans = changed_ranges(old_d, new_d)
    assert spans is not None and spans[0][0] == min(new_length, 10 * 2048)
    new = full(new_path, [beats], params, tempo=tempo)
    n_new = len(new[beats.id]["beat_rms"].data)
    wanted = wanted_frames(beats, params, 8000, spans, n_new, tempo=tempo, n_samples=new_length)
    assert wanted is not None and wanted[-1][1] == n_new - 1
    result = recompute_frames(
        PassPlan(str(new_path), params, tempo, (beats,)), {beats.id: wanted}, expected=new_d
    )
    assert_spliced_equals_full(full(old_path, [beats], params, tempo=tempo), new, result)
