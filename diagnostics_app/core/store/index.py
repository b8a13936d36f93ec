"""Entries in the index: listing them fast, and committing new data for a key.

Committing (:func:`commit_files`, :func:`commit_import`)
    Files first, then ONE transaction: every file is durable in ``data/`` before the
    transaction that references it, which *replaces* the entry: its previous feature rows
    become exactly the new ones (a feature the calculator no longer produces disappears;
    nothing is merged), and the replaced files are listed as garbage in the same transaction
    and deleted after the commit.

Reading (the hot path of ``check``: 100,000 entries list in ~0.7 s cold on a laptop-class VM)
    :meth:`EntryIndex.entries` is one joined query. Output metas (a spectrogram's carries
    its 1025 bin centres) are stored once in a ``metas`` table and referenced by id, so rows
    stay small and each distinct meta is parsed once per store instance. Each entry row has a
    ``seq``, the value of the ``entries`` change counter of its last change: a store instance
    keeps its last listing, returns it again while the counter is unchanged, and otherwise
    re-reads only the entries with a newer ``seq`` (plus the list of ids, to drop removed
    ones). The cyclic GC is paused while the objects are built (it was half the time).
    Fingerprints are kept as canonical JSON text (``StoredEntry.fingerprint_json``) and parsed
    on access, so a consumer comparing canonical JSON never parses 100,000 objects.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from diagnostics_app.core._gc import gc_paused
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.arrays import DATA_DIR, StagedFeature, fsync_dir, unlink_all
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.previous import drop_all_previous, keep_previous
from diagnostics_app.core.store.provenance import provenance_text
from diagnostics_app.core.store.records import (
    EntryKey,
    StoredEntry,
    StoredFeature,
    key_tuple,
    meta_from_json,
    meta_to_json,
    row_files,
    splices_from_json,
)
from diagnostics_app.core.store.recovery import any_spliced, delete_garbage, references

# the columns of a ``features`` row as a commit writes it (named: a migrated table has its
# later columns at the end, in the order they were added)
FEATURE_COLS: Final = (
    "entry_id, feature, path, times_path, meta_id, encoding, frames, channels, width, nbytes, "
    "stamp, checksum, splices"
)

_ENTRY_COLS: Final = (
    "e.id, e.source_id, e.calculator_id, e.profile, e.params, e.fingerprint, "
    "e.calculator_version, e.commit_id, e.created, e.updated, f.feature, f.path, f.times_path, "
    "f.meta_id, f.encoding, f.frames, f.channels, f.width, f.nbytes, f.stamp, f.checksum, "
    "e.provenance, f.regenerated, f.splices"
)
ENTRY_SQL: Final = f"SELECT {_ENTRY_COLS} FROM entries e JOIN features f ON f.entry_id = e.id"
KEY_WHERE: Final = "e.source_id = ? AND e.calculator_id = ? AND e.profile = ? AND e.params = ?"

# (feature, path, times_path, meta, encoding, frames, channels, width, nbytes, stamp, checksum,
# splices JSON or None)
FeatureRow = tuple[Any, ...]
# what one transaction commits for one key: (key, fingerprint JSON, version, feature rows,
# provenance JSON)
EntryRows = tuple[EntryKey, str, int, Sequence[FeatureRow], str]


def _entries_from_rows(
    rows: Sequence[Sequence[Any]], metas: dict[int, OutputMeta]
) -> list[StoredEntry]:
    """Rows of ``ENTRY_SQL`` ordered by entry id → entries (one pass, no per-row queries)."""
    out: list[StoredEntry] = []
    current: tuple[Any, ...] | None = None
    features: dict[str, StoredFeature] = {}
    new_feature = StoredFeature
    for row in rows:
        if current is None or row[0] != current[0]:
            if current is not None:
                out.append(_make_entry(current, features))
            current = (*row[:10], row[21])
            features = {}
        name = row[10]
        features[name] = new_feature(
            name,
            row[11],
            row[12],
            metas[row[13]],
            row[14],
            row[15],
            row[16],
            row[17],
            row[18],
            row[19],
            row[20],
            regenerated=row[22],
            splices=splices_from_json(row[23]) if row[23] is not None else (),
        )
    if current is not None:
        out.append(_make_entry(current, features))
    return out


def _make_entry(head: tuple[Any, ...], features: dict[str, StoredFeature]) -> StoredEntry:
    eid, source, calc, profile, params, fp, version, commit_id, created, updated, prov = head
    return StoredEntry(
        EntryKey(source, calc, profile, params),
        eid,
        fp,
        version,
        created,
        updated,
        MappingProxyType(features),
        commit_id,
        provenance_json=prov,
    )


class EntryIndex:
    """The reading side of one store instance, with its last listing and its parsed metas."""

    def __init__(self, db: IndexConnection) -> None:
        self._db = db
        self._cache: tuple[int, dict[int, StoredEntry]] | None = None
        self._metas: dict[int, OutputMeta] = {}  # meta ids are never reused (AUTOINCREMENT)

    def forget(self) -> None:
        self._cache = None  # freed now, not whenever the owner is collected

    def entries(self) -> list[StoredEntry]:
        with gc_paused():  # the fetched rows are 100,000 tuples too
            return self._entries()

    def _entries(self) -> list[StoredEntry]:
        ids: list[int] | None = None
        with self._db.read("cannot read the index") as c:
            version = c.execute("SELECT value FROM counters WHERE name = 'entries'").fetchone()[0]
            cached = self._cache
            if cached is not None and cached[0] == version:
                return list(cached[1].values())
            if cached is None:
                rows = c.execute(f"{ENTRY_SQL} ORDER BY e.id, f.feature").fetchall()
            else:
                rows = c.execute(
                    f"{ENTRY_SQL} WHERE e.seq > ? ORDER BY e.id, f.feature", (cached[0],)
                ).fetchall()
                ids = [r[0] for r in c.execute("SELECT DISTINCT entry_id FROM features")]
            metas = self._metas_for(c, rows)
        fresh = {e.entry_id: e for e in _entries_from_rows(rows, metas)}
        if cached is not None and ids is not None:
            old = cached[1]
            fresh = {i: e for i in ids if (e := fresh.get(i) or old.get(i)) is not None}
        self._cache = (version, fresh)
        return list(fresh.values())

    def for_source(self, source_id: str) -> list[StoredEntry]:
        with self._db.read("cannot read the index") as c:
            rows = c.execute(
                f"{ENTRY_SQL} WHERE e.source_id = ? ORDER BY e.id, f.feature", (source_id,)
            ).fetchall()
            metas = self._metas_for(c, rows)
        return _entries_from_rows(rows, metas)

    def get(self, key: EntryKey) -> StoredEntry | None:
        with self._db.read("cannot read the index") as c:
            rows = c.execute(
                f"{ENTRY_SQL} WHERE {KEY_WHERE} ORDER BY f.feature", key_tuple(key)
            ).fetchall()
            metas = self._metas_for(c, rows)
        found = _entries_from_rows(rows, metas)
        return found[0] if found else None

    def _metas_for(
        self, c: sqlite3.Connection, rows: Sequence[Sequence[Any]]
    ) -> dict[int, OutputMeta]:
        """The meta cache, completed with the metas ``rows`` refer to (a few distinct ones
        however many rows: each is parsed once per store instance)."""
        known = self._metas
        missing = {row[13] for row in rows if row[13] not in known}
        if missing:
            newest = max(known, default=0)
            for meta_id, text in c.execute("SELECT id, json FROM metas WHERE id > ?", (newest,)):
                known[meta_id] = meta_from_json(text)
            for meta_id in missing - known.keys():
                row = c.execute("SELECT json FROM metas WHERE id = ?", (meta_id,)).fetchone()
                if row is None:
                    raise StoreError(f"{self._db.path}: corrupt index: no meta {meta_id}")
                known[meta_id] = meta_from_json(row[0])
        return known


def total_bytes(db: IndexConnection) -> int:
    """Bytes of every listed entry's files and of the previous versions kept (both are the
    cache's size: trash excluded). A file shared by a spliced row and a previous version
    (see :mod:`.splicing`) counts once: then the sizes are summed per file."""
    with db.read("cannot read the index") as c:
        if not any_spliced(c):
            return int(
                c.execute(
                    "SELECT (SELECT COALESCE(SUM(nbytes), 0) FROM features) + "
                    "(SELECT COALESCE(SUM(nbytes), 0) FROM previous)"
                ).fetchone()[0]
            )
        sizes: dict[tuple[str, str | None], int] = {}
        for table in ("features", "previous"):
            for path, times_path, nbytes, splices in c.execute(
                f"SELECT path, times_path, nbytes, splices FROM {table}"
            ):
                parts = splices_from_json(splices)
                # base files as a pair (their row records their size together), parts alone
                sizes[(path, times_path)] = nbytes - sum(p.nbytes for p in parts)
                sizes.update(((p.path, p.times_path), p.nbytes) for p in parts)
    return sum(sizes.values())


def _meta_id(c: sqlite3.Connection, meta: OutputMeta, known: dict[str, int]) -> int:
    """The id of ``meta`` in the ``metas`` table, inserting it if new; ``known`` caches
    the ids looked up within the current transaction (by meta JSON)."""
    text = meta_to_json(meta)
    if text in known:
        return known[text]
    c.execute("INSERT OR IGNORE INTO metas (json) VALUES (?)", (text,))
    meta_id = int(c.execute("SELECT id FROM metas WHERE json = ?", (text,)).fetchone()[0])
    known[text] = meta_id
    return meta_id


def _replace_in(
    c: sqlite3.Connection,
    key: EntryKey,
    fingerprint: str,
    version: int,
    rows: Sequence[FeatureRow],
    provenance: str,
    seq: int,
    now: float,
    meta_ids: dict[str, int],
) -> tuple[StoredEntry | None, list[str]]:
    """Inside a write transaction: make ``rows`` the features of ``key``'s entry, replacing
    what it had. The replaced features become the key's previous versions (see
    :mod:`.previous`), whose own previous files are listed as garbage. Returns the entry (None
    when ``rows`` is empty: the entry is removed) and the files listed as garbage."""
    commit_id = uuid.uuid4().hex
    old: list[str] = []
    found = c.execute(
        f"SELECT e.id, e.created FROM entries e WHERE {KEY_WHERE}",
        (key.source_id, key.calculator_id, key.profile, key.params),
    ).fetchone()
    if found is not None:
        eid, created = found
        if rows:
            old.extend(keep_previous(c, key, eid, commit_id, now))
        else:  # the entry goes, as after a full prune: nothing is left to compare with
            old.extend(drop_all_previous(c, key))
            for path, times_path, splices in c.execute(
                "SELECT path, times_path, splices FROM features WHERE entry_id = ?", (eid,)
            ):
                old.extend(row_files(path, times_path, splices))
        c.execute("DELETE FROM features WHERE entry_id = ?", (eid,))
        if rows:
            c.execute(
                "UPDATE entries SET fingerprint = ?, calculator_version = ?, "
                "commit_id = ?, updated = ?, seq = ?, provenance = ? WHERE id = ?",
                (fingerprint, version, commit_id, now, seq, provenance, eid),
            )
        else:  # the calculator produced nothing: no entry (as after a full prune)
            c.execute("DELETE FROM entries WHERE id = ?", (eid,))
    elif rows:
        created = now
        cur = c.execute(
            "INSERT INTO entries (source_id, calculator_id, profile, params, fingerprint, "
            "calculator_version, commit_id, created, updated, seq, provenance) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (*key_tuple(key), fingerprint, version, commit_id, now, now, seq, provenance),
        )
        eid = cur.lastrowid
    c.executemany(
        f"INSERT INTO features ({FEATURE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(eid, *r[:3], _meta_id(c, r[3], meta_ids), *r[4:]) for r in rows],
    )
    c.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(p,) for p in old])
    if not rows:
        return None, old
    features = {
        r[0]: StoredFeature(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            splices=splices_from_json(r[11]),
        )
        for r in rows
    }
    entry = StoredEntry(
        key,
        int(eid),
        fingerprint,
        version,
        created,
        now,
        MappingProxyType(features),
        commit_id,
        provenance_json=provenance,
    )
    return entry, old


def commit_files(
    db: IndexConnection,
    root: Path,
    key: EntryKey,
    fingerprint: str,
    version: int,
    staged: Sequence[StagedFeature],
    committed: list[StoredEntry],
    provenance: str | None = None,
) -> None:
    """Rename a pass writer's fsynced files from ``tmp/`` into ``data/``, fsync the folder,
    then replace ``key``'s entry in one durable transaction; the entry goes to ``committed``.
    ``provenance``: the text of what computed the data when another process did (a cluster
    worker), else this process's."""
    data = root / DATA_DIR
    renamed: list[Path] = []
    try:
        for item in staged:
            for path in item.paths:
                os.replace(path, data / path.name)
                renamed.append(data / path.name)
        fsync_dir(data)
    except OSError as exc:
        unlink_all(renamed)
        raise StoreError(f"{data}: cannot commit feature data: {os_cause(exc)}") from None
    rows = [item.row() for item in staged]
    _commit(
        db,
        root,
        f"cannot commit entry {key}",
        True,
        [(key, fingerprint, version, rows, provenance or provenance_text())],
        renamed,
        committed,
    )


def commit_import(
    db: IndexConnection,
    root: Path,
    staged: Sequence[EntryRows],
    written: Sequence[Path],
    durable: bool,
) -> list[StoredEntry]:
    """Commit :meth:`FeatureStore.import_entries`' files, already in ``data/``, in one
    transaction; a later item with the same key replaces an earlier one."""
    committed: list[StoredEntry] = []
    _commit(db, root, f"cannot import {len(staged)} entries", durable, staged, written, committed)
    return committed


def _commit(
    db: IndexConnection,
    root: Path,
    what: str,
    durable: bool,
    staged: Sequence[EntryRows],
    files: Sequence[Path],
    committed: list[StoredEntry],
) -> None:
    """One transaction replacing the entries of ``staged``. The committed entries go to
    ``committed`` before the replaced files are deleted; on failure ``files`` are deleted,
    unless the transaction did commit."""
    now = time.time()
    entries: dict[EntryKey, StoredEntry | None] = {}
    garbage: list[str] = []
    try:
        with db.write(what, durable=durable) as c:
            seq = db.bump(c, "entries")
            meta_ids: dict[str, int] = {}
            for key, fingerprint, version, rows, provenance in staged:
                entry, old = _replace_in(
                    c, key, fingerprint, version, rows, provenance, seq, now, meta_ids
                )
                entries[key] = entry
                garbage.extend(old)
    except BaseException:
        # an error after COMMIT (an interrupt, say) leaves the files referenced: they stay
        if files and not references(db, f"{DATA_DIR}/{files[0].name}"):
            unlink_all(files)
        raise
    committed.extend(e for e in entries.values() if e is not None)
    delete_garbage(db, root, garbage)
