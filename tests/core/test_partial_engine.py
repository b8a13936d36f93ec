"""Partial recomputation (core.engine_window): the old full output with the recomputed frames
spliced in (core.splice, the store's rule) equals a full recomputation on the new file, bit
for bit, for every bounded built-in and for beat_rms after a tempo edit; only the windows the
edit needs are decoded; a decoded block that is not what the digests say is refused.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics_app.core import engine
from diagnostics_app.core.audio import iter_blocks, read_info
from diagnostics_app.core.engine import CancelToken, PassPlan
from diagnostics_app.core.engine_window import (
    PartialUnsupported,
    recompute_frames,
)
from diagnostics_app.core.errors import Cancelled
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.ranges import (
    BLOCK_FRAMES,
    BlockDigests,
    changed_ranges,
)
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af
from tests.core.partial_support import (
    BOUNDED,
    KINDS,
    assert_spliced_equals_full,
    calculators,
    digests,
    full,
    plan_wanted,
)
from tests.core.ranges_edits import EDITS, apply_edit

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
