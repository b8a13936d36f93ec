"""Crash recovery: deleting what crashed processes left, and nothing a live one still needs.

Crash safety (proven by ``tests/core/test_store_crash.py``, which SIGKILLs writers)
    A row is committed only after its files are durable in ``data/``, so every listed entry
    loads completely. Files that no row references are garbage, of three kinds, each with its
    own clean-up: (1) files replaced or purged by a commit are listed in a ``garbage`` table *in
    the same transaction*, deleted just after it, and whatever a crash left there is deleted at
    the next open (no guessing about owners); (2) temporary files and (3) files renamed into
    ``data/`` whose commit never happened carry their writer's pid and start-time token in
    their names (``<random>.<pid>-<token>.npy``) and are only deleted once that process is dead,
    so a live writer in another process is never disturbed. Every writing process registers in
    a ``writers`` table before it creates a file; ``open`` scans ``tmp/`` (small), and scans
    ``data/`` only when a registered writer died without unregistering, so opening a store of
    100,000 files does not list them. :meth:`FeatureStore.sweep` with ``full=True`` forces the
    scan. Liveness is decided *before* reading the set of referenced files, so a writer that
    commits and then dies cannot have its committed file taken for an orphan.

Writers elsewhere
    A writer on another host or in another PID namespace (a container on a shared volume)
    cannot be checked by pid: it and its files are alive while its lease is (:mod:`.lease`).
    Files are matched to such a writer by the pid and token in their names; the leases are
    read again after the folders are listed, so a writer that registered meanwhile keeps its
    files.

Deleting only its own files
    A path listed as garbage is deleted only if it names a file of this store (:mod:`.paths`)
    and no row references it (rows written by a commit of splices share files: :func:`shared`);
    any other is reported once as refused, and its row dropped, the file untouched. Files found
    by scanning ``tmp/`` and ``data/`` are deleted only when their name is one the writers give
    (``<random>.<pid>-<token>...``) and that process is dead; ``tmp/`` and ``data/`` are
    checked at open to be real folders, so the scan never lists another folder.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.arrays import DATA_DIR, TMP_DIR, unlink
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.lease import owner_alive, touch
from diagnostics_app.core.store.owners import (
    file_owner_alive,
    file_tag,
    process_start_token,
    tag_of,
    this_place,
)
from diagnostics_app.core.store.paths import index_path_ok, refusal
from diagnostics_app.core.store.records import part_files, row_files


def register(db: IndexConnection) -> str:
    """Record this process as a writer, before it creates any file; the registration token."""
    pid = os.getpid()
    token = uuid.uuid4().hex
    now = time.time()
    with db.write("cannot register as a writer", durable=True) as c:
        touch(c, now)  # a writer elsewhere must never be seen without a lease
        c.execute(
            "INSERT INTO writers (token, pid, start, since, place) VALUES (?, ?, ?, ?, ?)",
            (token, pid, process_start_token(pid), now, this_place()),
        )
    return token


def unregister(db: IndexConnection, token: str) -> None:
    """Best effort: a registration left behind only costs one scan of ``data/`` later."""
    with contextlib.suppress(StoreError), db.write("cannot unregister") as c:
        c.execute("DELETE FROM writers WHERE token = ?", (token,))


def references(db: IndexConnection, path: str) -> bool:
    """Whether a row references ``path`` (True when unsure: never delete a live file)."""
    try:
        with db.lock:
            conn = db.live()
            row = conn.execute("SELECT 1 FROM features WHERE path = ? LIMIT 1", (path,)).fetchone()
            if row is None:  # a splice part (an error path only: the LIKE scans the rows)
                row = conn.execute(
                    "SELECT 1 FROM features WHERE splices LIKE ? LIMIT 1", (f'%"{path}"%',)
                ).fetchone()
    except (sqlite3.Error, StoreError):
        return True
    return row is not None


# the rows of these tables reference files (base files in path and times_path, parts in
# splices); a file is garbage only when none does
_FILE_TABLES = ("features", "trash", "previous")


def any_spliced(c: sqlite3.Connection) -> bool:
    """Whether any row of features, trash or previous has splice parts (the partial indexes
    of the schema make this a lookup, not a scan)."""
    return any(
        c.execute(f"SELECT 1 FROM {t} WHERE splices IS NOT NULL LIMIT 1").fetchone()
        for t in _FILE_TABLES
    )


def shared(db: IndexConnection, paths: Sequence[str]) -> set[str]:
    """Those of ``paths`` that a row still references. Files are shared between rows only
    by a commit of splices (a row it writes and the previous version it replaced share the
    base files, see :mod:`.splicing`; such a row's ``splices`` column is never NULL, ``[]``
    when it has no parts), so a store without any such row answers with one
    lookup in a partial index per table (:func:`any_spliced`) and no scan; all of ``paths``
    when unsure (never delete a live file)."""
    try:
        with db.lock:
            c = db.live()
            if not any_spliced(c):
                return set()
            wanted = set(paths)
            listed = sorted(wanted)
            found: set[str] = set()
            for table in _FILE_TABLES:
                # base files: matched by SQLite (no row goes through Python), in batches
                # below its limit on parameters
                for k in range(0, len(listed), 500):
                    batch = listed[k : k + 500]
                    marks = ",".join("?" * len(batch))
                    for column in ("path", "times_path"):
                        sql = f"SELECT {column} FROM {table} WHERE {column} IN ({marks})"
                        found.update(r[0] for r in c.execute(sql, batch))
                # parts: only the rows that have some (the partial index)
                for (splices,) in c.execute(
                    f"SELECT splices FROM {table} WHERE splices IS NOT NULL"
                ):
                    found.update(p for p in part_files(splices) if p in wanted)
            return found
    except (sqlite3.Error, StoreError):
        return set(paths)


def delete_garbage(db: IndexConnection, root: Path, paths: Sequence[str]) -> None:
    """Delete files listed in the garbage table, then their rows (best effort: whatever is
    left is retried at the next open). A file a row still references (shared with a spliced
    row) is not deleted, and its garbage row goes: the commit that removes its last
    referencing row lists it again."""
    if not paths:
        return
    keep = shared(db, paths)
    done = [p for p in _own(db, paths) if p in keep or unlink(root / p) or not (root / p).exists()]
    done.extend(p for p in paths if not index_path_ok(p))  # their rows go, nothing else
    with contextlib.suppress(StoreError), db.write("cannot clear garbage") as c:
        c.executemany("DELETE FROM garbage WHERE path = ?", [(p,) for p in done])


def sweep(db: IndexConnection, root: Path, full: bool, now: float) -> int:
    """See :meth:`FeatureStore.sweep`."""
    try:
        with db.lock:
            conn = db.live()
            writers = conn.execute(
                "SELECT w.token, w.pid, w.start, w.place, o.heartbeat FROM writers w "
                "LEFT JOIN owners o ON o.place = w.place AND o.pid = w.pid AND o.start = w.start"
            ).fetchall()
            garbage = [r[0] for r in conn.execute("SELECT path FROM garbage")]
            alive = _elsewhere(conn, now)  # file owners elsewhere, by lease
    except sqlite3.Error as exc:
        raise db.error("cannot read the index", exc) from None
    dead = [
        t for t, pid, start, place, beat in writers if not owner_alive(place, pid, start, beat, now)
    ]
    try:
        tmp = [
            e.path for e in os.scandir(root / TMP_DIR) if file_owner_alive(e.name, alive) is False
        ]
        candidates: list[str] = []
        if dead or full:
            candidates = [
                f"{DATA_DIR}/{e.name}"
                for e in os.scandir(root / DATA_DIR)
                if file_owner_alive(e.name, alive) is False
            ]
    except OSError as exc:
        raise StoreError(f"{root}: cannot list the store: {os_cause(exc)}") from None
    if tmp or candidates:
        # a writer elsewhere that registered after the first read: its files are not orphans
        with db.read("cannot read the index") as c:
            late = {tag for tag, ok in _elsewhere(c, now).items() if ok}
        tmp = [p for p in tmp if file_tag(Path(p).name) not in late]
        candidates = [p for p in candidates if file_tag(Path(p).name) not in late]
    removed = sum(unlink(Path(p)) for p in tmp)
    if candidates or garbage:
        # read only now: a writer found dead above cannot commit anything after this read
        referenced = _referenced(db)
        for rel in candidates:
            if rel not in referenced:
                removed += unlink(root / rel)
        stale = [p for p in _own(db, garbage) if p not in referenced]
        removed += sum(unlink(root / p) for p in stale)
        if garbage:
            with db.write("cannot clear garbage") as c:
                c.executemany("DELETE FROM garbage WHERE path = ?", [(p,) for p in garbage])
    if dead:
        with db.write("cannot clear dead writers") as c:
            c.executemany("DELETE FROM writers WHERE token = ?", [(t,) for t in dead])
    return removed


def _own(db: IndexConnection, paths: Sequence[str]) -> list[str]:
    """The paths that name files of this store; each other one is reported (once)."""
    own = []
    for p in paths:
        if index_path_ok(p):
            own.append(p)
        else:
            db.warn(f"{refusal(p)} listed for deletion in the index; not deleted")
    return own


def _referenced(db: IndexConnection) -> set[str]:
    with db.read("cannot read the index") as c:
        out: set[str] = set()
        for table in _FILE_TABLES:
            for path, times_path, splices in c.execute(
                f"SELECT path, times_path, splices FROM {table}"
            ):
                out.update(row_files(path, times_path, splices))
    return out


def _elsewhere(c: sqlite3.Connection, now: float) -> dict[tuple[int, str], bool]:
    """File tags (see :func:`.owners.file_tag`) of owners in other places: alive by lease."""
    here = this_place()
    return {
        tag_of(pid, start): owner_alive(place, pid, start, beat, now)
        for place, pid, start, beat in c.execute("SELECT place, pid, start, heartbeat FROM owners")
        if place != here
    }
