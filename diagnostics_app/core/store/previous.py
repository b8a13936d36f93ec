"""Previous versions: the data a feature had before its entry was last replaced.

When a commit replaces an entry (:mod:`.index`), each replaced feature row moves to the
``previous`` table *in the same transaction*, with its files, fingerprint, version, commit id
and provenance, and ``replaced_by`` = the commit id that replaced it; the key's earlier
previous version of that feature (if any) has its files listed as garbage in that transaction.
So a key holds at most one previous version per feature: the one before the current data.

Lifetime: until the next replacement of the key (a commit that leaves the key without data,
removing its entry, drops its previous versions too), or until the cache limit evicts it (the
session's eviction drops previous versions before any current data, oldest replaced first:
:func:`drop`), or until the trash is purged while the key has no current data for that feature
(:func:`drop_orphans`). A prune leaves previous versions alone (an undo brings the current
data back beside them). Their bytes count in the store's size
(:meth:`~.facade.FeatureStore.total_bytes`).

Crash safety is the store's: the rows referencing files are written in one transaction with
the replacement, the sweep counts ``previous`` rows as references (:mod:`.recovery`), and
dropped files are listed as garbage in the transaction that drops their rows.

A commit of splices (:mod:`.splicing`) keeps the replaced version here too, sharing its base
files (and untouched parts) with the new row: dropping it deletes only the files no other row
references (:func:`~.recovery.shared`), and :attr:`PreviousVersion.nbytes` is what it frees.

A replaced feature whose paths the store refuses (:mod:`.paths`) is not kept: its paths are
listed as garbage, as before previous versions existed. A previous version whose files turn out
damaged when the job compares it is dropped by that job.

The ``regenerated`` verdict (:func:`set_regenerated`) is recorded on the *current* feature row
after its commit, by the job that committed it (:mod:`diagnostics_app.core.jobs`), once it has
compared the new data with the previous version (:mod:`diagnostics_app.core.compare`).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.paths import index_path_ok
from diagnostics_app.core.store.records import (
    EntryKey,
    PreviousVersion,
    StoredFeature,
    file_sizes,
    key_tuple,
    meta_from_json,
    row_files,
    splices_from_json,
)
from diagnostics_app.core.store.recovery import any_spliced, delete_garbage

_PREV_KEY: Final = "source_id = ? AND calculator_id = ? AND profile = ? AND params = ?"
_COLS: Final = (
    "p.source_id, p.calculator_id, p.profile, p.params, p.feature, p.fingerprint, "
    "p.calculator_version, p.commit_id, p.updated, p.replaced, p.replaced_by, p.provenance, "
    "p.path, p.times_path, m.json, p.encoding, p.frames, p.channels, p.width, p.nbytes, "
    "p.stamp, p.checksum, p.splices"
)
_SELECT: Final = f"SELECT {_COLS} FROM previous p JOIN metas m ON m.id = p.meta_id"

# the verdicts of core.compare that a current feature row may record
REGENERATED_VERDICTS: Final = frozenset({"identical", "within tolerance", "differs"})


def keep_previous(
    c: sqlite3.Connection, key: EntryKey, entry_id: int, replaced_by: str, now: float
) -> list[str]:
    """Inside the transaction replacing entry ``entry_id`` of ``key``: its feature rows
    become the key's previous versions. Returns the files of the previous versions they
    replace (for the caller to list as garbage)."""
    garbage: list[str] = []
    head = c.execute(
        "SELECT fingerprint, calculator_version, commit_id, updated, provenance "
        "FROM entries WHERE id = ?",
        (entry_id,),
    ).fetchone()
    rows = c.execute(
        "SELECT feature, path, times_path, meta_id, encoding, frames, channels, width, nbytes, "
        "stamp, checksum, splices FROM features WHERE entry_id = ?",
        (entry_id,),
    ).fetchall()
    for row in rows:
        files = row_files(row[1], row[2], row[11])
        if not all(index_path_ok(p) for p in files):
            # a path this store would refuse to read: never kept, listed as garbage (whose
            # clean-up refuses it again, once, and drops its row)
            garbage.extend(files)
            continue
        found = c.execute(
            f"SELECT path, times_path, splices FROM previous WHERE {_PREV_KEY} AND feature = ?",
            (*key_tuple(key), row[0]),
        ).fetchone()
        if found is not None:
            # listed whatever they share with the current row: garbage is deleted only when
            # no row references it (recovery.delete_garbage)
            garbage.extend(_files(found))
        fingerprint, version, commit_id, updated, provenance = head
        c.execute(
            "INSERT OR REPLACE INTO previous (source_id, calculator_id, profile, params, "
            "feature, fingerprint, calculator_version, commit_id, updated, replaced, "
            "replaced_by, provenance, path, times_path, meta_id, encoding, frames, channels, "
            "width, nbytes, stamp, checksum, splices) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                *key_tuple(key),
                row[0],
                fingerprint,
                version,
                commit_id,
                updated,
                now,
                replaced_by,
                provenance,
                *row[1:],
            ),
        )
    return garbage


def drop_all_previous(c: sqlite3.Connection, key: EntryKey) -> list[str]:
    """Inside a transaction: delete every previous version of ``key``; their files (for the
    caller to list as garbage)."""
    found = c.execute(
        f"SELECT path, times_path, splices FROM previous WHERE {_PREV_KEY}", key_tuple(key)
    ).fetchall()
    c.execute(f"DELETE FROM previous WHERE {_PREV_KEY}", key_tuple(key))
    return [p for row in found for p in _files(row)]


def _files(row: Sequence[Any]) -> list[str]:
    """The files of a (path, times_path, splices) row (:func:`.records.row_files`)."""
    return row_files(row[0], row[1], row[2])


def _version(row: Sequence[Any]) -> PreviousVersion:
    meta: OutputMeta = meta_from_json(row[14])
    feature = StoredFeature(
        row[4],
        row[12],
        row[13],
        meta,
        row[15],
        row[16],
        row[17],
        row[18],
        row[19],
        row[20],
        row[21],
        splices=splices_from_json(row[22]),
    )
    return PreviousVersion(
        key=EntryKey(*row[:4]),
        feature=feature,
        fingerprint_json=row[5],
        calculator_version=row[6],
        commit_id=row[7],
        updated=row[8],
        replaced=row[9],
        replaced_by=row[10],
        provenance_json=row[11],
    )


def _shared_with_current(c: sqlite3.Connection) -> frozenset[tuple[str, str | None]]:
    """The (data, times) file pairs of the rows of features and trash written by a commit of
    splices (``splices`` not NULL): the only files a previous version can share with them
    (see :mod:`.splicing`); empty without such rows."""
    if not any_spliced(c):
        return frozenset()
    out: set[tuple[str, str | None]] = set()
    for table in ("features", "trash"):
        for path, times_path, splices in c.execute(
            f"SELECT path, times_path, splices FROM {table} WHERE splices IS NOT NULL"
        ):
            out.add((path, times_path))
            out.update((p.path, p.times_path) for p in splices_from_json(splices))
    return frozenset(out)


def _with_shared(
    version: PreviousVersion, shared: frozenset[tuple[str, str | None]]
) -> PreviousVersion:
    if not shared:
        return version
    n = sum(b for pair, b in file_sizes(version.feature).items() if pair in shared)
    return dataclasses.replace(version, shared_bytes=n) if n else version


def get_in(c: sqlite3.Connection, key: EntryKey, feature: str) -> PreviousVersion | None:
    """Inside a transaction: the previous version of (key, feature), shared bytes unset."""
    row = c.execute(
        f"{_SELECT} WHERE p.source_id = ? AND p.calculator_id = ? AND p.profile = ? "
        "AND p.params = ? AND p.feature = ?",
        (*key_tuple(key), feature),
    ).fetchone()
    return None if row is None else _version(row)


def get(db: IndexConnection, key: EntryKey, feature: str) -> PreviousVersion | None:
    with db.read("cannot read the index") as c:
        found = get_in(c, key, feature)
        return None if found is None else _with_shared(found, _shared_with_current(c))


def listing(db: IndexConnection) -> list[PreviousVersion]:
    """Every previous version, the oldest replaced first (the order eviction drops them)."""
    with db.read("cannot read the index") as c:
        rows = c.execute(f"{_SELECT} ORDER BY p.replaced, p.rowid").fetchall()
        shared = _shared_with_current(c)
    return [_with_shared(_version(r), shared) for r in rows]


def total_bytes(db: IndexConnection) -> int:
    """The bytes dropping every previous version would free."""
    with db.read("cannot read the index") as c:
        if not any_spliced(c):
            return int(c.execute("SELECT COALESCE(SUM(nbytes), 0) FROM previous").fetchone()[0])
    return sum(v.nbytes for v in listing(db))


def drop(db: IndexConnection, root: Path, items: Sequence[tuple[EntryKey, str]]) -> int:
    """Delete the previous versions of ``items`` (key, feature), rows and files; the bytes
    freed. Missing ones are ignored."""
    paths: list[str] = []
    freed = 0
    shared: frozenset[tuple[str, str | None]] | None = None
    with db.write("cannot drop previous versions", durable=True) as c:
        for key, feature in dict.fromkeys(items):
            found = c.execute(
                f"SELECT path, times_path, splices, nbytes FROM previous WHERE {_PREV_KEY} "
                "AND feature = ?",
                (*key_tuple(key), feature),
            ).fetchone()
            if found is None:
                continue
            paths.extend(_files(found))
            freed += int(found[3])
            if shared is None:
                shared = _shared_with_current(c)
            if shared:
                version = get_in(c, key, feature)
                if version is not None:
                    freed -= _with_shared(version, shared).shared_bytes
            c.execute(
                f"DELETE FROM previous WHERE {_PREV_KEY} AND feature = ?",
                (*key_tuple(key), feature),
            )
        if paths:
            db.bump(c, "entries")  # a row's "previous" changed: listeners look again
            c.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(p,) for p in paths])
    delete_garbage(db, root, paths)
    return freed


def orphans(c: sqlite3.Connection) -> list[tuple[str, ...]]:
    """Inside a transaction: previous versions whose key has that feature neither as current
    data nor in the trash (rows (key columns..., feature, path, times_path, splices))."""
    return c.execute(
        "SELECT p.source_id, p.calculator_id, p.profile, p.params, p.feature, p.path, "
        "p.times_path, p.splices FROM previous p WHERE NOT EXISTS "
        "(SELECT 1 FROM entries e JOIN features f "
        "ON f.entry_id = e.id WHERE e.source_id = p.source_id AND "
        "e.calculator_id = p.calculator_id AND e.profile = p.profile AND e.params = p.params "
        "AND f.feature = p.feature) AND NOT EXISTS (SELECT 1 FROM trash t WHERE "
        "t.source_id = p.source_id AND t.calculator_id = p.calculator_id AND "
        "t.profile = p.profile AND t.params = p.params AND t.feature = p.feature)"
    ).fetchall()


def set_regenerated(
    db: IndexConnection, key: EntryKey, feature: str, commit_id: str, verdict: str
) -> bool:
    """Record how the current data of (key, feature), committed as ``commit_id``, compares
    with the version it replaced; False (nothing written) if that data was replaced since."""
    if verdict not in REGENERATED_VERDICTS:
        raise ValueError(f"unknown comparison verdict {verdict!r}")
    with db.write("cannot record the comparison with the previous version") as c:
        found = c.execute(
            f"SELECT id FROM entries WHERE {_PREV_KEY} AND commit_id = ?",
            (*key_tuple(key), commit_id),
        ).fetchone()
        if found is None:
            return False
        cur = c.execute(
            "UPDATE features SET regenerated = ? WHERE entry_id = ? AND feature = ?",
            (verdict, found[0], feature),
        )
        if cur.rowcount == 0:
            return False
        seq = db.bump(c, "entries")
        c.execute("UPDATE entries SET seq = ? WHERE id = ?", (seq, found[0]))
    return True
