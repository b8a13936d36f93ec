"""``FeatureStore.commit_splices``: frames of a stored entry replaced in place, atomically,
without copying the base files; reads, verification, trash, previous versions and deletion
of spliced features. Real SQLite, real files; the crash test SIGKILLs real processes at the
commit's steps (chosen by an environment variable, no timing)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.splice import FrameSplice, apply_splices, apply_times
from diagnostics_app.core.store import (
    DATA_DIR,
    INDEX_NAME,
    SCHEMA_VERSION,
    TMP_DIR,
    EntryImport,
    EntryKey,
    FeatureStore,
    StaleBase,
    StoredEntry,
)
from diagnostics_app.core.store.splicing import MAX_PARTS

CH, W = 2, 3
N = 1200  # frames: big enough that a few small splices stay parts (no compaction)
RANGE = (-80.0, 0.0)
KEY = EntryKey("song", "core.test")
METAS = {
    "a": OutputMeta("a", CH, W, frame_step=0.01),
    "db": OutputMeta("db", CH, W, frame_step=0.01, storage="u16db", value_range=RANGE),
    "t": OutputMeta("t", CH, W, frame_step=None),
}


def values(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-79.0, -1.0, (n, CH, W)).astype(np.float32)  # inside the u16db range


def times_of(seed: int, n: int, start: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    return start + np.cumsum(rng.uniform(0.001, 0.02, n))


def base_arrays(seed: int = 1) -> dict[str, np.ndarray]:
    return {name: values(seed + k, N) for k, name in enumerate(METAS)}


def put(store: FeatureStore, arrays: dict[str, np.ndarray], key: EntryKey = KEY) -> StoredEntry:
    """A full write (the bulk import writes exactly the pass writer's files)."""
    times = {"t": times_of(7, len(arrays["t"]))} if "t" in arrays else {}
    item = EntryImport(
        key, {"gen": 1}, 1, {n: METAS[n] for n in arrays}, arrays, times, provenance={}
    )
    return store.import_entries([item], durable=True)[0]


def splice(first: int, removed: int, n: int, seed: int, timed: bool = False) -> FrameSplice:
    t = times_of(seed, n, start=float(first)) if timed else None
    return FrameSplice(first, removed, values(seed, n), t)


def same_for_all(plan: Sequence[tuple[int, int, int]], seed: int) -> dict[str, list[FrameSplice]]:
    return {
        name: [
            splice(f, r, n, seed + 10 * k + i, timed=name == "t")
            for i, (f, r, n) in enumerate(plan)
        ]
        for k, name in enumerate(METAS)
    }


def data_files(cache: Path) -> set[str]:
    return {f"{DATA_DIR}/{n}" for n in os.listdir(cache / DATA_DIR)}


def referenced(store: FeatureStore) -> set[str]:
    files = {p for e in store.entries(verify=False) for f in e.features.values() for p in f.files}
    files |= {p for v in store.previous_versions() for p in v.feature.files}
    return files


def expected(
    store: FeatureStore, entry: StoredEntry, splices: dict[str, list[FrameSplice]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What each feature must read as once ``splices`` apply to ``entry``'s data."""
    out = {}
    for name in entry.features:
        got = store.load(entry, name, mmap=False)
        data = apply_splices(np.array(got.data), splices[name])
        t = np.array(got.times)
        times = apply_times(t, splices[name]) if name == "t" else t
        out[name] = (data, times)
    return out


def assert_reads(store: FeatureStore, entry: StoredEntry, want: dict[str, tuple]) -> None:
    for name, (data, times) in want.items():
        got = store.load(entry, name)
        assert entry.features[name].frames == len(data)
        if name == "db":  # u16db: the splice's values quantised; checked bit for bit elsewhere
            assert np.abs(got.data - data).max() <= (RANGE[1] - RANGE[0]) / 65535
        else:
            np.testing.assert_array_equal(got.data, data)
        if name == "t":
            np.testing.assert_array_equal(got.times, times)
            np.testing.assert_array_equal(store.load_times(entry, name), times)
        n = len(data)
        for sel in (
            slice(0, 5),
            slice(8, 140),
            slice(95, 520),
            slice(n - 30, n + 5),
            slice(3, n, 7),
        ):
            part = store.load(entry, name, frames=sel)
            np.testing.assert_array_equal(part.data, got.data[sel])
            np.testing.assert_array_equal(part.times, got.times[sel])
        rev = store.load(entry, name, frames=slice(None, None, -3))
        np.testing.assert_array_equal(rev.data, got.data[::-3])
        if name != "t":
            np.testing.assert_array_equal(
                store.load_times(entry, name), 0.01 * np.arange(n, dtype=np.float64)
            )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    s = FeatureStore.open(tmp_path / "c")
    yield s
    s.close()


def test_equal_growing_shrinking_splices_read_as_apply_splices(store: FeatureStore) -> None:
    entry = put(store, base_arrays())
    splices = same_for_all([(10, 4, 4), (100, 2, 9), (500, 30, 1), (700, 0, 3), (900, 5, 0)], 50)
    want = expected(store, entry, splices)
    before = {p: os.stat(store.root / p).st_mtime_ns for p in data_files(store.root)}
    new = store.commit_splices(KEY, {"gen": 2}, 3, entry.commit_id, splices)
    assert new.commit_id != entry.commit_id and new.fingerprint == {"gen": 2}
    assert new.calculator_version == 3
    assert all(len(f.splices) == 5 for f in new.features.values())
    assert all(f.path == entry.features[n].path for n, f in new.features.items())
    # the base files were not rewritten
    assert all(os.stat(store.root / p).st_mtime_ns == t for p, t in before.items())
    assert_reads(store, new, want)
    # the listing agrees, verified, and so does another instance
    listed = store.entries()
    assert listed[0].commit_id == new.commit_id and listed[0].problems == ()
    with FeatureStore.open(store.root) as other:
        again = other.get(KEY)
        assert again is not None and again.features == new.features
        assert_reads(other, again, want)
        assert other.entries()[0].problems == ()
        assert other._verifier.headers_read == 0  # every part's stamp recorded at commit


def test_u16db_splice_is_bit_identical_to_a_full_write(store: FeatureStore) -> None:
    arrays = base_arrays()
    entry = put(store, arrays)
    splices = same_for_all([(10, 4, 4), (300, 9, 40)], 60)
    store.commit_splices(KEY, {"gen": 2}, 1, entry.commit_id, splices)
    spliced = store.get(KEY)
    assert spliced is not None
    full_key = EntryKey("song", "core.full")
    composed = {n: apply_splices(a, splices[n]) for n, a in arrays.items()}
    full = put(store, composed, full_key)
    for name in ("a", "db"):
        np.testing.assert_array_equal(store.load(spliced, name).data, store.load(full, name).data)
    # the stored values themselves: the part holds what the full file holds there
    part = spliced.features["db"].splices[1]
    raw_part = np.load(store.root / part.path)
    raw_full = np.load(store.root / full.features["db"].path)
    assert raw_part.dtype == np.uint16
    np.testing.assert_array_equal(raw_part, raw_full[300 - 0 + (4 - 4) : 300 + 40])


def test_a_commit_reads_only_the_frames_it_rewrites(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No copy of the base: the frames read to plan a commit are those of the regions it
    rewrites (the new splices and the parts they absorb), not the feature's."""
    from diagnostics_app.core.store import spliced

    entry = put(store, base_arrays())
    entry = store.commit_splices(KEY, {}, 1, entry.commit_id, same_for_all([(300, 5, 6)], 1))
    read: list[int] = []
    real = spliced.Reader.raw

    def counting(self: spliced.Reader, start: int, stop: int, times: bool = False) -> np.ndarray:
        read.append(stop - start)
        return real(self, start, stop, times)

    monkeypatch.setattr(spliced.Reader, "raw", counting)
    splices = same_for_all([(10, 2, 2), (303, 1, 1)], 2)
    store.commit_splices(KEY, {}, 1, entry.commit_id, splices)
    # per feature: 2 frames at 10, the 6-frame part at 300 (absorbed): times too for "t"
    assert sorted(read) == sorted([2, 6] * 3 + [2, 6])


def test_splices_over_splices_compose(store: FeatureStore) -> None:
    """Several commits, overlapping and touching earlier parts, equal the chain of
    apply_splices; untouched parts keep their files."""
    entry = put(store, base_arrays())
    rng = np.random.default_rng(3)
    for round_ in range(6):
        n = entry.features["a"].frames
        firsts = sorted(rng.choice(np.arange(0, n - 40, 60), size=3, replace=False))
        plan = [(int(f), int(rng.integers(0, 20)), int(rng.integers(0, 20))) for f in firsts]
        splices = same_for_all(plan, 100 + round_)
        want = expected(store, entry, splices)
        entry = store.commit_splices(KEY, {"gen": round_}, 1, entry.commit_id, splices)
        assert_reads(store, entry, want)
        assert len(entry.features["a"].splices) <= MAX_PARTS
    with FeatureStore.open(store.root) as other:
        again = other.get(KEY)
        assert again is not None
        assert_reads(other, again, want)


def test_touching_and_absorbing_parts(store: FeatureStore) -> None:
    entry = put(store, {"a": values(1, N)})
    first = {"a": [splice(100, 10, 20, 1), splice(400, 10, 0, 2)]}
    want = expected(store, entry, first)
    entry = store.commit_splices(KEY, {}, 1, entry.commit_id, first)
    assert_reads(store, entry, want)
    old_parts = entry.features["a"].splices
    # in current indices: one inside the first part, one touching the (empty) second part
    second = {"a": [splice(105, 3, 1, 3), splice(405, 5, 2, 4), splice(800, 1, 1, 5)]}
    want = expected(store, entry, second)
    entry = store.commit_splices(KEY, {}, 1, entry.commit_id, second)
    assert_reads(store, entry, want)
    parts = entry.features["a"].splices
    assert [(p.first, p.removed) for p in parts] == [(100, 10), (395, 15), (800, 1)]
    assert {p.path for p in parts}.isdisjoint(p.path for p in old_parts)


def test_unchanged_features_and_an_empty_feature(store: FeatureStore) -> None:
    """An empty sequence leaves a feature as it was (its files shared with the previous
    version, which dropping deletes nothing of); an empty feature grows by a splice."""
    entry = put(store, {"a": values(1, N), "db": values(2, 0)})
    splices = {"a": [], "db": [splice(0, 0, 5, 3)]}
    want = expected(store, entry, splices)
    new = store.commit_splices(KEY, {}, 1, entry.commit_id, splices)
    assert new.features["a"] == entry.features["a"]
    assert new.features["db"].frames == 5
    assert_reads(store, new, want)
    files = data_files(store.root)
    store.drop_previous([(KEY, "a"), (KEY, "db")])
    # "a"'s previous version shared every file; "db" was compacted (its parts would hold all
    # its frames): its old, empty base file alone goes
    assert new.features["db"].splices == () and new.features["db"].path != entry.features["db"].path
    assert data_files(store.root) == files - {entry.features["db"].path}
    assert_reads(store, new, want)


def test_comparison_with_the_previous_version_reads_through_the_splices(
    store: FeatureStore,
) -> None:
    """What reads through ``load`` (here the regeneration verdict of core.compare) works on
    spliced data and on the previous version sharing its base."""
    from diagnostics_app.core.compare import record_regenerations

    entry = put(store, {"a": values(1, N), "t": values(2, N)})
    new = store.commit_splices(KEY, {}, 1, entry.commit_id, {"a": [splice(9, 3, 3, 5)], "t": []})
    record_regenerations(store, [new])
    got = store.get(KEY)
    assert got is not None
    assert got.features["t"].regenerated == "identical"
    assert got.features["a"].regenerated == "differs"


def test_compaction_writes_one_full_file(store: FeatureStore) -> None:
    arrays = base_arrays()
    entry = put(store, arrays)
    many = same_for_all([(40 * k, 1, 1) for k in range(MAX_PARTS + 1)], 7)
    want = expected(store, entry, many)
    new = store.commit_splices(KEY, {}, 1, entry.commit_id, many)
    assert all(f.splices == () for f in new.features.values())
    assert all(f.path != entry.features[n].path for n, f in new.features.items())
    assert_reads(store, new, want)
    # the compacted u16db file is byte for byte a full write of the composed values
    full = put(store, {n: apply_splices(a, many[n]) for n, a in arrays.items()}, EntryKey("x", "y"))
    for name in METAS:
        a = (store.root / new.features[name].path).read_bytes()
        b = (store.root / full.features[name].path).read_bytes()
        assert a == b, name
    assert new.features["db"].checksum == full.features["db"].checksum
    # a large share of the frames in parts compacts too
    big = same_for_all([(10, 400, 400)], 9)
    want = expected(store, new, big)
    newer = store.commit_splices(KEY, {}, 1, new.commit_id, big)
    assert all(f.splices == () for f in newer.features.values())
    assert_reads(store, newer, want)
    store.verify_content = True
    assert all(e.problems == () for e in store.entries())


def test_timed_feature_without_times_and_malformed_splices_are_refused(
    store: FeatureStore,
) -> None:
    entry = put(store, base_arrays())
    files = data_files(store.root)
    ok = same_for_all([(10, 1, 1)], 1)
    bad_cases = [
        ({**ok, "t": [splice(10, 1, 1, 1, timed=False)]}, "carries no frame times"),
        ({**ok, "a": [splice(10, 1, 1, 1, timed=True)]}, "carries frame times"),
        ({**ok, "a": [splice(10, 5, 1, 1), splice(12, 1, 1, 2)]}, "overlapping"),
        ({**ok, "a": [splice(N - 1, 5, 1, 1)]}, "past the data"),
        ({**ok, "a": [FrameSplice(3, 1, np.zeros((1, CH, W + 1), np.float32))]}, "shape"),
    ]
    for bad, words in bad_cases:
        with pytest.raises(ValueError, match=words) as err:
            store.commit_splices(KEY, {}, 1, entry.commit_id, bad)
        assert "\n" not in str(err.value)
    assert data_files(store.root) == files and os.listdir(store.root / TMP_DIR) == []
    assert store.get(KEY) == entry


def test_io_failures_are_one_line_and_leave_nothing(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from diagnostics_app.core.store import splicing

    entry = put(store, base_arrays())
    files = data_files(store.root)
    splices = same_for_all([(10, 1, 2)], 1)

    def full(path: Path, times: np.ndarray, *, durable: bool) -> str:
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(splicing, "write_times", full)
        with pytest.raises(StoreError, match="No space left") as err:
            store.commit_splices(KEY, {}, 1, entry.commit_id, splices)
    assert "\n" not in str(err.value) and ".times.npy" in str(err.value)
    assert not isinstance(err.value, StaleBase)
    assert data_files(store.root) == files and os.listdir(store.root / TMP_DIR) == []
    real = os.replace
    calls = []

    def second_fails(a: Path, b: Path) -> None:
        calls.append(a)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(a, b)

    with monkeypatch.context() as m:
        m.setattr(splicing.os, "replace", second_fails)
        with pytest.raises(StoreError, match="Input/output error") as err:
            store.commit_splices(KEY, {}, 1, entry.commit_id, splices)
    assert "\n" not in str(err.value) and DATA_DIR in str(err.value)
    assert data_files(store.root) == files and os.listdir(store.root / TMP_DIR) == []
    assert store.get(KEY) == entry


def test_stale_base_cases(store: FeatureStore) -> None:
    entry = put(store, base_arrays())
    splices = same_for_all([(10, 1, 1)], 1)
    files = data_files(store.root)
    with pytest.raises(StaleBase, match="recomputed"):
        store.commit_splices(KEY, {}, 1, "0" * 32, splices)
    with pytest.raises(StaleBase, match="features"):
        store.commit_splices(KEY, {}, 1, entry.commit_id, {"a": splices["a"]})
    with pytest.raises(StaleBase, match="features"):
        store.commit_splices(KEY, {}, 1, entry.commit_id, {**splices, "zz": []})
    assert data_files(store.root) == files and store.get(KEY) == entry
    # a damaged base file: the listing's problem, named
    victim = store.root / entry.features["db"].path
    with victim.open("r+b") as f:
        f.truncate(200)
    with pytest.raises(StaleBase, match=victim.name) as err:
        store.commit_splices(KEY, {}, 1, entry.commit_id, splices)
    assert isinstance(err.value, StoreError) and "\n" not in str(err.value)
    # recomputed: the old commit id is stale
    newer = put(store, base_arrays(5))
    with pytest.raises(StaleBase, match="recomputed"):
        store.commit_splices(KEY, {}, 1, entry.commit_id, splices)
    store.prune([(KEY, n) for n in METAS])
    with pytest.raises(StaleBase, match="gone"):
        store.commit_splices(KEY, {}, 1, newer.commit_id, splices)
    assert os.listdir(store.root / TMP_DIR) == []


def test_stale_base_checked_in_the_transaction(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process recomputes the entry while the parts are written: the transaction
    refuses, and the parts are deleted."""
    from diagnostics_app.core.store import splicing

    entry = put(store, base_arrays())
    files_before = data_files(store.root)
    other = FeatureStore.open(store.root)
    real = splicing._step

    def meanwhile(name: str) -> None:
        real(name)
        if name == "renamed":
            put(other, base_arrays(9))

    monkeypatch.setattr(splicing, "_step", meanwhile)
    with pytest.raises(StaleBase, match="while its splices were written"):
        store.commit_splices(KEY, {}, 1, entry.commit_id, same_for_all([(10, 1, 2)], 1))
    now = store.get(KEY)
    assert now is not None and now.features["a"].splices == ()
    other.close()
    assert data_files(store.root) == referenced(store)
    assert data_files(store.root) - files_before  # the recompute's, not the parts
    assert os.listdir(store.root / TMP_DIR) == []


def test_a_missing_or_damaged_part_fails_its_row(store: FeatureStore) -> None:
    entry = put(store, base_arrays())
    new = store.commit_splices(
        KEY, {}, 1, entry.commit_id, same_for_all([(10, 1, 2), (50, 0, 3)], 1)
    )
    assert store.entries()[0].problems == ()
    gone = store.root / new.features["a"].splices[1].path
    gone.unlink()
    cut = store.root / new.features["t"].splices[0].times_path  # type: ignore[operator]
    with cut.open("r+b") as f:
        f.truncate(cut.stat().st_size - 8)
    problems = dict(store.entries()[0].problems)
    assert set(problems) == {"a", "t"}
    assert gone.name in problems["a"] and "missing" in problems["a"]
    assert cut.name in problems["t"] and "bytes" in problems["t"]
    with FeatureStore.open(store.root) as other:
        assert dict(other.entries()[0].problems).keys() == {"a", "t"}
        with pytest.raises(StoreError, match=gone.name):
            other.load(other.entries()[0], "a")


def test_verify_content_flags_a_tampered_part(store: FeatureStore) -> None:
    entry = put(store, base_arrays())
    new = store.commit_splices(KEY, {}, 1, entry.commit_id, same_for_all([(10, 1, 2)], 1))
    store.verify_content = True
    assert store.entries()[0].problems == ()
    part = store.root / new.features["db"].splices[0].path
    raw = bytearray(part.read_bytes())
    raw[-1] ^= 0xFF
    st = part.stat()
    part.write_bytes(bytes(raw))
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and time: only content
    problems = dict(store.entries()[0].problems)
    assert list(problems) == ["db"] and part.name in problems["db"]
    assert "checksum" in problems["db"]
    store.verify_content = False  # the verdict is kept for listings without content checks
    with FeatureStore.open(store.root) as other:
        assert dict(other.entries()[0].problems).keys() == {"db"}


def test_prune_restore_purge_keep_parts_with_their_row(store: FeatureStore) -> None:
    entry = put(store, base_arrays())
    splices = same_for_all([(10, 1, 2), (70, 3, 0)], 1)
    want = expected(store, entry, splices)
    new = store.commit_splices(KEY, {}, 1, entry.commit_id, splices)
    store.drop_previous([(KEY, n) for n in METAS])
    prune_id = store.prune([(KEY, n) for n in METAS])
    assert store.get(KEY) is None
    store.sweep(full=True)  # trash rows hold the parts: nothing is an orphan
    assert data_files(store.root) == {p for f in new.features.values() for p in f.files}
    assert store.restore(prune_id) == [(KEY, n) for n in sorted(METAS)]
    back = store.get(KEY)
    assert back is not None and back.features == new.features
    assert_reads(store, back, want)
    store.purge(store.prune([(KEY, n) for n in METAS]))
    assert data_files(store.root) == set()


def test_previous_version_shares_the_base_and_deletion_is_reference_aware(
    store: FeatureStore,
) -> None:
    v1 = put(store, {"a": values(1, N)})
    base = v1.features["a"].path
    old = np.array(store.load(v1, "a").data)
    s1 = {"a": [splice(100, 5, 5, 1)]}
    v2 = store.commit_splices(KEY, {}, 1, v1.commit_id, s1)
    prev = store.previous(KEY, "a")
    assert prev is not None and prev.commit_id == v1.commit_id and prev.feature.path == base
    np.testing.assert_array_equal(store.load_previous(prev).data, old)
    # shared once in the cache's size
    assert store.total_bytes() == sum(
        os.stat(store.root / p).st_size for p in data_files(store.root)
    )
    # a second splice replaces the previous version (the unspliced base): the base stays
    s2 = {"a": [splice(600, 5, 5, 2)]}
    want = expected(store, v2, s2)
    v3 = store.commit_splices(KEY, {}, 1, v2.commit_id, s2)
    assert (store.root / base).exists()
    p1 = v2.features["a"].splices[0].path
    prev = store.previous(KEY, "a")
    assert prev is not None and [p.path for p in prev.feature.splices] == [p1]
    # a third overlaps the first part: the previous version (base + p1) goes, p1 is deleted
    # only once nothing references it
    s3 = {"a": [splice(101, 2, 7, 3)]}
    want = expected(store, v3, s3)
    v4 = store.commit_splices(KEY, {}, 1, v3.commit_id, s3)
    assert (store.root / p1).exists()  # the previous version (v3's data) still uses it
    # what dropping it frees: p1 alone (the base and the second part are the current data's)
    p1_bytes = os.stat(store.root / p1).st_size
    prev = store.previous(KEY, "a")
    assert prev is not None and prev.nbytes == p1_bytes == store.previous_bytes()
    assert [v.nbytes for v in store.previous_versions()] == [p1_bytes]
    assert store.total_bytes() == v4.nbytes + p1_bytes
    assert store.drop_previous([(KEY, "a")]) == p1_bytes
    assert not (store.root / p1).exists()
    assert (store.root / base).exists()
    assert_reads(store, v4, want)
    assert data_files(store.root) == referenced(store)
    store.sweep(full=True)
    assert_reads(store, v4, want)
    assert store.total_bytes() == sum(
        os.stat(store.root / p).st_size for p in data_files(store.root)
    )
    # a full recompute: the spliced data becomes the previous version; dropping it deletes
    # the base and every part
    put(store, {"a": values(9, 50)})
    spliced_files = set(v4.features["a"].files)
    assert spliced_files <= data_files(store.root)
    store.drop_previous([(KEY, "a")])
    assert data_files(store.root).isdisjoint(spliced_files)
    assert data_files(store.root) == referenced(store)


def test_schema_7_store_is_migrated(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    with FeatureStore.open(cache) as s:
        entry = put(s, base_arrays())
    db = sqlite3.connect(cache / INDEX_NAME)
    with db:
        for table in ("features", "trash", "previous"):
            db.execute(f"DROP INDEX {table}_spliced")
            db.execute(f"ALTER TABLE {table} DROP COLUMN splices")
        db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    db.close()
    with FeatureStore.open(cache) as s:
        got = s.get(KEY)
        assert got is not None and got.commit_id == entry.commit_id
        splices = same_for_all([(10, 1, 2)], 1)
        want = expected(s, got, splices)
        new = s.commit_splices(KEY, {}, 1, got.commit_id, splices)
        assert_reads(s, new, want)
    db = sqlite3.connect(cache / INDEX_NAME)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    assert SCHEMA_VERSION >= 8  # 9: audio_blocks.algorithm (tests/core/test_hashing.py)
    db.close()
