"""Prune with undo: the trash table, restoring from it, and purging it for real.

*Deviation from "move the files to trash/<prune_id>/":* :func:`prune` moves feature rows to
a ``trash`` table in one transaction and leaves the array files where they are: moving files
cannot be atomic with the index, and each crash window of a two-step move either loses the
undo or lists entries whose files are gone. Files stay in ``data/`` (referenced by their trash
row, so no sweep takes them) until :func:`purge`; :func:`trash_bytes` reports their size.
:func:`restore` puts back exactly what was pruned (same entry id, fingerprint, version and
timestamps) unless the entry has been recomputed since (then the newer data wins and the
stale trashed features stay in the trash for ``purge``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from diagnostics_app.core.store import previous
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.index import ENTRY_SQL, FEATURE_COLS, KEY_WHERE
from diagnostics_app.core.store.records import EntryKey, TrashItem, key_tuple, row_files
from diagnostics_app.core.store.recovery import delete_garbage

TRASH_MAX_AGE: Final = 7 * 24 * 3600.0  # trash older than this is purged at open


def prune(db: IndexConnection, items: Sequence[tuple[EntryKey, str]]) -> str:
    """See :meth:`FeatureStore.prune`."""
    prune_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    now = time.time()
    with db.write("cannot prune", durable=True) as c:
        seq = db.bump(c, "entries")
        touched: set[int] = set()
        for key, feature in dict.fromkeys(items):
            row = c.execute(
                f"{ENTRY_SQL} WHERE {KEY_WHERE} AND f.feature = ?",
                (*key_tuple(key), feature),
            ).fetchone()
            if row is None:
                continue
            eid = row[0]
            c.execute(
                "INSERT INTO trash (prune_id, pruned, entry_id, source_id, calculator_id, "
                "profile, params, fingerprint, calculator_version, commit_id, created, "
                "updated, feature, path, times_path, meta_id, encoding, frames, channels, width, "
                "nbytes, stamp, checksum, provenance, regenerated, splices) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (prune_id, now, *row),
            )
            c.execute("DELETE FROM features WHERE entry_id = ? AND feature = ?", (eid, feature))
            touched.add(eid)
        for eid in touched:
            c.execute("UPDATE entries SET seq = ? WHERE id = ?", (seq, eid))
            c.execute(
                "DELETE FROM entries WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM features WHERE entry_id = ?)",
                (eid, eid),
            )
    return prune_id


def restore(db: IndexConnection, prune_id: str) -> list[tuple[EntryKey, str]]:
    """See :meth:`FeatureStore.restore`."""
    restored: list[tuple[EntryKey, str]] = []
    with db.write(f"cannot restore {prune_id}", durable=True) as c:
        seq = db.bump(c, "entries")
        rows = c.execute(
            "SELECT entry_id, source_id, calculator_id, profile, params, fingerprint, "
            "calculator_version, commit_id, created, updated, feature, path, times_path, meta_id, "
            "encoding, frames, channels, width, nbytes, stamp, checksum, provenance, regenerated, "
            "splices FROM trash "
            "WHERE prune_id = ? "
            "ORDER BY entry_id, feature",
            (prune_id,),
        ).fetchall()
        for row in rows:
            eid, key, commit_id = row[0], EntryKey(*row[1:5]), row[7]
            current = c.execute(
                f"SELECT e.id, e.commit_id FROM entries e WHERE {KEY_WHERE}", key_tuple(key)
            ).fetchone()
            if current is None:
                taken = c.execute("SELECT 1 FROM entries WHERE id = ?", (eid,)).fetchone()
                if taken is not None:  # cannot happen with AUTOINCREMENT; be safe anyway
                    continue
                c.execute(
                    "INSERT INTO entries (id, source_id, calculator_id, profile, params, "
                    "fingerprint, calculator_version, commit_id, created, updated, provenance) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (*row[:10], row[21]),
                )
            elif tuple(current) != (eid, commit_id):
                continue  # recomputed since the prune
            if c.execute(
                "SELECT 1 FROM features WHERE entry_id = ? AND feature = ?", (eid, row[10])
            ).fetchone():
                continue
            c.execute(
                f"INSERT INTO features ({FEATURE_COLS}, regenerated) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (eid, *row[10:21], row[23], row[22]),
            )
            c.execute("UPDATE entries SET seq = ? WHERE id = ?", (seq, eid))
            c.execute(
                "DELETE FROM trash WHERE prune_id = ? AND entry_id = ? AND feature = ?",
                (prune_id, eid, row[10]),
            )
            restored.append((key, row[10]))
    return restored


def purge(db: IndexConnection, root: Path, prune_id: str | None, older_than: float | None) -> int:
    """See :meth:`FeatureStore.purge`."""
    where: list[str] = []
    args: list[object] = []
    if prune_id is not None:
        where.append("prune_id = ?")
        args.append(prune_id)
    if older_than is not None:
        where.append("pruned < ?")
        args.append(time.time() - older_than)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    if not db.scalar(f"SELECT EXISTS (SELECT 1 FROM trash{clause})", args):
        return 0  # the common case at every open: no write transaction for nothing
    with db.write("cannot purge the trash", durable=True) as c:
        rows = c.execute(f"SELECT path, times_path, splices FROM trash{clause}", args).fetchall()
        c.execute(f"DELETE FROM trash{clause}", args)
        # previous versions of features that are gone for good go with them (see .previous)
        gone = previous.orphans(c)
        c.executemany(
            "DELETE FROM previous WHERE source_id = ? AND calculator_id = ? AND profile = ? "
            "AND params = ? AND feature = ?",
            [g[:5] for g in gone],
        )
        c.execute(
            "DELETE FROM metas WHERE id NOT IN (SELECT meta_id FROM features) "
            "AND id NOT IN (SELECT meta_id FROM trash) "
            "AND id NOT IN (SELECT meta_id FROM previous)"
        )
        paths = [p for row in rows for p in row_files(row[0], row[1], row[2])]
        paths.extend(p for g in gone for p in row_files(g[5], g[6], g[7]))
        c.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(p,) for p in paths])
    delete_garbage(db, root, paths)
    return len(rows)


def listing(db: IndexConnection, prune_id: str | None) -> list[TrashItem]:
    sql = "SELECT prune_id, pruned, source_id, calculator_id, profile, params, feature, nbytes FROM trash"
    args: tuple[str, ...] = ()
    if prune_id is not None:
        sql += " WHERE prune_id = ?"
        args = (prune_id,)
    with db.read("cannot read the trash") as c:
        rows = c.execute(sql + " ORDER BY pruned, prune_id, entry_id, feature", args).fetchall()
    return [TrashItem(r[0], r[1], EntryKey(*r[2:6]), r[6], r[7]) for r in rows]


def trash_bytes(db: IndexConnection) -> int:
    return db.scalar("SELECT COALESCE(SUM(nbytes), 0) FROM trash")
