"""Block digests of decoded audio and the changed ranges they give (core.ranges, core.audio).

Random edits on random WAV and FLAC signals: the diagnosed ranges cover every changed sample,
and every block they report holds a changed sample (or lies past the shorter end), except after
an insertion or a deletion, where everything after the edit is reported.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics_app.core import audio
from diagnostics_app.core.fingerprint import frames_text, ranges_text
from diagnostics_app.core.ranges import (
    BLOCK_FRAMES,
    BlockDigests,
    changed_ranges,
    digest_blocks,
    seconds,
)
from tests.core import audio_factory as af
from tests.core.ranges_edits import EDITS, SHIFTING, apply_edit, changed_samples

SR = 8000
BLOCK = 512  # small blocks: short signals still span many


def _blocks(samples: np.ndarray, pieces: int = 3) -> BlockDigests:
    """Digests of (channels, frames) samples fed in ``pieces`` uneven reads."""
    cuts = np.linspace(0, samples.shape[1], pieces + 1).astype(int)
    cuts[1:-1] += 7  # reads that do not line up with the blocks
    parts = [samples[:, a:b] for a, b in itertools.pairwise(cuts)]
    return digest_blocks(parts, SR, samples.shape[0], BLOCK)


@given(
    seed=st.integers(0, 2**32 - 1),
    edit=st.sampled_from(EDITS),
    ext=st.sampled_from(["wav", "flac"]),
    channels=st.sampled_from([1, 2]),
)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_diagnosed_ranges_cover_exactly_the_changed_blocks(
    tmp_path: Path, seed: int, edit: str, ext: str, channels: int
) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2000, 12000))
    original = rng.uniform(-0.5, 0.5, (n, channels))
    edited = apply_edit(original, edit, rng)
    old_path, new_path = tmp_path / f"old.{ext}", tmp_path / f"new.{ext}"
    af.write(old_path, original, SR, *af.FORMATS[ext])
    af.write(new_path, edited, SR, *af.FORMATS[ext])
    old, _ = af.decoded(old_path)
    new, _ = af.decoded(new_path)
    truth = changed_samples(old, new)
    ranges = changed_ranges(_blocks(old), _blocks(new))
    assert ranges is not None
    covered = np.zeros(max(old.shape[1], new.shape[1]), bool)
    for a, b in ranges:
        covered[a:b] = True
    for a, b in truth:  # every changed sample is reported
        assert covered[a:b].all(), (edit, truth, ranges)
    changed = np.zeros_like(covered)
    for a, b in truth:
        changed[a:b] = True
    first_change = truth[0][0] if truth else covered.size
    for a, b in ranges:  # every reported block holds a change
        for start in range(a, b, BLOCK):
            block = slice(start, min(start + BLOCK, b))
            if edit in SHIFTING and start >= first_change // BLOCK * BLOCK:
                continue  # after an insertion or a deletion everything may differ
            assert changed[block].any(), (edit, start, truth, ranges)
        assert a % BLOCK == 0  # ranges start on block boundaries


def test_file_digests_equal_in_memory_digests_and_the_store_keeps_them(tmp_path: Path) -> None:
    from diagnostics_app.core.store import FeatureStore

    rng = np.random.default_rng(3)
    signal = rng.uniform(-0.5, 0.5, (BLOCK_FRAMES + 1000, 2))
    path = af.write(tmp_path / "a.flac", signal, 44100, "FLAC", "PCM_16")
    samples, _ = af.decoded(path)
    expected = digest_blocks([samples], 44100, 2)
    assert expected.count == 2 and expected.frames == BLOCK_FRAMES + 1000
    with FeatureStore.open(tmp_path / "cache") as store:
        digest = audio.content_digest(path, store)
        assert store.get_blocks(digest) is None
        assert audio.content_blocks(path, digest, store) == expected
        assert store.get_blocks(digest) == expected  # remembered by content digest
    with FeatureStore.open(tmp_path / "cache") as store:  # and across opens
        assert store.get_blocks(digest) == expected


def test_content_blocks_decode_once_per_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = af.write(tmp_path / "a.wav", af.sine(440, 0.5, 8000), 8000)
    cache = _MemoryBlocks()
    calls: list[str] = []
    real = audio.block_digests
    monkeypatch.setattr(audio, "block_digests", lambda p: calls.append(str(p)) or real(p))
    first = audio.content_blocks(path, "b2:x", cache)
    assert audio.content_blocks(path, "b2:x", cache) == first
    assert len(calls) == 1


class _MemoryBlocks:
    def __init__(self) -> None:
        self.known: dict[str, BlockDigests] = {}

    def get_blocks(self, digest: str) -> BlockDigests | None:
        return self.known.get(digest)

    def put_blocks(self, digest: str, blocks: BlockDigests) -> None:
        self.known[digest] = blocks


def test_whole_file_changes_have_no_ranges() -> None:
    samples = np.zeros((1, 4000), np.float32)
    base = digest_blocks([samples], SR, 1, BLOCK)
    assert changed_ranges(base, digest_blocks([samples], SR * 2, 1, BLOCK)) is None
    stereo = np.zeros((2, 4000), np.float32)
    assert changed_ranges(base, digest_blocks([stereo], SR, 2, BLOCK)) is None
    assert changed_ranges(base, base) == ()


def test_ranges_text_reads_as_clock_times() -> None:
    spans = seconds([(496_000 * 3 // 4, 49_600 * 15 + 4_000)], 8000)
    assert ranges_text(spans) == "changed 0:46.500–1:33.500"
    assert ranges_text(()) == "no decoded sample changed"
    many = tuple((float(i), i + 0.5) for i in range(5))
    assert ranges_text(many).endswith("0:02.000–0:02.500, +2 more")
    assert frames_text(((1, 1), (3, 9))) == "affects frames 1, 3–9"
    assert frames_text(()) == "affects no frame"


def test_an_index_of_schema_6_migrates_to_7_keeping_its_rows(tmp_path: Path) -> None:
    import sqlite3

    from diagnostics_app.core.stamp import FileStamp
    from diagnostics_app.core.store import FeatureStore
    from diagnostics_app.core.store.connection import INDEX_NAME
    from diagnostics_app.core.store.schema import SCHEMA_VERSION

    stamp = FileStamp(size=1, mtime_ns=2, inode=3, ctime_ns=4)
    with FeatureStore.open(tmp_path / "cache") as store:
        store.put_digest("/a.wav", stamp, "b2:kept")
    index = tmp_path / "cache" / INDEX_NAME
    with sqlite3.connect(index) as db:  # what schema 6 was: no audio_blocks
        db.execute("DROP TABLE audio_blocks")
        db.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    db.close()
    blocks = digest_blocks([np.zeros((1, 10), np.float32)], SR, 1, BLOCK)
    with FeatureStore.open(tmp_path / "cache") as store:
        assert store.get_digest("/a.wav", stamp) == "b2:kept"
        assert store.get_blocks("b2:kept") is None
        store.put_blocks("b2:kept", blocks)
        assert store.get_blocks("b2:kept") == blocks
    with sqlite3.connect(index) as db:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert SCHEMA_VERSION >= 7 and version == (str(SCHEMA_VERSION),)  # 8: splices


@pytest.mark.parametrize("algorithm", ["x3", "b2"])
def test_block_digests_keep_their_definition(algorithm: str) -> None:
    """The digest of a block is XXH3-128 ("x3"; BLAKE2b-128 "b2" in older stores) of its
    samples interleaved as little-endian float32, whatever pieces they were fed in: stores
    keep these digests, so a faster hashing path must give the very same bytes (computed here
    independently)."""
    import hashlib

    import xxhash

    from diagnostics_app.core.ranges import DIGEST_BYTES, BlockHasher

    def reference(data: bytes) -> bytes:
        if algorithm == "x3":
            return xxhash.xxh3_128(data).digest()
        return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 200_000)).astype(np.float32)
    hasher = BlockHasher(48_000, 2, algorithm=algorithm)
    for a, b in ((0, 70_000), (70_000, 70_001), (70_001, 131_072), (131_072, 200_000)):
        hasher.feed(x[:, a:b])
    expected = b"".join(
        reference(np.ascontiguousarray(x[:, i : i + 65_536].T, dtype="<f4").tobytes())
        for i in range(0, 200_000, 65_536)
    )
    got = hasher.result()
    assert got.digests == expected
    assert (got.algorithm, got.frames, got.count) == (algorithm, 200_000, 4)
