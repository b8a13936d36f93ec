"""The feature store on a real SQLite index and real files, with real processes.

Run as a script (``python test_store.py paused-writer CACHE``) this module is the child of the
live-writer test: it writes part of a feature, waits for a line on stdin, then commits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core.audio import FileStamp, content_digest
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store import (
    DATA_DIR,
    FINISHED_JOBS_PER_KEY,
    INDEX_NAME,
    SCHEMA_VERSION,
    TMP_DIR,
    EntryKey,
    FeatureStore,
    JobRecord,
    StoredEntry,
    canonical_params,
    meta_from_json,
    meta_to_json,
    process_alive,
    process_start_token,
)

ROOT = Path(__file__).resolve().parents[2]
STEP_80DB = 80.0 / 65535


# --- helpers ---------------------------------------------------------------------------------


def meta(name: str, channels: int = 1, width: int = 1, **kw: Any) -> OutputMeta:
    kw.setdefault("frame_step", 0.01)
    return OutputMeta(feature=name, channels=channels, width=width, **kw)


def commit(
    store: FeatureStore,
    source: str,
    calc: str,
    features: Mapping[str, np.ndarray],
    *,
    profile: str = "default",
    params: str = "{}",
    fingerprint: dict[str, Any] | None = None,
    version: int = 1,
    metas: Mapping[str, OutputMeta] | None = None,
    times: Mapping[str, np.ndarray | None] | None = None,
    chunk: int = 7,
) -> StoredEntry:
    """One pass of one calculator through the sink protocol, frames streamed in chunks."""
    fp = fingerprint if fingerprint is not None else {"calculator.id": calc, "gen": 1}
    writer = store.pass_writer(source, profile, params, {calc: fp}, {calc: version})
    for name, data in features.items():
        for start in range(0, len(data), chunk):
            writer.write(calc, name, data[start : start + chunk])
    all_metas = {n: meta(n, d.shape[1], d.shape[2]) for n, d in features.items()}
    all_metas.update(metas or {})
    writer.close(calc, all_metas, dict(times or {}))
    entry = store.get(EntryKey(source, calc, profile, params))
    assert entry is not None
    assert writer.committed == [entry]
    return entry


def frames(seed: int, n: int = 50, channels: int = 2, width: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, channels, width)).astype(np.float32)


def files_in(root: Path, sub: str) -> set[str]:
    return {p.name for p in (root / sub).iterdir()}


def referenced(store: FeatureStore) -> set[str]:
    out = set()
    for e in store.entries():
        for f in e.features.values():
            out.add(Path(f.path).name)
            if f.times_path:
                out.add(Path(f.times_path).name)
    for prev in store.previous_versions():  # the data replaced entries had (kept once)
        out.add(Path(prev.feature.path).name)
        if prev.feature.times_path:
            out.add(Path(prev.feature.times_path).name)
    return out


def assert_one_line(err: BaseException, *needles: str) -> None:
    text = str(err)
    assert "\n" not in text
    assert text.strip() == text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"


def dead_pid() -> tuple[int, str]:
    """The pid and start token of a process that has exited and been waited for."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE
    )
    token = process_start_token(proc.pid)
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait()
    return proc.pid, token


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with FeatureStore.open(tmp_path / "cache") as s:
        yield s


# --- writing and reading ---------------------------------------------------------------------


def test_round_trip_of_several_features(store: FeatureStore) -> None:
    a = frames(1, 101, 2, 3)
    db = np.random.default_rng(2).uniform(-95, 5, (64, 1, 9)).astype(np.float32)  # some clip
    db[0, 0, :3] = [-80.0, 0.0, np.nan]
    pitch = frames(3, 40, 1, 2)
    pitch_times = np.sort(np.random.default_rng(4).uniform(0, 5, 40))
    metas = {
        "a": meta("a", 2, 3, channel_names=("L", "R"), unit="x"),
        "db": meta("db", 1, 9, storage="u16db", value_range=(-80.0, 0.0), bins=tuple(range(9))),
        "pitch": meta("pitch", 1, 2, frame_step=None, width_names=("f0", "confidence")),
        "empty": meta("empty", 3, 4),
    }
    entry = commit(
        store,
        "drums",
        "core.multi",
        {"a": a, "db": db, "pitch": pitch},
        metas=metas,
        times={"a": None, "pitch": pitch_times},
        fingerprint={"audio.content": "b2:00ff", "profile.hop_size": 512, "tempo_map": [1, 2]},
        version=3,
    )
    assert set(entry.features) == {"a", "db", "pitch", "empty"}
    assert entry.calculator_version == 3
    assert entry.fingerprint == {
        "audio.content": "b2:00ff",
        "profile.hop_size": 512,
        "tempo_map": [1, 2],
    }
    for name, m in metas.items():
        assert entry.features[name].meta == m

    la = store.load(entry, "a")
    assert isinstance(la.data, np.memmap)  # zero copy
    np.testing.assert_array_equal(la.data, a)
    np.testing.assert_allclose(la.times, 0.01 * np.arange(101))
    assert la.data.dtype == np.float32
    assert la.times.dtype == np.float64

    ldb = store.load(entry, "db")
    assert ldb.data.dtype == np.float32
    assert ldb.data.shape == db.shape
    expected = np.clip(np.nan_to_num(db, nan=-80.0), -80.0, 0.0)
    assert np.abs(ldb.data - expected).max() <= STEP_80DB / 2 + 1e-5
    assert ldb.data[0, 0, 0] == -80.0
    assert ldb.data[0, 0, 1] == 0.0
    assert entry.features["db"].encoding == "u16db"
    assert entry.features["db"].nbytes < db.nbytes  # really stored as 16 bits

    lp = store.load(entry, "pitch", mmap=False)
    np.testing.assert_array_equal(lp.data, pitch)
    np.testing.assert_array_equal(lp.times, pitch_times)
    assert entry.features["pitch"].times_path is not None

    le = store.load(entry, "empty")
    assert le.data.shape == (0, 3, 4)
    assert le.times.shape == (0,)

    part = store.load(entry, "db", frames=slice(10, 20))
    np.testing.assert_array_equal(part.data, ldb.data[10:20])
    np.testing.assert_array_equal(part.times, ldb.times[10:20])

    # the files are ordinary .npy files, readable memory-mapped without pickle
    for f in entry.features.values():
        arr = np.load(store.root / f.path, mmap_mode="r", allow_pickle=False)
        assert arr.shape == (f.frames, f.channels, f.width)
        assert (store.root / f.path).stat().st_size + (
            (store.root / f.times_path).stat().st_size if f.times_path else 0
        ) == f.nbytes
    assert store.total_bytes() == entry.nbytes == sum(f.nbytes for f in entry.features.values())
    assert files_in(store.root, TMP_DIR) == set()


def test_fingerprint_is_readable_json_in_the_index(store: FeatureStore) -> None:
    fp = {"audio.content": "b2:abc", "profile.window": "hann", "é": [1.5, None]}
    commit(store, "s", "c", {"x": frames(0)}, fingerprint=fp)
    with sqlite3.connect(store.root / INDEX_NAME) as db:
        text = db.execute("SELECT fingerprint FROM entries").fetchone()[0]
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
            SCHEMA_VERSION
        )
    assert json.loads(text) == fp
    assert text == json.dumps(fp, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_meta_json_round_trip() -> None:
    m = OutputMeta(
        feature="spectrogram",
        channels=2,
        width=3,
        frame_start=0.5,
        frame_step=None,
        bins=(0.0, 10.5, 21.0),
        bin_unit="Hz",
        unit="dBFS",
        channel_names=("ch1", "ch2"),
        width_names=("a", "b", "c"),
        storage="u16db",
        value_range=(-120.0, 6.0),
    )
    text = meta_to_json(m)
    assert json.loads(text)["bins"] == [0.0, 10.5, 21.0]
    assert meta_from_json(text) == m
    assert meta_from_json(meta_to_json(OutputMeta("rms", 1, 1))) == OutputMeta("rms", 1, 1)
    # a newer writer's extra key is ignored
    assert meta_from_json(text[:-1] + ',"future":1}') == m


def test_params_key_is_kept_byte_for_byte(store: FeatureStore) -> None:
    assert canonical_params(None) == "{}"
    assert canonical_params({"b": 1, "a": 2.5}) == '{"a":2.5,"b":1}'
    assert canonical_params('{"a":2.5}') == '{"a":2.5}'
    with pytest.raises(ValueError, match="JSON object"):
        canonical_params("[1]")
    e = commit(store, "s", "c", {"x": frames(0)}, params='{"fmin":80.0}')
    assert e.key == EntryKey("s", "c", "default", '{"fmin":80.0}')
    assert e.key.params_dict == {"fmin": 80.0}
    assert EntryKey.of("s", "c", params={"fmin": 80.0}) == e.key


def test_writing_keeps_memory_flat(store: FeatureStore) -> None:
    """64 MiB streamed in 1 MiB blocks: the writer never holds more than a block or two."""
    block = np.ones((1024, 1, 256), np.float32)  # 1 MiB
    writer = store.pass_writer("long", "default", None, {"c": {}}, {"c": 1})
    tracemalloc.start()
    try:
        for i in range(64):
            block[0, 0, 0] = i
            writer.write("c", "spec", block)
            writer.write("c", "db", block * -1.0)
        writer.close(
            "c",
            {
                "spec": meta("spec", 1, 256),
                "db": meta("db", 1, 256, storage="u16db", value_range=(-80.0, 0.0)),
            },
            {},
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB"
    entry = store.get(EntryKey("long", "c"))
    assert entry is not None
    assert entry.features["spec"].frames == 64 * 1024
    data = store.load(entry, "spec").data
    assert data.shape == (65536, 1, 256)
    assert [data[i * 1024, 0, 0] for i in (0, 1, 63)] == [0.0, 1.0, 63.0]
    db = store.load(entry, "db", frames=slice(1024, 1026)).data
    assert abs(db[0, 0, 1] - -1.0) <= STEP_80DB


def test_u16db_without_range_is_stored_as_float32(store: FeatureStore) -> None:
    x = frames(5)
    m = meta("x", 2, 3, storage="u16db")
    e = commit(store, "s", "c", {"x": x}, metas={"x": m})
    assert e.features["x"].encoding == "float32"
    assert e.features["x"].meta == m
    np.testing.assert_array_equal(store.load(e, "x").data, x)


def test_writer_rejects_inconsistent_input(store: FeatureStore) -> None:
    w = store.pass_writer("s", "default", "{}", {"c": {}}, {"c": 1})
    with pytest.raises(ValueError, match="fingerprint"):
        w.write("other", "x", frames(0))
    w.write("c", "x", frames(0, 5, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        w.write("c", "x", frames(0, 5, 1, 3))
    with pytest.raises(ValueError, match="meta says"):
        w.close("c", {"x": meta("x", 1, 3)}, {})
    w2 = store.pass_writer("s", "default", "{}", {"c": {}}, {"c": 1})
    w2.write("c", "x", frames(0, 5, 2, 3))
    with pytest.raises(ValueError, match="frame times"):
        w2.close("c", {"x": meta("x", 2, 3)}, {"x": np.arange(4.0)})
    assert store.entries() == []
    assert files_in(store.root, TMP_DIR) == set()
    assert files_in(store.root, DATA_DIR) == set()


def test_pass_through_the_engine(store: FeatureStore, tmp_path: Path) -> None:
    """The writer is a FeatureSink: a real pass stores exactly what MemorySink collects."""
    from diagnostics_app.core.calculators.registry import Registry
    from diagnostics_app.core.engine import MemorySink, PassPlan, run_pass
    from diagnostics_app.core.params import resolve_params
    from diagnostics_app.core.tempo import TempoMap
    from tests.core import audio_factory as af

    sr = 22050
    wav = af.write_float_wav(tmp_path / "a.wav", af.chirp(110, 4000, 2.0, sr), sr)
    reg = Registry.builtin()
    calcs = tuple(reg.get(c) for c in ("core.spectrogram", "core.rms", "core.pitch", "core.peaks"))
    plan = PassPlan(str(wav), resolve_params(), TempoMap(), calcs)
    mem = MemorySink()
    run_pass(plan, mem, block_frames=4096)
    writer = store.pass_writer(
        "a", "default", "{}", {c.id: {"c": c.id} for c in calcs}, {c.id: c.version for c in calcs}
    )
    run_pass(plan, writer, block_frames=4096)
    assert {e.key.calculator_id for e in writer.committed} == {c.id for c in calcs}
    for entry in store.entries_for_source("a"):
        expected = mem.results[entry.key.calculator_id]
        assert set(entry.features) == set(expected)
        for name, res in expected.items():
            got = store.load(entry, name)
            assert got.meta == res.meta
            np.testing.assert_array_equal(got.times, res.times)
            if res.meta.storage == "u16db" and res.meta.value_range is not None:
                lo, hi = res.meta.value_range
                step = (hi - lo) / 65535
                assert np.abs(got.data - res.data).max() <= step / 2 + 1e-4
            else:
                np.testing.assert_array_equal(got.data, res.data)


# --- replace semantics, abort ----------------------------------------------------------------


def test_commit_replaces_the_entry(store: FeatureStore) -> None:
    v1 = commit(store, "s", "c", {"a": frames(1), "b": frames(2)}, version=1, fingerprint={"v": 1})
    old_files = {Path(f.path).name for f in v1.features.values()}
    time.sleep(0.01)
    v2 = commit(store, "s", "c", {"a": frames(3)}, version=2, fingerprint={"v": 2})
    assert set(v2.features) == {"a"}  # b is gone: no merge leftovers
    assert v2.entry_id == v1.entry_id
    assert v2.created == v1.created
    assert v2.updated > v1.updated
    assert v2.commit_id != v1.commit_id
    assert (v2.calculator_version, v2.fingerprint) == (2, {"v": 2})
    np.testing.assert_array_equal(store.load(v2, "a").data, frames(3))
    assert files_in(store.root, DATA_DIR) == referenced(store)
    # the replaced files are the key's previous version until the next replacement
    kept = {Path(p.feature.path).name for p in store.previous_versions()}
    assert kept == old_files
    old_a = Path(v1.features["a"].path).name
    v3 = commit(store, "s", "c", {"a": frames(4)}, version=3, fingerprint={"v": 3})
    assert old_a not in files_in(store.root, DATA_DIR)  # deleted after the next commit
    assert files_in(store.root, DATA_DIR) == referenced(store)
    store.purge()  # nothing in the trash: the previous version of "a" stays
    assert store.previous(v3.key, "a") is not None
    v2 = commit(store, "s", "c", {"a": frames(3)}, version=2, fingerprint={"v": 2})
    assert store.entries() == [v2]
    # an entry that was replaced while a reader held the old listing: a clear error
    with pytest.raises(StoreError, match="recomputed") as err:
        store.load(v1, "a")
    assert_one_line(err.value, Path(v1.features["a"].path).name)


def test_commit_with_no_feature_removes_the_entry(store: FeatureStore) -> None:
    commit(store, "s", "c", {"a": frames(1)})
    w = store.pass_writer("s", "default", "{}", {"c": {}}, {"c": 1})
    w.close("c", {}, {})
    assert store.entries() == []
    assert files_in(store.root, DATA_DIR) == set()


def test_abort_leaves_nothing(store: FeatureStore) -> None:
    keep = commit(store, "s", "keep", {"a": frames(1)})
    w = store.pass_writer("s", "default", "{}", {"c1": {}, "c2": {}}, {"c1": 1, "c2": 1})
    w.write("c1", "a", frames(2))
    w.write("c2", "b", frames(3))
    w.close("c1", {"a": meta("a", 2, 3)}, {})  # c1 commits, c2 is still being written
    assert len(files_in(store.root, TMP_DIR)) == 1
    assert w.pending == ("c2",)
    w.abort()
    assert files_in(store.root, TMP_DIR) == set()
    assert {e.key.calculator_id for e in store.entries()} == {"keep", "c1"}
    with pytest.raises(ValueError, match="aborted"):
        w.write("c2", "b", frames(3))

    # a writer used as a context manager drops what was not committed, also on errors
    def fail_while_writing() -> None:
        with store.pass_writer("s", "default", "{}", {"c3": {}}, {"c3": 1}) as w3:
            w3.write("c3", "x", frames(4))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_while_writing()
    assert files_in(store.root, TMP_DIR) == set()
    assert store.get(EntryKey("s", "c3")) is None
    assert store.get(keep.key) == keep


def test_close_aborts_unfinished_writers(tmp_path: Path) -> None:
    s = FeatureStore.open(tmp_path / "c")
    w = s.pass_writer("s", "default", "{}", {"c": {}}, {"c": 1})
    w.write("c", "a", frames(1))
    s.close()
    assert files_in(tmp_path / "c", TMP_DIR) == set()
    with pytest.raises(StoreError, match="closed"):
        s.entries()
    s.close()  # twice is fine


# --- several connections, several processes --------------------------------------------------


def test_two_stores_see_each_others_commits(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "c") as a, FeatureStore.open(tmp_path / "c") as b:
        assert a.entries() == b.entries() == []
        va, vb = a.version(), b.version()
        e = commit(a, "s", "c", {"x": frames(1)})
        assert b.version() != vb
        assert b.version().entries > vb.entries
        assert b.entries() == [e] == a.entries()
        np.testing.assert_array_equal(b.load(b.entries()[0], "x").data, frames(1))
        b.prune([(e.key, "x")])
        assert a.entries() == []  # a's cached listing noticed b's change
        assert a.version() != va
        f = commit(b, "s2", "c", {"y": frames(2)})
        assert a.entries() == [f]


def test_incremental_listing_equals_a_fresh_one(tmp_path: Path) -> None:
    """The cached, incremental entries() of a long-lived store equals a fresh store's, over a
    random sequence of commits, prunes, restores and purges made by another connection."""
    rnd = random.Random(7)
    with FeatureStore.open(tmp_path / "c") as writer, FeatureStore.open(tmp_path / "c") as poller:
        prunes: list[str] = []
        for step in range(60):
            op = rnd.random()
            if op < 0.55:
                names = rnd.sample(["a", "b", "c"], rnd.randint(1, 3))
                commit(
                    writer,
                    f"s{rnd.randint(0, 4)}",
                    f"k{rnd.randint(0, 2)}",
                    {n: frames(step, 3, 1, 1) for n in names},
                    profile=rnd.choice(["default", "fine"]),
                )
            elif op < 0.8 and writer.entries():
                e = rnd.choice(writer.entries())
                prunes.append(writer.prune([(e.key, rnd.choice(sorted(e.features)))]))
            elif op < 0.93 and prunes:
                writer.restore(prunes.pop(rnd.randrange(len(prunes))))
            elif prunes:
                writer.purge(prunes.pop())
            if rnd.random() < 0.6:
                with FeatureStore.open(tmp_path / "c") as fresh:
                    assert poller.entries() == fresh.entries()
        assert poller.entries() == writer.entries()


def _paused_writer(cache: str) -> None:
    """Child of the live-writer test: write half a feature, wait, then finish and commit."""
    store = FeatureStore.open(cache)
    w = store.pass_writer("live", "default", "{}", {"c": {"g": 1}}, {"c": 1})
    w.write("c", "x", frames(9)[:20])
    print("written", flush=True)
    sys.stdin.readline()
    w.write("c", "x", frames(9)[20:])
    w.close("c", {"x": meta("x", 2, 3)}, {})
    store.close()
    print("committed", flush=True)


def test_a_live_writer_in_another_process_is_never_disturbed(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    FeatureStore.open(cache).close()
    with subprocess.Popen(
        [sys.executable, __file__, "paused-writer", str(cache)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "written"
            tmp_before = files_in(cache, TMP_DIR)
            assert len(tmp_before) == 1
            with FeatureStore.open(cache) as s:  # opening sweeps ...
                assert s.sweep(full=True) == 0  # ... and a forced full sweep removes nothing live
                assert files_in(cache, TMP_DIR) == tmp_before
                child.stdin.write("go\n")
                child.stdin.flush()
                assert child.stdout.readline().strip() == "committed"
                assert child.wait(timeout=30) == 0
                entry = s.get(EntryKey("live", "c"))
                assert entry is not None
                np.testing.assert_array_equal(s.load(entry, "x").data, frames(9))
        finally:
            child.kill()


def test_open_sweeps_what_dead_writers_left(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    with FeatureStore.open(cache) as s:
        live = commit(s, "s", "c", {"x": frames(1)})
    pid, token = dead_pid()
    tag = f"{pid}-{__import__('hashlib').blake2b(token.encode(), digest_size=4).hexdigest()}"
    orphans = [
        cache / TMP_DIR / f"{'a' * 32}.{tag}.npy",  # a temp file
        cache / DATA_DIR / f"{'b' * 32}.{tag}.npy",  # renamed into data/, never committed
        cache / DATA_DIR / f"{'c' * 32}.{tag}.times.npy",
    ]
    mine = cache / TMP_DIR / f"{'d' * 32}.{os.getpid()}-00000000.npy"  # pid reused: dead too
    foreign = cache / DATA_DIR / "README.txt"  # not a store file name: never touched
    for p in [*orphans, mine, foreign]:
        p.write_bytes(b"x")
    gone = cache / DATA_DIR / f"{'e' * 32}.1-00000000.npy"  # listed as garbage by a commit
    gone.write_bytes(b"x")
    with sqlite3.connect(cache / INDEX_NAME) as db:  # what a writer killed mid-commit leaves
        db.execute(
            "INSERT INTO writers (token, pid, start, since) VALUES ('t', ?, ?, 0)", (pid, token)
        )
        db.execute("INSERT INTO garbage VALUES (?)", (f"{DATA_DIR}/{gone.name}",))
    with FeatureStore.open(cache) as s:
        assert not any(p.exists() for p in [*orphans, mine, gone])
        assert foreign.exists()
        assert s.entries() == [live]
        assert files_in(cache, DATA_DIR) == referenced(s) | {"README.txt"}
        np.testing.assert_array_equal(s.load(live, "x").data, frames(1))
        with sqlite3.connect(cache / INDEX_NAME) as db:
            assert db.execute("SELECT COUNT(*) FROM writers").fetchone()[0] == 0
            assert db.execute("SELECT COUNT(*) FROM garbage").fetchone()[0] == 0


def test_process_identity() -> None:
    me = process_start_token()
    assert me
    assert process_alive(os.getpid(), me)
    assert not process_alive(os.getpid(), me + "0")  # same pid, another process
    pid, token = dead_pid()
    assert not process_alive(pid, token)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while process_start_token(zombie.pid) and time.monotonic() < deadline:
        if not process_alive(zombie.pid):  # exited, not yet waited for
            break
        time.sleep(0.01)
    assert not process_alive(zombie.pid)
    zombie.wait()
    assert not process_alive(0)
    assert not process_alive(-1)


# --- prune, restore, purge -------------------------------------------------------------------


def test_prune_restore_purge(store: FeatureStore) -> None:
    d1 = commit(store, "s", "c", {"a": frames(1), "b": frames(2)})
    d2 = commit(store, "t", "c", {"a": frames(3)})
    fine = commit(store, "s", "c", {"a": frames(4), "b": frames(5)}, profile="fine")
    adhoc = commit(store, "s", "c", {"a": frames(6)}, params='{"hop_size":128}')
    before = store.entries()
    total = store.total_bytes()

    pid = store.prune([(d1.key, "b"), (d2.key, "a"), (d1.key, "nope"), (EntryKey("x", "y"), "a")])
    after = {e.key: e for e in store.entries()}
    assert set(after[d1.key].features) == {"a"}
    assert d2.key not in after  # no feature left: the entry is gone
    assert after[fine.key] == fine
    assert after[adhoc.key] == adhoc
    assert store.total_bytes() == total - d1.features["b"].nbytes - d2.features["a"].nbytes
    assert store.trash_bytes() == d1.features["b"].nbytes + d2.features["a"].nbytes
    assert {(t.key, t.feature) for t in store.trash(pid)} == {(d1.key, "b"), (d2.key, "a")}
    assert files_in(store.root, DATA_DIR) >= referenced(store)

    restored = store.restore(pid)
    assert sorted(restored) == sorted([(d1.key, "b"), (d2.key, "a")])
    assert store.entries() == before  # same ids, fingerprints, timestamps, commit ids
    np.testing.assert_array_equal(store.load(store.get(d2.key), "a").data, frames(3))  # type: ignore[arg-type]
    assert store.trash() == []
    assert store.restore(pid) == []

    pid2 = store.prune([(fine.key, "a"), (fine.key, "b")])
    fine_files = {Path(f.path).name for f in fine.features.values()}
    assert fine_files <= files_in(store.root, DATA_DIR)  # still there until purged
    assert store.purge(pid2) == 2
    assert not fine_files & files_in(store.root, DATA_DIR)
    assert store.restore(pid2) == []
    assert store.get(fine.key) is None
    assert files_in(store.root, DATA_DIR) == referenced(store)
    assert {e.key for e in store.entries()} == {d1.key, d2.key, adhoc.key}


def test_restore_after_recompute_keeps_the_newer_data(store: FeatureStore) -> None:
    e = commit(store, "s", "c", {"a": frames(1), "b": frames(2)}, fingerprint={"g": 1})
    pid = store.prune([(e.key, "b")])
    newer = commit(store, "s", "c", {"a": frames(3), "b": frames(4)}, fingerprint={"g": 2})
    assert store.restore(pid) == []
    assert store.entries() == [newer]
    assert len(store.trash(pid)) == 1  # the stale one waits for purge
    assert store.purge() == 1
    assert store.trash() == []
    assert files_in(store.root, DATA_DIR) == referenced(store)


def test_old_trash_is_purged_at_open(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "c") as s:
        e = commit(s, "s", "c", {"a": frames(1)})
        s.prune([(e.key, "a")])
    with FeatureStore.open(tmp_path / "c", trash_max_age=3600) as s:
        assert len(s.trash()) == 1
    with FeatureStore.open(tmp_path / "c", trash_max_age=0) as s:
        assert s.trash() == []
        assert files_in(tmp_path / "c", DATA_DIR) == set()


# --- errors ----------------------------------------------------------------------------------


def test_folder_under_a_regular_file(tmp_path: Path) -> None:
    """Stands in for an unwritable location (root ignores permission bits)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as err:
        FeatureStore.open(blocker / "cache")
    assert_one_line(err.value, str(blocker / "cache"), "Not a directory")
    with pytest.raises(StoreError) as err:
        FeatureStore.open(blocker)
    assert_one_line(err.value, str(blocker))


def test_index_path_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "c" / INDEX_NAME).mkdir(parents=True)
    with pytest.raises(StoreError) as err:
        FeatureStore.open(tmp_path / "c")
    assert_one_line(err.value, INDEX_NAME)


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make ``paths`` unwritable, for root too: root ignores permission bits but not the
    immutable attribute (``chattr +i``); other users get ``chmod a-w``."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    done: list[Path] = []
    try:
        for p in paths:
            if subprocess.run(["chattr", "+i", str(p)], capture_output=True).returncode != 0:
                pytest.skip("chattr +i is not available: cannot make a folder read-only for root")
            done.append(p)
        yield
    finally:
        for p in done:
            subprocess.run(["chattr", "-i", str(p)], check=True)


def test_read_only_folder(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    with FeatureStore.open(cache) as s:
        keep = commit(s, "s", "c", {"a": frames(1)})
    parent = tmp_path / "ro"
    parent.mkdir()

    def open_and_write() -> None:
        with FeatureStore.open(cache) as s:
            commit(s, "s", "c2", {"a": frames(2)})

    with read_only(cache, cache / DATA_DIR, cache / TMP_DIR, *cache.glob(INDEX_NAME + "*")):
        with pytest.raises(StoreError) as err:
            open_and_write()
        assert_one_line(err.value, str(cache))
    with read_only(parent):
        with pytest.raises(StoreError) as err:
            FeatureStore.open(parent / "new")
        assert_one_line(err.value, str(parent / "new"), "cannot create")
    with FeatureStore.open(cache) as s:  # writable again: nothing was harmed
        assert s.entries() == [keep]


def test_corrupt_index(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    cache.mkdir()
    (cache / INDEX_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as err:
        FeatureStore.open(cache)
    assert_one_line(err.value, str(cache / INDEX_NAME), "not a database", "corrupt")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    FeatureStore.open(tmp_path / "c").close()
    with sqlite3.connect(tmp_path / "c" / INDEX_NAME) as db:
        db.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(StoreError) as err:
        FeatureStore.open(tmp_path / "c")
    assert_one_line(err.value, f"schema version {SCHEMA_VERSION + 1}", "newer", INDEX_NAME)


def test_missing_or_corrupt_array_file(store: FeatureStore) -> None:
    e = commit(
        store,
        "s",
        "c",
        {"a": frames(1), "b": frames(2), "t": frames(3)},
        times={"t": np.arange(50.0)},
    )
    (store.root / e.features["a"].path).unlink()
    with pytest.raises(StoreError) as err:
        store.load(e, "a")
    assert_one_line(err.value, e.features["a"].path, "missing")
    path_b = store.root / e.features["b"].path
    path_b.write_bytes(path_b.read_bytes()[:200])  # cut
    for mmap in (True, False):
        with pytest.raises(StoreError) as err:
            store.load(e, "b", mmap=mmap)
        assert_one_line(err.value, e.features["b"].path, "corrupt")
    np.save(path_b, np.zeros((3, 2, 3), np.float32))  # a valid file of the wrong shape
    with pytest.raises(StoreError, match="index says") as err:
        store.load(e, "b")
    assert_one_line(err.value, e.features["b"].path)
    assert e.features["t"].times_path is not None
    (store.root / e.features["t"].times_path).write_bytes(b"garbage")
    with pytest.raises(StoreError) as err:
        store.load(e, "t")
    assert_one_line(err.value, e.features["t"].times_path, "corrupt")
    with pytest.raises(StoreError, match="no feature"):
        store.load(e, "zzz")


def _fill_disk_child(cache: str) -> None:
    """Child: a 1 MiB file size limit stands in for a full disk (EFBIG instead of ENOSPC)."""
    store = FeatureStore.open(cache)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
    w = store.pass_writer("big", "default", "{}", {"c": {}}, {"c": 1})
    try:
        for _ in range(8):
            w.write("c", "x", np.ones((1024, 1, 64), np.float32))  # 256 KiB each
        w.close("c", {"x": meta("x", 1, 64)}, {})
    except StoreError as exc:
        w.abort()
        print(f"StoreError: {exc}", flush=True)
    store.close()


def test_full_disk_is_a_store_error_and_leaves_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    with FeatureStore.open(cache) as s:
        keep = commit(s, "s", "c", {"a": frames(1)})
    out = subprocess.run(
        [sys.executable, __file__, "fill-disk", str(cache)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert out.startswith("StoreError: "), out
    assert "\n" not in out
    assert f"{cache / TMP_DIR}" in out
    assert "File too large" in out
    with FeatureStore.open(cache) as s:
        assert s.entries() == [keep]
        assert files_in(cache, TMP_DIR) == set()


# --- digests ---------------------------------------------------------------------------------


def test_digest_cache(tmp_path: Path) -> None:
    audio = tmp_path / "a.bin"
    audio.write_bytes(b"abc" * 1000)
    stamp = FileStamp.of(audio)
    with FeatureStore.open(tmp_path / "c") as s:
        assert s.get_digest(str(audio), stamp) is None
        s.put_digest(str(audio), stamp, "b2:1234")
        assert s.get_digest(str(audio), stamp) == "b2:1234"
        changed = FileStamp(stamp.size, stamp.mtime_ns + 1, stamp.inode, stamp.ctime_ns)
        assert s.get_digest(str(audio), changed) is None
        v = s.version()
        s.put_digest(str(audio), stamp, "b2:5678")  # overwrite; not an entries/jobs change
        assert s.version() == v
    with FeatureStore.open(tmp_path / "c") as s:  # persistent
        assert s.get_digest(str(audio), stamp) == "b2:5678"
    with FeatureStore.open(tmp_path / "c2") as s:
        first = content_digest(audio, s)
        key = str(audio.resolve())
        assert s.get_digest(key, FileStamp.of(audio)) == first
        s.put_digest(key, FileStamp.of(audio), "b2:cached")
        assert content_digest(audio, s) == "b2:cached"  # taken from the store, no re-read


# --- jobs ------------------------------------------------------------------------------------


def job(source: str = "s", calcs: tuple[str, ...] = ("c",), **kw: Any) -> JobRecord:
    return JobRecord.new(
        source, calcs, kw.pop("profile", "default"), kw.pop("params", None), ("x",), **kw
    )


def test_job_records(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "c") as a, FeatureStore.open(tmp_path / "c") as b:
        j = job(calcs=("c1", "c2"), origin="gui")
        assert j.owner_pid == os.getpid()
        assert j.owner_start == process_start_token()
        v = b.version()
        a.add_job(j)
        assert b.version().jobs > v.jobs
        assert b.version().entries == v.entries
        assert b.jobs() == [j]
        assert b.jobs(active_only=True) == [j]
        assert b.job(j.id) == j
        v = b.version()
        assert a.update_job(j.id, state="running", progress=0.25, label="decoding")
        assert b.version() != v
        got = b.job(j.id)
        assert got is not None
        assert (got.state, got.progress, got.label, got.message) == (
            "running",
            0.25,
            "decoding",
            None,
        )
        assert got.updated >= j.updated
        assert got.created == j.created
        a.update_job(j.id, progress=None)
        assert b.job(j.id).progress is None  # type: ignore[union-attr]
        assert b.job(j.id).label == "decoding"  # type: ignore[union-attr]  # unchanged fields stay
        assert not a.update_job("nope", state="done")
        with pytest.raises(ValueError, match="job state"):
            a.update_job(j.id, state="exploded")
        assert b.latest_jobs_by_key() == {}
        a.update_job(j.id, state="failed", message="bad audio", progress=None)
        latest = b.latest_jobs_by_key()
        assert set(latest) == {EntryKey("s", "c1"), EntryKey("s", "c2")}
        assert latest[EntryKey("s", "c1")].message == "bad audio"
        assert b.jobs(active_only=True) == []
        time.sleep(0.01)
        j2 = job(calcs=("c1",))
        a.add_job(j2)
        a.update_job(j2.id, state="done", progress=1.0)
        latest = b.latest_jobs_by_key()
        assert latest[EntryKey("s", "c1")].id == j2.id
        assert latest[EntryKey("s", "c2")].id == j.id
        assert j2.to_json()["calculator_ids"] == ["c1"]


def test_finished_job_records_are_trimmed_per_key(store: FeatureStore) -> None:
    other = job(source="t")
    store.add_job(other)
    store.update_job(other.id, state="done")
    ids = []
    for _ in range(FINISHED_JOBS_PER_KEY + 5):
        j = job(calcs=("c1",))
        store.add_job(j)
        store.update_job(j.id, state="done")
        ids.append(j.id)
    both = job(calcs=("c1", "c2"))  # the only record of c2: kept while it is c2's latest
    store.add_job(both)
    store.update_job(both.id, state="failed")
    running = job(calcs=("c1",))
    store.add_job(running)
    store.update_job(running.id, state="running")
    kept = {j.id for j in store.jobs()}
    assert other.id in kept
    assert running.id in kept
    assert both.id in kept
    assert len([i for i in ids if i in kept]) == FINISHED_JOBS_PER_KEY - 1
    assert ids[-1] in kept
    assert ids[0] not in kept


def _job_owner_child(cache: str) -> None:
    store = FeatureStore.open(cache)
    j = job(origin="cli", job_id="orphan")
    store.add_job(j)
    store.update_job(j.id, state="running", progress=0.5)
    store.close()
    print(os.getpid(), flush=True)
    # exits without finishing its job, as a process that crashed


def test_reap_jobs_of_dead_owners(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    with FeatureStore.open(cache) as s:
        mine = job(job_id="mine")
        s.add_job(mine)
        out = subprocess.run(
            [sys.executable, __file__, "job-owner", str(cache)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=True,
        )
        child_pid = int(out.stdout.strip())
        reused = dataclasses.replace(mine, id="reused", owner_start="0:1")  # pid reused
        s.add_job(reused)
        orphan = s.job("orphan")
        assert orphan is not None
        assert orphan.state == "running"
        assert orphan.owner_pid == child_pid
        v = s.version()
        assert sorted(s.reap_dead_jobs()) == ["orphan", "reused"]
        assert s.version().jobs > v.jobs
        orphan = s.job("orphan")
        assert orphan is not None
        assert orphan.state == "failed"
        assert orphan.message == f"owner process {child_pid} died"
        assert s.job("reused").message == f"owner process {os.getpid()} died"  # type: ignore[union-attr]
        assert s.job("mine").state == "queued"  # type: ignore[union-attr]  # owner alive
        assert s.reap_dead_jobs() == []
        assert {j.id for j in s.jobs(active_only=True)} == {"mine"}


# --- listing cost (its speed is measured in bench/store_listing.py) ------------------------


def insert_entries(cache: Path, count: int, spec: str) -> None:
    """``count`` entries of one spectrogram feature each, all with the meta ``spec``, inserted
    with SQL (100,000 real commits would take minutes of fsyncs): they have no files, so they
    are listed without verification (test_store_verify.py counts what verification reads)."""
    FeatureStore.open(cache).close()
    with sqlite3.connect(cache / INDEX_NAME) as db:
        db.execute("INSERT INTO metas (json) VALUES (?)", (spec,))
        db.executemany(
            "INSERT INTO entries (id, source_id, calculator_id, profile, params, fingerprint, "
            "calculator_version, commit_id, created, updated, seq) VALUES (?,?,?,?,?,?,?,?,?,?,1)",
            (
                (
                    i,
                    f"s{i // 10}",
                    f"c{i % 10}",
                    "default",
                    "{}",
                    json.dumps({"audio.content": f"b2:{i:032x}", "profile.hop_size": 512}),
                    1,
                    f"{i:032x}",
                    1.0,
                    1.0,
                )
                for i in range(1, count + 1)
            ),
        )
        db.executemany(
            "INSERT INTO features (entry_id, feature, path, times_path, meta_id, encoding, "
            "frames, channels, width, nbytes, stamp, checksum) VALUES "
            "(?, 'spectrogram', ?, NULL, 1, 'u16db', 100, 1, 1025, 1000, NULL, NULL)",
            ((i, f"data/{i}.npy") for i in range(1, count + 1)),
        )
        db.execute("UPDATE counters SET value = 1 WHERE name = 'entries'")


def test_listing_cost_does_not_grow_with_the_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """entries() on the hot path of ``check``, counted instead of timed (tests never assert
    wall-clock times): the same few queries for 10 entries as for 3,000 (one joined query, no
    query per row), each distinct meta parsed once per store instance (a spectrogram's holds
    1025 bins), the cyclic GC paused while the objects are built, an unchanged store answered
    from the kept listing (the same objects, no entry row read), and after a commit only the
    entries with a newer ``seq`` read again."""
    from diagnostics_app.core.store import index as index_module
    from diagnostics_app.core.store.index import ENTRY_SQL

    if not gc.isenabled():  # an in-process CLI command earlier in this worker turned it off
        gc.enable()
        request.addfinalizer(gc.disable)
    parsed: list[str] = []
    real_parse = index_module.meta_from_json
    monkeypatch.setattr(
        index_module, "meta_from_json", lambda text: parsed.append(text) or real_parse(text)
    )
    built: list[tuple[int, bool]] = []  # (rows, whether the GC was on) per building pass
    real_build = index_module._entries_from_rows

    def build(rows: Any, metas: Any) -> list[StoredEntry]:
        built.append((len(rows), gc.isenabled()))
        return real_build(rows, metas)

    monkeypatch.setattr(index_module, "_entries_from_rows", build)
    bins = tuple(float(b) for b in range(1025))
    spec = meta_to_json(
        meta("spectrogram", 1, 1025, bins=bins, storage="u16db", value_range=(-80.0, 0.0))
    )
    queries: dict[int, tuple[list[str], list[str]]] = {}
    for count in (10, 3000):
        cache = tmp_path / str(count)
        insert_entries(cache, count, spec)
        sql: list[str] = []

        def trace(q: str, sql: list[str] = sql) -> None:
            # only what reads entries: a lease heartbeat on this connection is not counted
            if re.search(r"\b(entries|features|metas)\b", q):
                sql.append(q)

        with FeatureStore.open(cache) as s:
            s._db.live().set_trace_callback(trace)
            parsed.clear()
            built.clear()
            listed = s.entries(verify=False)
            cold = sql.copy()
            assert len(listed) == count
            assert listed[0].features["spectrogram"].meta.bins == bins
            assert (parsed, built) == ([spec], [(count, False)])
            assert gc.isenabled()

            sql.clear()
            again = s.entries(verify=False)
            assert all(a is b for a, b in zip(again, listed, strict=True))
            assert not [q for q in sql if q.startswith(ENTRY_SQL)], "unchanged, yet rows read"
            assert built == [(count, False)]

            parsed.clear()
            new = commit(s, "new", "c", {"a": frames(1)})
            sql.clear()
            after = s.entries(verify=False)
            incremental = sql.copy()
            assert len(after) == count + 1
            assert all(a is b for a, b in zip(after[:-1], listed, strict=True))  # kept
            assert after[-1].entry_id == new.entry_id
            assert built[-1] == (1, False)  # only the new entry's row was read
            assert len(parsed) == 1  # only its meta (a new one), and once
            s._db.live().set_trace_callback(None)
        queries[count] = (cold, incremental)
    assert queries[10] == queries[3000]
    assert sum(q.startswith(ENTRY_SQL) for q in queries[10][0]) == 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    {
        "paused-writer": _paused_writer,
        "fill-disk": _fill_disk_child,
        "job-owner": _job_owner_child,
    }[sys.argv[1]](sys.argv[2])
