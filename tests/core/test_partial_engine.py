"""Partial recomputation (core.engine_window): the old full output with the recomputed frames
spliced in (core.splice, the store's rule) equals a full recomputation on the new file, bit
for bit, for every bounded built-in and for beat_rms after a tempo edit; only the windows the
edit needs are decoded; a decoded block that is not what the digests say is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from diagnostics_app.core import engine
from diagnostics_app.core.audio import iter_blocks, read_info
from diagnostics_app.core.calculators.base import Calculator, declared_reach
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import CancelToken, FeatureResult, MemorySink, PassPlan, run_pass
from diagnostics_app.core.engine_window import (
    PartialResult,
    PartialUnsupported,
    WindowedFrames,
    recompute_frames,
    tempo_changed_from,
    wanted_frames,
)
from diagnostics_app.core.errors import Cancelled
from diagnostics_app.core.params import Params, resolve_params
from diagnostics_app.core.ranges import (
    BLOCK_FRAMES,
    BlockDigests,
    changed_ranges,
    digest_blocks,
    frame_count,
)
from diagnostics_app.core.splice import FrameSplice, apply_splices, apply_times
from diagnostics_app.core.tempo import TempoMap, TempoSegment
from tests.core import audio_factory as af
from tests.core.ranges_edits import EDITS, apply_edit

BOUNDED = (
    "core.peaks",
    "core.rms",
    "core.spectrogram",
    "core.mel",
    "core.chroma",
    "core.centroid",
    "core.pitch",
)
KINDS = {"wav": ("WAV", "PCM_16"), "float.wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_16")}
Outputs = dict[str, dict[str, FeatureResult]]


def calculators(*ids: str) -> tuple[Calculator, ...]:
    registry = Registry.builtin()
    return tuple(registry.get(i) for i in ids)


def full(path: Path, calcs: Sequence[Calculator], params: Params, **kw: Any) -> Outputs:
    sink = MemorySink()
    tempo = kw.pop("tempo", TempoMap())
    run_pass(PassPlan(str(path), params, tempo, tuple(calcs)), sink, **kw)
    return sink.results


def digests(path: Path, block: int) -> BlockDigests:
    info = read_info(path)
    return digest_blocks(iter_blocks(path), info.sample_rate, info.channels, block)


def splices(wins: Sequence[WindowedFrames], old_len: int, new_len: int) -> list[FrameSplice]:
    """The store's splices for recomputed ranges: each replaces the same frames of the old
    data, the one that runs to the new end replaces the old data to its end (a length change);
    a shorter file whose end no range reaches drops the old tail."""
    out = [FrameSplice(w.first, len(w.data), w.data, w.times) for w in wins]
    if old_len != new_len:
        if out and out[-1].first + len(out[-1].data) == new_len:
            last = out.pop()
            out.append(FrameSplice(last.first, old_len - last.first, last.data, last.times))
        else:
            out.append(FrameSplice(new_len, old_len - new_len, np.zeros((0, 1, 1), np.float32)))
    return out


def assert_spliced_equals_full(old: Outputs, new: Outputs, result: PartialResult) -> None:
    for cid, features in result.frames.items():
        for feature, wins in features.items():
            before, after = old[cid][feature], new[cid][feature]
            assert result.n_frames[cid][feature] == len(after.data), (cid, feature)
            assert result.metas[cid][feature] == after.meta, (cid, feature)
            cut = splices(wins, len(before.data), len(after.data))
            if cut and not cut[-1].data.size:  # a dropped tail: the width of the data
                cut[-1] = FrameSplice(cut[-1].first, cut[-1].removed, before.data[:0])
            got = apply_splices(before.data, cut)
            assert got.shape == after.data.shape, (cid, feature, got.shape, after.data.shape)
            assert np.array_equal(got, after.data, equal_nan=True), (
                cid,
                feature,
                np.flatnonzero(~np.all((got == after.data) | np.isnan(after.data), axis=(1, 2))),
            )
            if wins and wins[0].times is not None:
                np.testing.assert_array_equal(apply_times(before.times, cut), after.times)


def plan_wanted(
    calcs: Sequence[Calculator], params: Params, old_d: BlockDigests, new_d: BlockDigests
) -> dict[str, tuple[tuple[int, int], ...]]:
    """What the planner does: changed ranges -> wanted frames per calculator."""
    spans = changed_ranges(old_d, new_d)
    assert spans is not None
    out = {}
    for calc in calcs:
        reach = declared_reach(calc, params, new_d.sample_rate)
        assert reach is not None
        n_new = frame_count(reach, new_d.frames)
        ranges = wanted_frames(calc, params, new_d.sample_rate, spans, n_new)
        assert ranges is not None
        out[calc.id] = ranges
    return out


# --- random signals, random edits --------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    edit=st.sampled_from(EDITS),
    kind=st.sampled_from(sorted(KINDS)),
    channels=st.sampled_from([1, 2]),
    rate=st.sampled_from([8000, 11025, 16000]),
    hop=st.sampled_from([64, 100, 128, 700]),
    window=st.sampled_from([256, 512]),
    fft=st.sampled_from([None, 1024]),
    mode=st.sampled_from(["mix", "per_channel"]),
    block=st.sampled_from([2048, 4096]),
    decode=st.sampled_from([1000, 4096, 1 << 17]),
)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_spliced_partial_equals_full_for_every_bounded_builtin(
    tmp_path: Path,
    seed: int,
    edit: str,
    kind: str,
    channels: int,
    rate: int,
    hop: int,
    window: int,
    fft: int | None,
    mode: str,
    block: int,
    decode: int,
) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12_000, 40_000))
    original = rng.uniform(-0.5, 0.5, (n, channels)) * np.linspace(0.2, 1, n)[:, None]
    edited = apply_edit(original, edit, rng)
    old_path, new_path = tmp_path / f"old.{kind}", tmp_path / f"new.{kind}"
    af.write(old_path, original, rate, *KINDS[kind])
    af.write(new_path, edited, rate, *KINDS[kind])
    params = resolve_params(
        {
            "window_size": window,
            "hop_size": hop,
            "fft_size": fft,
            "peaks_block": 256,
            "channel_mode": mode,
        }
    )
    calcs = calculators(*BOUNDED)
    old_d, new_d = digests(old_path, block), digests(new_path, block)
    wanted = plan_wanted(calcs, params, old_d, new_d)
    result = recompute_frames(
        PassPlan(str(new_path), params, TempoMap(), calcs),
        wanted,
        expected=new_d,
        block_frames=decode,
    )
    old = full(old_path, calcs, params, block_frames=decode)
    new = full(new_path, calcs, params, block_frames=decode)
    assert_spliced_equals_full(old, new, result)
    assert result.total == new_d.frames and 0 < result.decoded <= result.total


# --- fixed cases at 48 kHz: what is decoded ------------------------------------------------------

SR = 48_000


@pytest.fixture(scope="module")
def long_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """22 s of 48 kHz stereo FLAC (17 digest blocks); an edit of one block's samples in the
    middle; a second edit, far away, of a few samples near the start."""
    d = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(7)
    n = 17 * BLOCK_FRAMES - 1234
    x = rng.uniform(-0.4, 0.4, (n, 2))
    one = x.copy()
    one[8 * BLOCK_FRAMES + 100 : 9 * BLOCK_FRAMES - 100] *= 0.5
    two = one.copy()
    two[70_000:70_010] = 0.0
    paths = (d / "old.flac", d / "one.flac", d / "two.flac")
    for path, data in zip(paths, (x, one, two), strict=True):
        af.write(path, data, SR)
    return paths


def test_a_one_block_edit_decodes_a_few_blocks(long_pair: tuple[Path, Path, Path]) -> None:
    old_path, new_path, _ = long_pair
    params = resolve_params()
    calcs = calculators(*BOUNDED)
    old_d, new_d = digests(old_path, BLOCK_FRAMES), digests(new_path, BLOCK_FRAMES)
    assert changed_ranges(old_d, new_d) == ((8 * BLOCK_FRAMES, 9 * BLOCK_FRAMES),)
    wanted = plan_wanted(calcs, params, old_d, new_d)
    result = recompute_frames(
        PassPlan(str(new_path), params, TempoMap(), calcs), wanted, expected=new_d
    )
    # the changed block and one block of context on each side (frames read across the edges)
    assert result.decoded == 3 * BLOCK_FRAMES
    assert result.total == 17 * BLOCK_FRAMES - 1234
    assert_spliced_equals_full(full(old_path, calcs, params), full(new_path, calcs, params), result)


def test_edits_far_apart_are_separate_windows(long_pair: tuple[Path, Path, Path]) -> None:
    old_path, _, new_path = long_pair
    params = resolve_params()
    calcs = calculators("core.peaks", "core.rms", "core.spectrogram")
    old_d, new_d = digests(old_path, BLOCK_FRAMES), digests(new_path, BLOCK_FRAMES)
    spans = changed_ranges(old_d, new_d)
    assert spans == ((BLOCK_FRAMES, 2 * BLOCK_FRAMES), (8 * BLOCK_FRAMES, 9 * BLOCK_FRAMES))
    wanted = plan_wanted(calcs, params, old_d, new_d)
    assert all(len(r) == 2 for r in wanted.values())
    result = recompute_frames(
        PassPlan(str(new_path), params, TempoMap(), calcs), wanted, expected=new_d
    )
    # two windows of three blocks: blocks 0-2 and 7-9, never the 4 blocks between them
    assert result.decoded == 6 * BLOCK_FRAMES
    assert all(len(wins) == 2 for fs in result.frames.values() for wins in fs.values())
    assert_spliced_equals_full(full(old_path, calcs, params), full(new_path, calcs, params), result)


def test_a_window_at_the_end_reaches_the_final_frames(long_pair: tuple[Path, Path, Path]) -> None:
    """Frames read past the end (zeros) only in the final block: a wanted tail is exact."""
    _, new_path, _ = long_pair
    params = resolve_params()
    calcs = calculators(*BOUNDED)
    new = full(new_path, calcs, params)
    wanted = {
        cid: ((len(r.data) - 5, len(r.data) - 1),) for cid, fs in new.items() for r in fs.values()
    }
    result = recompute_frames(PassPlan(str(new_path), params, TempoMap(), calcs), wanted)
    assert result.decoded == result.total - 16 * BLOCK_FRAMES  # the last, partial block only
    for cid, fs in result.frames.items():
        for feature, (win,) in fs.items():
            np.testing.assert_array_equal(win.data, new[cid][feature].data[-5:])


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


# --- what cannot be partial is refused -----------------------------------------------------------


def test_a_corrupt_expected_digest_is_refused(long_pair: tuple[Path, Path, Path]) -> None:
    old_path, new_path, _ = long_pair
    params = resolve_params()
    calcs = calculators("core.rms", "core.peaks")
    old_d, new_d = digests(old_path, BLOCK_FRAMES), digests(new_path, BLOCK_FRAMES)
    wanted = plan_wanted(calcs, params, old_d, new_d)
    plan = PassPlan(str(new_path), params, TempoMap(), calcs)

    def corrupt(block: int) -> BlockDigests:
        raw = bytearray(new_d.digests)
        raw[block * 16] ^= 1
        return replace(new_d, digests=bytes(raw))

    # a block outside the windows (blocks 7-9) is never decoded, so never checked
    assert recompute_frames(plan, wanted, expected=corrupt(3)).decoded == 3 * BLOCK_FRAMES
    for block in (7, 8, 9):
        with pytest.raises(PartialUnsupported, match=r"block at \d+\.\d\d s differs"):
            recompute_frames(plan, wanted, expected=corrupt(block))
    with pytest.raises(PartialUnsupported, match="other audio"):
        recompute_frames(plan, wanted, expected=replace(new_d, frames=new_d.frames - 1))


def test_a_seek_that_is_not_sample_exact_is_caught(
    long_pair: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder whose seek lands one sample late: the digests of the window's blocks differ,
    so its frames are refused, never returned."""
    old_path, new_path, _ = long_pair
    params = resolve_params()
    calcs = calculators("core.rms")
    old_d, new_d = digests(old_path, BLOCK_FRAMES), digests(new_path, BLOCK_FRAMES)
    wanted = plan_wanted(calcs, params, old_d, new_d)
    real = engine.iter_blocks

    def late(path: Any, block_frames: int, start: int = 0, stop: int | None = None) -> Any:
        shift = 1 if start else 0
        return real(
            path, block_frames, start=start + shift, stop=None if stop is None else stop + shift
        )

    monkeypatch.setattr(engine, "iter_blocks", late)
    with pytest.raises(PartialUnsupported, match="seek is not sample-exact"):
        recompute_frames(PassPlan(str(new_path), params, TempoMap(), calcs), wanted, expected=new_d)


def test_ogg_seeks_are_sample_exact_and_partial_equals_full(tmp_path: Path) -> None:
    """libsndfile's Ogg Vorbis seek gives the full decode's samples (checked on the
    singularity songs too, see core.engine_window); a partial recomputation of an Ogg file is
    exact, verified block by block against the digests."""
    rng = np.random.default_rng(3)
    rate = 16_000
    n = 9 * 4096 + 77
    x = rng.uniform(-0.3, 0.3, (n, 2))
    old_path = af.write(tmp_path / "old.ogg", x, rate)
    x[5 * 4096 : 5 * 4096 + 300] = 0.0
    new_path = af.write(tmp_path / "new.ogg", x, rate)
    whole = np.concatenate(list(iter_blocks(new_path, 1000)), axis=1)
    for start, stop in ((4096, 3 * 4096), (12_345, 20_000), (8 * 4096, None)):
        part = np.concatenate(list(iter_blocks(new_path, 1000, start=start, stop=stop)), axis=1)
        assert np.array_equal(part, whole[:, start:stop])
    params = resolve_params({"window_size": 512, "hop_size": 128, "peaks_block": 256})
    calcs = calculators(*BOUNDED)
    old_d, new_d = digests(old_path, 4096), digests(new_path, 4096)
    wanted = plan_wanted(calcs, params, old_d, new_d)
    result = recompute_frames(
        PassPlan(str(new_path), params, TempoMap(), calcs), wanted, expected=new_d
    )
    assert result.decoded < result.total
    assert_spliced_equals_full(full(old_path, calcs, params), full(new_path, calcs, params), result)
    with pytest.raises(PartialUnsupported, match="header length is an estimate"):
        recompute_frames(PassPlan(str(new_path), params, TempoMap(), calcs), wanted)


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(11)
    return af.write(
        tmp_path_factory.mktemp("short") / "s.wav", rng.uniform(-0.5, 0.5, (50_000, 1)), 8000
    )


def test_runs_that_cannot_start_mid_file_are_refused(short_wav: Path) -> None:
    info = read_info(short_wav)
    d = digests(short_wav, 4096)
    # peaks of 300 samples: a window at a multiple of 4096 is not on one of its blocks
    params = resolve_params({"peaks_block": 300})
    peaks = calculators("core.peaks")
    with pytest.raises(PartialUnsupported, match="300-sample blocks"):
        recompute_frames(
            PassPlan(str(short_wav), params, TempoMap(), peaks),
            {"core.peaks": ((100, 110),)},
            expected=d,
        )
    # ... but from the start it can (the window starts at 0)
    got = recompute_frames(
        PassPlan(str(short_wav), params, TempoMap(), peaks), {"core.peaks": ((1, 3),)}, expected=d
    )
    ref = full(short_wav, peaks, params)["core.peaks"]["peaks"].data
    np.testing.assert_array_equal(got.frames["core.peaks"]["peaks"][0].data, ref[1:4])
    # onset (unbounded: the file's maximum clips every frame): any frame costs the whole file
    params = resolve_params()
    onset = calculators("core.onset")
    plan = PassPlan(str(short_wav), params, TempoMap(), onset)
    ref = full(short_wav, onset, params)["core.onset"]["onset"].data
    some = recompute_frames(plan, {"core.onset": ((40, 50),)}, expected=d)
    assert some.decoded == info.frames
    np.testing.assert_array_equal(some.frames["core.onset"]["onset"][0].data, ref[40:51])
    with pytest.raises(PartialUnsupported, match="unbounded reach"):
        recompute_frames(plan, {"core.onset": ()}, expected=d)  # its frame count: only whole
    with pytest.raises(ValueError, match=r"not in the plan: core\.rms"):
        recompute_frames(plan, {"core.rms": ((0, 1),)})
    with pytest.raises(ValueError, match="wanted frame 99 is past the new data's 98 frames"):
        recompute_frames(
            PassPlan(str(short_wav), params, TempoMap(), calculators("core.rms")),
            {"core.rms": ((99, 120),)},
        )
    with pytest.raises(ValueError, match="not ascending"):
        recompute_frames(
            PassPlan(str(short_wav), params, TempoMap(), calculators("core.rms")),
            {"core.rms": ((5, 9), (8, 12))},
        )


def test_nothing_wanted_still_gives_layouts_and_counts(short_wav: Path) -> None:
    params = resolve_params()
    calcs = calculators("core.rms", "core.peaks")
    result = recompute_frames(
        PassPlan(str(short_wav), params, TempoMap(), calcs), {"core.rms": (), "core.peaks": ()}
    )
    ref = full(short_wav, calcs, params)
    assert result.decoded == 0
    assert result.frames == {"core.rms": {"rms": ()}, "core.peaks": {"peaks": ()}}
    assert result.n_frames == {c: {f: len(r.data) for f, r in fs.items()} for c, fs in ref.items()}
    assert result.metas == {c: {f: r.meta for f, r in fs.items()} for c, fs in ref.items()}


def test_progress_and_cancel(long_pair: tuple[Path, Path, Path]) -> None:
    old_path, _, new_path = long_pair
    params = resolve_params()
    calcs = calculators("core.rms")
    wanted = plan_wanted(
        calcs, params, digests(old_path, BLOCK_FRAMES), digests(new_path, BLOCK_FRAMES)
    )
    plan = PassPlan(str(new_path), params, TempoMap(), calcs)
    seen: list[float] = []
    recompute_frames(
        plan, wanted, progress=lambda f, label: seen.append(f), block_frames=BLOCK_FRAMES
    )
    # one report per decoded block of the two 3-block windows, then done
    assert (
        len(seen) == 7
        and seen == sorted(seen)
        and seen[-1] == 1.0
        and seen[-2] == pytest.approx(0.98)
    )
    token = CancelToken()
    after: list[float] = []

    def cancel_at_once(fraction: float, label: str) -> None:
        after.append(fraction)
        token.cancel()

    # checked before every block: nothing more is decoded (or reported) once cancelled
    with pytest.raises(Cancelled):
        recompute_frames(
            plan, wanted, progress=cancel_at_once, cancel=token, block_frames=BLOCK_FRAMES
        )
    assert len(after) == 1


@pytest.mark.parametrize(
    ("first", "last", "blocks"),
    [(1029, 1147, 1), (1028, 1147, 2), (1029, 1148, 2), (1028, 1148, 3)],
)
def test_a_window_is_the_fewest_blocks_the_frames_read(
    long_pair: tuple[Path, Path, Path], first: int, last: int, blocks: int
) -> None:
    """rms at hop 512 reads up to 2,560 samples (2048 + 512) around a frame: frames 1029-1147
    read exactly block 8, [524,288, 589,824); one frame more on either side needs the block
    next to it."""
    _, new_path, _ = long_pair
    params = resolve_params()
    calcs = calculators("core.rms")
    result = recompute_frames(
        PassPlan(str(new_path), params, TempoMap(), calcs),
        {"core.rms": ((first, last),)},
        expected=digests(new_path, BLOCK_FRAMES),
    )
    assert result.decoded == blocks * BLOCK_FRAMES
    (win,) = result.frames["core.rms"]["rms"]
    ref = full(new_path, calcs, params)["core.rms"]["rms"].data
    assert win.first == first
    np.testing.assert_array_equal(win.data, ref[first : last + 1])


def test_a_first_frame_beyond_the_first_decoded_block(short_wav: Path) -> None:
    """Window at 18,432 (digest blocks of 2048), decode grid of 1000: its first decoded block
    is [18,432, 19,000), but its first frame (hop 700, margin 1212) reads from 19,088: the
    framer must keep the window's samples where they are, not drop past its buffer."""
    params = resolve_params({"window_size": 512, "hop_size": 700})
    calcs = calculators("core.rms", "core.spectrogram")
    plan = PassPlan(str(short_wav), params, TempoMap(), calcs)
    wanted = {c.id: ((29, 35),) for c in calcs}
    result = recompute_frames(plan, wanted, expected=digests(short_wav, 2048), block_frames=1000)
    assert result.decoded == 26_624 - 18_432
    ref = full(short_wav, calcs, params, block_frames=1000)
    for cid, fs in result.frames.items():
        for feature, (win,) in fs.items():
            np.testing.assert_array_equal(win.data, ref[cid][feature].data[29:36])
