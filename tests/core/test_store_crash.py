"""Crash safety of the feature store, proven by killing real writers.

A writer process commits entries in a loop (and now and then prunes, restores or purges);
the parent SIGKILLs it at a random moment, many times over, and after each kill reopens the
store and checks that:

- every listed entry loads completely and equals what the writer meant to write for it: the
  data is a deterministic function of the entry key, a generation number stored in the
  entry's fingerprint and the feature name;
- no merge leftovers: an entry holds only features its generation produces, and (unless a
  purge may have taken some) exactly those, counting the ones in the trash;
- no orphan files: ``data/`` holds exactly the referenced files and ``tmp/`` nothing.

While the writer runs, the parent also reads the store concurrently: every entry it lists
loads and is right (or was replaced meanwhile, which ``load`` reports as such).

The random delays only choose the moment of the kill; no assertion depends on timing.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store import (
    DATA_DIR,
    INDEX_NAME,
    TMP_DIR,
    EntryKey,
    FeatureStore,
    StoredEntry,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="kill tests use forkserver and /proc"
)

ITERATIONS = 40
SEED = 20240611
KEYS = [
    EntryKey(source, calc, profile, params)
    for source in ("drums", "bass")
    for calc in ("core.a", "core.b")
    for profile, params in (("default", "{}"), ("fine", '{"hop_size":128}'))
]
CHANNELS, WIDTH = 2, 16
RANGE = (-80.0, 0.0)


def features_for(gen: int) -> tuple[str, ...]:
    """Which features generation ``gen`` produces: the set changes from one to the next, so a
    feature left over from an earlier generation shows."""
    return (("a", "db", "t"), ("a", "db"), ("a", "t", "c"))[gen % 3]


def data_for(key: EntryKey, gen: int, feature: str) -> tuple[np.ndarray, np.ndarray | None]:
    seed = zlib.crc32(f"{key}|{gen}|{feature}".encode())
    rng = np.random.default_rng(seed)
    n = 40 + seed % 300
    data = (rng.standard_normal((n, CHANNELS, WIDTH)) * 30 - 40).astype(np.float32)
    times = np.cumsum(rng.uniform(0.001, 0.02, n)) if feature == "t" else None
    return data, times


def meta_for(feature: str) -> OutputMeta:
    if feature == "db":
        return OutputMeta(
            feature, CHANNELS, WIDTH, frame_step=0.01, storage="u16db", value_range=RANGE
        )
    return OutputMeta(feature, CHANNELS, WIDTH, frame_step=None if feature == "t" else 0.01)


# --- the writer (a child process) ------------------------------------------------------------


def writer(cache: str, gen0: int, ready: multiprocessing.synchronize.Event, log: str) -> None:
    rnd = random.Random(gen0)
    store = FeatureStore.open(cache)
    ready.set()
    gen = gen0
    while True:
        key = rnd.choice(KEYS)
        fp = {"gen": gen, "key": [key.source_id, key.calculator_id, key.profile, key.params]}
        w = store.pass_writer(
            key.source_id, key.profile, key.params, {key.calculator_id: fp}, {key.calculator_id: 1}
        )
        metas, times = {}, {}
        for feature in features_for(gen):
            data, t = data_for(key, gen, feature)
            for start in range(0, len(data), 37):  # streamed in blocks
                w.write(key.calculator_id, feature, data[start : start + 37])
            metas[feature], times[feature] = meta_for(feature), t
        w.close(key.calculator_id, metas, times)
        gen += 1
        if rnd.random() < 0.25 and (listed := store.entries()):
            entry = rnd.choice(listed)
            prune_id = store.prune([(entry.key, rnd.choice(sorted(entry.features)))])
            if rnd.random() < 0.6:
                store.restore(prune_id)
            else:
                with open(log, "a") as f:  # the intent, before the purge: see check_store
                    f.write(entry.commit_id + "\n")
                store.purge(prune_id)


# --- the checks ------------------------------------------------------------------------------


def check_entry(store: FeatureStore, entry: StoredEntry) -> int:
    """The entry holds what its writer meant; returns its generation."""
    fp = entry.fingerprint
    assert fp["key"] == [
        entry.key.source_id,
        entry.key.calculator_id,
        entry.key.profile,
        entry.key.params,
    ]
    gen = fp["gen"]
    assert set(entry.features) <= set(features_for(gen)), (entry.key, gen, sorted(entry.features))
    for feature in entry.features:
        loaded = store.load(entry, feature, mmap=False)
        expected, times = data_for(entry.key, gen, feature)
        assert loaded.data.shape == expected.shape
        if feature == "db":
            step = (RANGE[1] - RANGE[0]) / 65535
            assert np.abs(loaded.data - np.clip(expected, *RANGE)).max() <= step / 2 + 1e-4
        else:
            np.testing.assert_array_equal(loaded.data, expected)
        if times is not None:
            np.testing.assert_array_equal(loaded.times, times)
    return int(gen)


def check_store(cache: Path, purged: set[str]) -> set[int]:
    """Open after a kill: everything listed is whole and right, and nothing is orphaned."""
    gens = set()
    with FeatureStore.open(cache) as store:
        entries = store.entries()
        with sqlite3.connect(cache / INDEX_NAME) as db:
            trash = db.execute("SELECT entry_id, commit_id, feature FROM trash").fetchall()
            referenced = {
                Path(p).name
                for row in db.execute(
                    "SELECT path, times_path FROM features UNION ALL SELECT path, times_path "
                    "FROM trash UNION ALL SELECT path, times_path FROM previous"
                )
                for p in row
                if p
            }
            assert db.execute("SELECT COUNT(*) FROM garbage").fetchone()[0] == 0
            assert db.execute("SELECT COUNT(*) FROM writers").fetchone()[0] == 0
        for entry in entries:
            gens.add(check_entry(store, entry))
            in_trash = {
                f for eid, cid, f in trash if (eid, cid) == (entry.entry_id, entry.commit_id)
            }
            held = set(entry.features) | in_trash
            if entry.commit_id in purged:
                assert held <= set(features_for(entry.fingerprint["gen"]))
            else:  # complete: exactly what its generation produces
                assert held == set(features_for(entry.fingerprint["gen"])), entry.key
        for version in store.previous_versions():  # the replaced data, whole and right too
            gen = version.fingerprint["gen"]
            assert version.feature.feature in features_for(gen)
            loaded = store.load_previous(version, mmap=False)
            expected, times = data_for(version.key, gen, version.feature.feature)
            assert loaded.data.shape == expected.shape
            if times is not None:
                np.testing.assert_array_equal(loaded.times, times)
        assert {p.name for p in (cache / DATA_DIR).iterdir()} == referenced
        assert list((cache / TMP_DIR).iterdir()) == []
    return gens


def read_concurrently(cache: Path, until: float) -> int:
    """Read while the writer writes: listed entries load and are right. Returns loads done."""
    loads = 0
    with FeatureStore.open(cache) as store:
        while time.monotonic() < until:
            for entry in store.entries():
                try:
                    check_entry(store, entry)
                except StoreError as exc:
                    error = str(exc)
                else:
                    loads += 1
                    continue
                # only an entry replaced or purged after it was listed may fail to load
                assert "recomputed" in error or "pruned" in error, error
                assert store.get(entry.key) != entry
    return loads


# --- the test --------------------------------------------------------------------------------


def test_sigkilled_writers_never_break_the_store(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    log = tmp_path / "purged.log"
    log.touch()
    FeatureStore.open(cache).close()
    # forkserver: children are forks of a clean, single-threaded server that has already
    # imported this module, so they start in milliseconds without forking pytest's threads
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    rnd = random.Random(SEED)
    seen: set[int] = set()
    loads = 0
    for i in range(ITERATIONS):
        ready = ctx.Event()
        child = ctx.Process(
            target=writer, args=(str(cache), i * 1_000_000, ready, str(log)), daemon=True
        )
        child.start()
        try:
            if i % 2 == 0:  # from the start: sometimes while it opens and sweeps
                deadline = time.monotonic() + rnd.uniform(0.0, 0.4)
            else:  # while it is writing
                assert ready.wait(30)
                deadline = time.monotonic() + rnd.uniform(0.0, 0.25)
            if i % 4 == 1:
                loads += read_concurrently(cache, deadline)
            else:
                time.sleep(max(0.0, deadline - time.monotonic()))
        finally:
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)
            child.join()
            assert child.exitcode == -signal.SIGKILL, (
                f"the writer failed on its own ({child.exitcode})"
            )
            child.close()
        seen |= check_store(cache, set(log.read_text().split()))
    # the loop did exercise the store: many generations committed, entries read while written
    assert len(seen) >= 10
    assert loads > 0
