"""``FeatureStore.import_entries``: many entries in one transaction, ending exactly as if each
had been written through a pass writer (same files, same rows, same fingerprint JSON)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.store import (
    DATA_DIR,
    INDEX_NAME,
    TMP_DIR,
    EntryImport,
    EntryKey,
    FeatureStore,
    StoredEntry,
)


def meta(name: str, channels: int = 1, width: int = 1, **kw: Any) -> OutputMeta:
    kw.setdefault("frame_step", 0.01)
    return OutputMeta(feature=name, channels=channels, width=width, **kw)


def frames(seed: int, n: int = 20, channels: int = 2, width: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, channels, width)).astype(np.float32)


FP = {"audio.content": "b2:00ff", "profile.hop_size": 512, "é": [1.5, None], "tempo_map": [1]}


def sample_item(key: EntryKey, seed: int = 0) -> EntryImport:
    """Every case the writer handles: float32 with channel names, u16db (with clipping and a
    NaN), explicit times, a declared-but-empty feature, and an array nobody declared."""
    db = np.random.default_rng(seed + 1).uniform(-95, 5, (16, 1, 9)).astype(np.float64)
    db[0, 0, :3] = [-80.0, 0.0, np.nan]
    pitch = frames(seed + 2, 12, 1, 2)
    return EntryImport(
        key=key,
        fingerprint=FP,
        version=3,
        metas={
            "a": meta("a", 2, 3, channel_names=("L", "R"), unit="x"),
            "db": meta("db", 1, 9, storage="u16db", value_range=(-80.0, 0.0), bins=tuple(range(9))),
            "pitch": meta("pitch", 1, 2, frame_step=None, width_names=("f0", "confidence")),
            "empty": meta("empty", 3, 4),
        },
        arrays={"a": frames(seed), "db": db, "pitch": pitch, "undeclared": frames(seed + 3)},
        times={"a": None, "pitch": np.sort(np.random.default_rng(seed + 4).uniform(0, 5, 12))},
    )


def write_through_pass_writer(store: FeatureStore, item: EntryImport, chunk: int = 5) -> None:
    calc = item.key.calculator_id
    writer = store.pass_writer(
        item.key.source_id,
        item.key.profile,
        item.key.params,
        {calc: item.fingerprint},
        {calc: item.version},
    )
    for name, data in item.arrays.items():
        for start in range(0, len(data), chunk):
            writer.write(calc, name, data[start : start + chunk])
    writer.close(calc, item.metas, dict(item.times))


def index_rows(store: FeatureStore) -> list[tuple[Any, ...]]:
    """Entry and feature rows without what differs between two commits (ids, file names,
    commit ids, timestamps)."""
    with sqlite3.connect(store.root / INDEX_NAME) as db:
        rows = db.execute(
            "SELECT e.source_id, e.calculator_id, e.profile, e.params, e.fingerprint, "
            "e.calculator_version, f.feature, f.times_path IS NULL, m.json, f.encoding, "
            "f.frames, f.channels, f.width, f.nbytes FROM entries e "
            "JOIN features f ON f.entry_id = e.id JOIN metas m ON m.id = f.meta_id "
            "ORDER BY e.source_id, e.calculator_id, e.profile, e.params, f.feature"
        ).fetchall()
    return [tuple(r) for r in rows]


def file_bytes(store: FeatureStore, entry: StoredEntry) -> dict[str, tuple[bytes, bytes | None]]:
    out = {}
    for name, f in entry.features.items():
        times = (store.root / f.times_path).read_bytes() if f.times_path else None
        out[name] = ((store.root / f.path).read_bytes(), times)
    return out


def on_disk(root: Path, sub: str) -> set[str]:
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


@pytest.fixture
def two_stores(tmp_path: Path) -> Any:
    with FeatureStore.open(tmp_path / "w") as w, FeatureStore.open(tmp_path / "i") as i:
        yield w, i


@pytest.mark.parametrize("durable", [False, True])
def test_import_equals_the_pass_writer(two_stores: Any, durable: bool) -> None:
    by_writer, by_import = two_stores
    items = [
        sample_item(EntryKey("drums", "core.multi", "default", "{}"), 0),
        sample_item(EntryKey("drums", "core.multi", "fine", '{"fmin":80.0}'), 10),
        sample_item(EntryKey("bass", "core.other", "default", "{}"), 20),
    ]
    for item in items:
        write_through_pass_writer(by_writer, item)
    imported = by_import.import_entries(items, durable=durable)

    assert index_rows(by_import) == index_rows(by_writer)
    assert len(imported) == 3
    for item, entry in zip(items, imported, strict=True):
        reference = by_writer.get(item.key)
        assert reference is not None
        assert by_import.get(item.key) == entry
        assert entry.fingerprint_json == reference.fingerprint_json
        assert entry.fingerprint == FP
        assert set(entry.features) == {"a", "db", "pitch", "empty"}  # "undeclared" dropped
        assert file_bytes(by_import, entry) == file_bytes(by_writer, reference)
        for name in entry.features:
            got, want = by_import.load(entry, name), by_writer.load(reference, name)
            np.testing.assert_array_equal(got.data, want.data)
            np.testing.assert_array_equal(got.times, want.times)
            assert got.meta == want.meta == item.metas[name]
    assert by_import.total_bytes() == by_writer.total_bytes()
    assert on_disk(by_import.root, DATA_DIR) == referenced(by_import)
    assert on_disk(by_import.root, TMP_DIR) == set()
    assert by_import.sweep(full=True) == 0  # nothing orphaned


def test_import_replaces_entries_and_lists_once(tmp_path: Path) -> None:
    key = EntryKey("s", "c")
    with FeatureStore.open(tmp_path / "c") as store:
        write_through_pass_writer(store, sample_item(key, 0))
        assert len(store.entries()) == 1  # listing cached; the import must show up in it
        first = store.get(key)
        assert first is not None
        version = store.version().entries
        new = EntryImport(key, {"gen": 2}, 4, {"x": meta("x", 2, 3)}, {"x": frames(5)})
        other = EntryImport(EntryKey("t", "c"), {"gen": 1}, 1, {"y": meta("y")}, {})
        imported = store.import_entries([new, other])
        assert store.version().entries == version + 1  # one transaction
        listed = {e.key: e for e in store.entries()}
        assert set(listed) == {key, EntryKey("t", "c")}
        replaced = listed[key]
        assert replaced.entry_id == first.entry_id
        assert replaced.created == first.created
        assert replaced.commit_id != first.commit_id
        assert set(replaced.features) == {"x"}  # replaced, not merged
        assert replaced.fingerprint == {"gen": 2}
        assert replaced.calculator_version == 4
        assert listed[EntryKey("t", "c")].features["y"].frames == 0
        assert sorted(imported, key=lambda e: e.key) == sorted(listed.values(), key=lambda e: e.key)
        assert on_disk(store.root, DATA_DIR) == referenced(store)  # old files deleted

        # an item without metas removes the entry; a later item of a key wins
        again = [
            EntryImport(key, {"gen": 3}, 1, {"x": meta("x", 2, 3)}, {"x": frames(6)}),
            EntryImport(key, {"gen": 4}, 1, {"z": meta("z")}, {"z": np.ones((4, 1, 1))}),
            EntryImport(EntryKey("t", "c"), {}, 1, {}),
        ]
        imported = store.import_entries(again)
        assert [e.key for e in imported] == [key]
        listed = {e.key: e for e in store.entries()}
        assert set(listed) == {key}
        assert set(listed[key].features) == {"z"}
        assert listed[key].fingerprint == {"gen": 4}
        assert on_disk(store.root, DATA_DIR) == referenced(store)


def test_params_are_canonical(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "c") as store:
        with pytest.raises(ValueError, match="JSON object"):
            store.import_entries([EntryImport(EntryKey("s", "c", "default", "[1]"), {}, 1, {})])
        (e,) = store.import_entries(
            [EntryImport(EntryKey.of("s", "c", params={"b": 1, "a": 2.5}), {}, 1, {"x": meta("x")})]
        )
        assert e.key.params == '{"a":2.5,"b":1}'


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"x": np.zeros((3, 1))}, "frames must be"),
        ({"x": np.zeros((3, 2, 1))}, "channels"),
        ({"t": np.zeros((3, 1, 1))}, "frame times"),
    ],
)
def test_a_bad_item_imports_nothing(
    tmp_path: Path, bad: Mapping[str, np.ndarray], message: str
) -> None:
    with FeatureStore.open(tmp_path / "c") as store:
        good = EntryImport(EntryKey("s", "ok"), {}, 1, {"x": meta("x")}, {"x": np.ones((3, 1, 1))})
        wrong = EntryImport(
            EntryKey("s", "bad"),
            {},
            1,
            {"x": meta("x"), "t": meta("t", frame_step=None)},
            bad,
            {"t": np.zeros(5)},
        )
        with pytest.raises(ValueError, match=message):
            store.import_entries([good, wrong])
        assert store.entries() == []
        assert on_disk(store.root, DATA_DIR) == set()
