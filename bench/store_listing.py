"""Benchmark: ``FeatureStore.entries()`` at 100,000 entries (the hot path of ``check``).

    .venv/bin/python bench/store_listing.py [--entries 100000] [--runs 5]

An index of N entries (one spectrogram feature each, all sharing one 1025-bin meta) is
written with SQL into ``bench/out/listing/`` (no data files: listed with ``verify=False``, so
what is timed is the index read and the objects built; ``bench/diagnostics.py`` times the
verified listing of a real store). Medians of ``--runs``, each in a fresh store instance:

- cold: the first ``entries()`` of a store instance;
- unchanged: ``entries()`` again (the kept listing);
- after a commit: one new entry committed, then ``entries()`` (only newer rows read);
- the floor: the same joined SELECT through ``sqlite3`` directly, ``fetchall`` only.

The test suite checks the shape of this cost without a clock
(``tests/core/test_store.py::test_listing_cost_does_not_grow_with_the_entries``: the same
queries whatever N, each meta parsed once); the times live here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.store import INDEX_NAME, FeatureStore, meta_to_json
from diagnostics_app.core.store.index import ENTRY_SQL

FOLDER = _util.OUT_DIR / "listing"


def build(count: int) -> Path:
    """A store of ``count`` entries in ``FOLDER`` (rebuilt every run: a commit adds to it)."""
    shutil.rmtree(FOLDER, ignore_errors=True)
    FeatureStore.open(FOLDER).close()
    bins = tuple(float(b) for b in range(1025))
    spec = OutputMeta(
        "spectrogram", 1, 1025, frame_step=0.01, bins=bins, storage="u16db", value_range=(-80, 0)
    )
    with sqlite3.connect(FOLDER / INDEX_NAME) as db:
        db.execute("INSERT INTO metas (json) VALUES (?)", (meta_to_json(spec),))
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
    return FOLDER


def commit_one(store: FeatureStore, n: int) -> None:
    writer = store.pass_writer(f"new{n}", "default", "{}", {"c": {"gen": n}}, {"c": 1})
    writer.write("c", "a", np.zeros((10, 1, 1), np.float32))
    writer.close("c", {"a": OutputMeta("a", 1, 1, frame_step=0.01)}, {})


def one_run(folder: Path, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with FeatureStore.open(folder) as store:
        t0 = time.perf_counter()
        store.entries(verify=False)
        out["cold"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.entries(verify=False)
        out["unchanged"] = time.perf_counter() - t0
        commit_one(store, n)
        t0 = time.perf_counter()
        store.entries(verify=False)
        out["after a commit"] = time.perf_counter() - t0
    conn = sqlite3.connect(folder / INDEX_NAME)
    t0 = time.perf_counter()
    conn.execute(f"{ENTRY_SQL} ORDER BY e.id, f.feature").fetchall()
    out["floor (sqlite3 fetchall)"] = time.perf_counter() - t0
    conn.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    folder = build(args.entries)
    one_run(folder, 0)  # warm the page cache
    runs = [one_run(folder, n + 1) for n in range(args.runs)]
    print(f"entries(verify=False), {args.entries:,} entries, medians of {args.runs} runs")
    for name in runs[0]:
        times = [r[name] for r in runs]
        print(
            f"  {name:<28}{statistics.median(times):>9.4f} s   "
            + " ".join(f"{t:.4f}" for t in times)
        )
    floor = statistics.median(r["floor (sqlite3 fetchall)"] for r in runs)
    cold = statistics.median(r["cold"] for r in runs)
    print(f"  cold / floor: {cold / floor:.2f}x")
    print("machine: " + "; ".join(f"{k} {v}" for k, v in _util.machine().items()))


if __name__ == "__main__":
    main()
