"""A verified listing (``FeatureStore.entries()``) never claims data that is not there: each
feature's files are checked (exists, header, size; with ``verify_content`` the checksum), on
real files in a real store. What a check reads is counted, not timed."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store import INDEX_NAME, SCHEMA_VERSION, EntryKey, FeatureStore
from tests.core.test_store import commit, frames, meta


def two_entries(cache: Path) -> None:
    with FeatureStore.open(cache) as s:
        commit(s, "s", "plain", {"a": frames(1), "b": frames(2, 30)})
        commit(
            s,
            "s",
            "timed",
            {"db": frames(3, 40, 1, 4)},
            metas={"db": meta("db", 1, 4, storage="u16db", value_range=(-80.0, 0.0))},
            times={"db": np.cumsum(np.full(40, 0.01))},
        )


def listing(cache: Path) -> tuple[dict[tuple[str, str], str | None], FeatureStore]:
    """(calculator, feature) -> problem, and the (closed) store that listed them."""
    with FeatureStore.open(cache) as s:
        out = {
            (e.key.calculator_id, name): f.problem
            for e in s.entries()
            for name, f in e.features.items()
        }
    return out, s


def data_file(cache: Path, calc: str, feature: str, times: bool = False) -> Path:
    with FeatureStore.open(cache) as s:
        stored = s.get(EntryKey("s", calc)).features[feature]  # type: ignore[union-attr]
        return cache / (stored.times_path if times else stored.path)  # type: ignore[operator]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    two_entries(tmp_path / "c")
    return tmp_path / "c"


def test_a_sound_store_is_checked_by_stat_alone(cache: Path) -> None:
    problems, s = listing(cache)
    assert set(problems.values()) == {None}
    assert s._verifier.headers_read == 0  # stamps recorded at commit: no file was read
    assert len(problems) == 3


def test_deleted_truncated_and_replaced_files_are_problems(cache: Path) -> None:
    gone = data_file(cache, "plain", "a")
    short = data_file(cache, "plain", "b")
    times = data_file(cache, "timed", "db", times=True)
    size_b = short.stat().st_size
    gone.unlink()
    with short.open("r+b") as f:
        f.truncate(1024)
    np.save(times, np.zeros((10, 2), np.float32))
    problems, _ = listing(cache)
    assert problems[("plain", "a")] == f"data file {gone} is missing"
    assert problems[("plain", "b")] == f"data file {short} is 1,024 bytes, expected {size_b:,}"
    assert problems[("timed", "db")] == (
        f"times file {times}: header says float32 (10, 2), expected float64 (40,)"
    )


def test_a_file_replaced_by_another_layout_of_the_same_size(cache: Path) -> None:
    path = data_file(cache, "plain", "a")  # (50, 2, 3) float32
    np.save(path, np.zeros((50, 3, 2), np.float32))
    problems, _ = listing(cache)
    assert problems[("plain", "a")] == (
        f"data file {path}: header says float32 (50, 3, 2), expected float32 (50, 2, 3)"
    )
    path.write_bytes(b"x" * path.stat().st_size)  # not even a .npy file
    problems, _ = listing(cache)
    assert problems[("plain", "a")].startswith(f"data file {path} is not a .npy array file")  # type: ignore[union-attr]


def test_a_changed_stamp_is_checked_once_then_remembered(cache: Path) -> None:
    """Touching a file (same content) costs one header read, in this process and for the
    next: the new stamp is written back to the row."""
    path = data_file(cache, "plain", "a")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with FeatureStore.open(cache) as s:
        assert all(e.problems == () for e in s.entries())
        assert s._verifier.headers_read == 1
        s.entries()
        assert s._verifier.headers_read == 1  # remembered in this process
    problems, s = listing(cache)
    assert set(problems.values()) == {None}
    assert s._verifier.headers_read == 0  # and by the next one


def test_unchanged_broken_entries_are_the_same_objects(cache: Path) -> None:
    """A consumer remembering entries (the Diagnoser's memo) sees the same objects while
    nothing changes, and a fresh one when the problem goes away."""
    data_file(cache, "plain", "a").unlink()
    with FeatureStore.open(cache) as s:
        first = {e.key.calculator_id: e for e in s.entries()}
        second = {e.key.calculator_id: e for e in s.entries()}
        assert first["plain"] is second["plain"]
        assert first["timed"] is second["timed"]
        assert first["plain"].problems == (("a", first["plain"].features["a"].problem),)
        assert first["plain"].features["b"].problem is None
        assert s.entries(verify=False)[0].problems == ()


def test_verify_content_catches_a_same_size_byte_flip(cache: Path) -> None:
    path = data_file(cache, "timed", "db")
    st = path.stat()
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with its mtime set back
    problems, _ = listing(cache)
    assert problems[("timed", "db")] is None  # size and header are right: the cheap check passes
    with FeatureStore.open(cache) as s:
        s.verify_content = True
        found = {
            (e.key.calculator_id, n): f.problem for e in s.entries() for n, f in e.features.items()
        }
        assert s._verifier.contents_read == 3  # a, b, db (its times file: not after db failed)
    assert found[("timed", "db")] == (
        f"data file {path}: its content differs from the checksum recorded at commit"
    )
    assert found[("plain", "a")] is None
    problems, _ = listing(cache)  # the verdict is kept for listings without content checks
    assert problems[("timed", "db")] == found[("timed", "db")]
    raw[-3] ^= 0xFF  # the file is right again (restored from a backup, say)
    path.write_bytes(bytes(raw))
    problems, _ = listing(cache)
    assert problems[("timed", "db")] == found[("timed", "db")]  # until a content check says so
    with FeatureStore.open(cache) as s:
        s.verify_content = True
        assert all(e.problems == () for e in s.entries())
    problems, _ = listing(cache)
    assert set(problems.values()) == {None}


def test_an_index_of_schema_2_is_migrated_and_checked(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows from before stamps and checksums: checked by header once, content reported as not
    verifiable (one warning line), never failed for it."""
    with sqlite3.connect(cache / INDEX_NAME) as db:
        for table in ("features", "trash"):
            db.execute(f"ALTER TABLE {table} DROP COLUMN stamp")
            db.execute(f"ALTER TABLE {table} DROP COLUMN checksum")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    problems, s = listing(cache)
    assert set(problems.values()) == {None}
    assert s._verifier.headers_read == 4
    with sqlite3.connect(cache / INDEX_NAME) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert db.execute("SELECT COUNT(*) FROM features WHERE stamp IS NULL").fetchone() == (0,)
    with FeatureStore.open(cache) as s:
        s.verify_content = True
        assert all(e.problems == () for e in s.entries())
        assert s._verifier.headers_read == 0
        assert s.warnings == (
            f"warning: {cache}: 4 cached feature file(s) have no checksum recorded (written "
            "by an older version): their content could not be verified",
        )
    assert s.warnings[0] in caplog.text


def test_load_checks_the_file_too(cache: Path) -> None:
    """Reading does not trust a listing: a file changed since is refused, not misread."""
    with FeatureStore.open(cache) as s:
        entry = s.get(EntryKey("s", "plain"))
        assert entry is not None
        path = cache / entry.features["a"].path
        with path.open("r+b") as f:
            f.truncate(200)
        with pytest.raises(StoreError, match=r"corrupt array file .* is 200 bytes, expected 1,328"):
            s.load(entry, "a")


def test_a_verdict_found_by_another_process_reaches_an_open_store(cache: Path) -> None:
    """A long-lived store (the GUI's) that found the file sound before sees the content
    verdict another process (``check --verify``) kept."""
    path = data_file(cache, "plain", "b")
    with FeatureStore.open(cache) as gui:
        assert all(e.problems == () for e in gui.entries())
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 0x10
        path.write_bytes(bytes(raw))
        assert all(e.problems == () for e in gui.entries())  # header and size are right
        with FeatureStore.open(cache) as cli:
            cli.verify_content = True
            cli.entries()
        [plain] = [e for e in gui.entries() if e.key.calculator_id == "plain"]
        assert plain.problems == (
            ("b", f"data file {path}: its content differs from the checksum recorded at commit"),
        )


def test_an_emptied_index_beside_data_is_refused_not_taken_for_a_new_store(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    (root / "data").mkdir(parents=True)
    (root / "data" / "0123456789abcdef0123456789abcdef.1-00000000.npy").write_bytes(b"x")
    (root / "index.sqlite").write_bytes(b"")
    with pytest.raises(StoreError, match=r"the file is empty but .* holds data"):
        FeatureStore.open(root)
    (root / "data" / "0123456789abcdef0123456789abcdef.1-00000000.npy").unlink()
    FeatureStore.open(root).close()  # an empty index with no data: a new store, as before
