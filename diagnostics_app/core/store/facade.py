"""``FeatureStore``: the one object through which the rest of the core uses a cache folder.

It composes the store's modules over one :class:`~.connection.IndexConnection` and holds no
SQL and no file format of its own: each method says which part does the work (entries in
:mod:`.index`, files in :mod:`.arrays` and :mod:`.writing`, crash recovery in
:mod:`.recovery`, the trash, jobs and digests in their modules). What it does own is the life
of a store instance: opening (schema, sweep, reaping, trash expiry), the writer registration
of this process, the pass writers it handed out, and closing all of that in order.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store import index, recovery, schema
from diagnostics_app.core.store.arrays import DATA_DIR, TMP_DIR, load_feature
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import (
    DEFAULT_BUSY_TIMEOUT,
    INDEX_NAME,
    IndexConnection,
    connect,
)
from diagnostics_app.core.store.index import ENTRY_SQL, KEY_WHERE
from diagnostics_app.core.store.owners import process_alive
from diagnostics_app.core.store.records import (
    ACTIVE_JOB_STATES,
    FINISHED_JOB_STATES,
    JOB_STATES,
    EntryImport,
    EntryKey,
    JobRecord,
    LoadedFeature,
    StoredEntry,
    StoreVersion,
    TrashItem,
    canonical_params,
    key_tuple,
)
from diagnostics_app.core.store.writing import PassWriter, stage_import

if TYPE_CHECKING:
    from diagnostics_app.core.audio import DigestCache, FileStamp


FINISHED_JOBS_PER_KEY: Final = 10  # finished job records kept per (source, calculator, ...)
TRASH_MAX_AGE: Final = 7 * 24 * 3600.0  # trash older than this is purged at open


class _Unset:
    pass


_UNSET: Final = _Unset()


_JOB_COLS: Final = (
    "id, source_id, calculator_ids, profile, params, features, state, progress, label, "
    "message, origin, owner_pid, owner_start, created, updated"
)


def _job_from_row(row: Sequence[Any]) -> JobRecord:
    return JobRecord(
        id=row[0],
        source_id=row[1],
        calculator_ids=tuple(json.loads(row[2])),
        profile=row[3],
        params=row[4],
        features=tuple(json.loads(row[5])),
        state=row[6],
        progress=row[7],
        label=row[8],
        message=row[9],
        origin=row[10],
        owner_pid=row[11],
        owner_start=row[12],
        created=row[13],
        updated=row[14],
    )


def _trim_jobs(c: sqlite3.Connection, source_id: str, profile: str, params: str) -> None:
    """Keep the FINISHED_JOBS_PER_KEY most recent finished jobs of each calculator key."""
    rows = c.execute(
        "SELECT id, calculator_ids FROM jobs WHERE source_id = ? AND profile = ? AND "
        "params = ? AND state IN ('done', 'failed', 'cancelled') ORDER BY updated DESC, id",
        (source_id, profile, params),
    ).fetchall()
    seen: dict[str, int] = {}
    drop: list[str] = []
    for job_id, calcs in rows:
        keep = False
        for calc in json.loads(calcs) or [""]:
            seen[calc] = seen.get(calc, 0) + 1
            keep = keep or seen[calc] <= FINISHED_JOBS_PER_KEY
        if not keep:
            drop.append(job_id)
    c.executemany("DELETE FROM jobs WHERE id = ?", [(j,) for j in drop])


def _check_state(state: str) -> None:
    if state not in JOB_STATES:
        raise ValueError(f"job state must be one of {', '.join(JOB_STATES)}, not {state!r}")


class FeatureStore:
    """A cache folder: see :mod:`diagnostics_app.core.store`. Thread-safe (one connection
    behind a lock); any number of processes may open the same folder at once."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        """Use :meth:`open`."""
        self.root = root
        self.index_path = root / INDEX_NAME
        self._db = IndexConnection(self.index_path, conn)
        self._index = index.EntryIndex(self._db)
        self._registration: tuple[int, str] | None = None  # (pid, token) in the writers table
        self._writers: weakref.WeakSet[PassWriter] = weakref.WeakSet()

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        cache_dir: str | os.PathLike[str],
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        trash_max_age: float | None = TRASH_MAX_AGE,
    ) -> FeatureStore:
        """Open (creating if needed) the store in ``cache_dir``; sweeps what crashed writers
        left, fails the jobs of dead processes and purges trash older than ``trash_max_age``."""
        root = Path(cache_dir)
        try:
            for folder in (root, root / DATA_DIR, root / TMP_DIR):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{root}: cannot create the feature store folder: {os_cause(exc)}"
            ) from None
        store = cls(root, connect(root / INDEX_NAME, busy_timeout))
        try:
            schema.setup(store._db, busy_timeout)
            store.sweep()
            store.reap_dead_jobs()
            if trash_max_age is not None:
                store.purge(older_than=trash_max_age)
        except BaseException:
            store._db.close()
            raise
        return store

    def close(self) -> None:
        """Abort unfinished writers of this instance, unregister, close the connection."""
        with self._db.lock:
            if self._db.closed:
                return
            for writer in list(self._writers):
                writer.abort()
            if self._registration is not None:
                recovery.unregister(self._db, self._registration[1])
                self._registration = None
            self._db.close()
            self._index.forget()

    @property
    def closed(self) -> bool:
        return self._db.closed

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _register(self) -> None:
        """Record this process as a writer before it creates any file (once per process: a
        forked child registers itself)."""
        pid = os.getpid()
        if self._registration is None or self._registration[0] != pid:
            self._registration = (pid, recovery.register(self._db))

    # -- writing ------------------------------------------------------------------------------

    def pass_writer(
        self,
        source_id: str,
        profile: str,
        params: str | Mapping[str, Any] | None,
        fingerprints: Mapping[str, Mapping[str, Any]],
        versions: Mapping[str, int],
    ) -> PassWriter:
        """A ``FeatureSink`` whose ``close(calculator)`` commits that calculator's entry."""
        self._register()
        fps = {calc: canonical_json(dict(fp)) for calc, fp in fingerprints.items()}
        writer = PassWriter(
            self._db, self.root, source_id, profile, canonical_params(params), fps, versions
        )
        self._writers.add(writer)
        return writer

    def import_entries(
        self, items: Iterable[EntryImport], *, durable: bool = False
    ) -> list[StoredEntry]:
        """Bulk import: commit many entries in ONE transaction (tools, benchmarks, migrations).

        Each item ends as if a :meth:`pass_writer` had written its ``arrays`` and closed its
        calculator with its ``metas`` and ``times``: the same files (a ``.npy`` with the
        writer's fixed 128-byte header, float32 or u16db as the meta says, plus a
        ``.times.npy``), the same rows, the same canonical fingerprint JSON, and the same
        replacement of a previous entry of the key (its files become garbage; an item without
        metas removes the entry). Arrays not named in ``metas`` are dropped; a meta without an
        array is an empty feature; a later item with the same key replaces an earlier one.

        ``durable=False`` (the default) skips the per-file fsyncs and commits with
        ``synchronous=NORMAL``: a crash or power loss can lose the import (all of it, as it is
        one transaction, or leave rows whose files are incomplete after a power loss) but never
        touches data committed before; ``durable=True`` gives the writer's guarantees (files
        and folder fsynced, then a ``synchronous=FULL`` commit). Files are written straight
        into ``data/`` under this process's owner tag, so what a crashed import leaves is
        swept like a crashed writer's renamed files. Returns the committed entries.
        """
        self._register()
        staged, written = stage_import(items, self.root / DATA_DIR, durable)
        return index.commit_import(self._db, self.root, staged, written, durable)

    def sweep(self, full: bool = False) -> int:
        """Delete what crashed processes left: listed garbage, temporary files of dead
        writers and, when a registered writer died (or ``full``), every file in ``data/`` that
        no row references and whose writer is dead. Returns the number of files deleted."""
        return recovery.sweep(self._db, self.root, full)

    # -- reading ------------------------------------------------------------------------------

    def entries(self) -> list[StoredEntry]:
        """Every entry with its features, in entry id order: one joined query. The result is
        kept: while the ``entries`` counter is unchanged it is returned again, and after a
        change only the entries whose ``seq`` is newer are read again."""
        return self._index.entries()

    def entries_for_source(self, source_id: str) -> list[StoredEntry]:
        return self._index.for_source(source_id)

    def get(self, key: EntryKey) -> StoredEntry | None:
        return self._index.get(key)

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    def load(
        self,
        entry: StoredEntry,
        feature: str,
        mmap: bool = True,
        frames: slice | None = None,
    ) -> LoadedFeature:
        """A feature's values, decoded to float32 ``(frames, channels, width)``, and its frame
        times. With ``mmap`` a float32 feature is a read-only memory map (no copy); ``frames``
        decodes only a range of frames (e.g. the visible part of a long spectrogram)."""
        stored = entry.features.get(feature)
        if stored is None:
            raise StoreError(f"entry {entry.key}: has no feature {feature!r}")

        def why_missing() -> str:
            current = self.get(entry.key)
            if current is None or current.commit_id != entry.commit_id:
                return "the entry was recomputed or pruned since it was listed (reload it)"
            if stored.feature not in current.features:
                return "the feature was pruned and purged since it was listed (reload it)"
            return "missing"

        what = f"{entry.key} feature {stored.feature!r}"
        return load_feature(self.root, stored, what, mmap, frames, why_missing)

    def total_bytes(self) -> int:
        """Bytes of the array files of every listed entry (trash excluded)."""
        return index.total_bytes(self._db)

    def trash_bytes(self) -> int:
        return self._db.scalar("SELECT COALESCE(SUM(nbytes), 0) FROM trash")

    def version(self) -> StoreVersion:
        """Change counters of entries and jobs; cheap enough to poll several times a second
        (``PRAGMA data_version`` tells whether anyone else committed since the last call)."""
        return self._db.version()

    # -- prune, restore, purge ----------------------------------------------------------------

    def prune(self, items: Sequence[tuple[EntryKey, str]]) -> str:
        """Move the given features to the trash (one transaction); an entry left without
        features is removed. Items that do not exist are ignored. Returns the prune id."""
        prune_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        now = time.time()
        with self._db.write("cannot prune", durable=True) as c:
            seq = self._db.bump(c, "entries")
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
                    "nbytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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

    def restore(self, prune_id: str) -> list[tuple[EntryKey, str]]:
        """Undo a prune: its features come back with the same entry id, fingerprint, version
        and timestamps. A feature whose entry was recomputed after the prune stays in the
        trash (the newer data wins). Returns what was restored."""
        restored: list[tuple[EntryKey, str]] = []
        with self._db.write(f"cannot restore {prune_id}", durable=True) as c:
            seq = self._db.bump(c, "entries")
            rows = c.execute(
                "SELECT entry_id, source_id, calculator_id, profile, params, fingerprint, "
                "calculator_version, commit_id, created, updated, feature, path, times_path, meta_id, "
                "encoding, frames, channels, width, nbytes FROM trash WHERE prune_id = ? "
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
                        "fingerprint, calculator_version, commit_id, created, updated) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?)",
                        row[:10],
                    )
                elif tuple(current) != (eid, commit_id):
                    continue  # recomputed since the prune
                if c.execute(
                    "SELECT 1 FROM features WHERE entry_id = ? AND feature = ?", (eid, row[10])
                ).fetchone():
                    continue
                c.execute("INSERT INTO features VALUES (?,?,?,?,?,?,?,?,?,?)", (eid, *row[10:]))
                c.execute("UPDATE entries SET seq = ? WHERE id = ?", (seq, eid))
                c.execute(
                    "DELETE FROM trash WHERE prune_id = ? AND entry_id = ? AND feature = ?",
                    (prune_id, eid, row[10]),
                )
                restored.append((key, row[10]))
        return restored

    def purge(self, prune_id: str | None = None, *, older_than: float | None = None) -> int:
        """Delete trashed features for real: of one prune, or all (``None``), optionally only
        those pruned more than ``older_than`` seconds ago. Returns the number purged."""
        where: list[str] = []
        args: list[object] = []
        if prune_id is not None:
            where.append("prune_id = ?")
            args.append(prune_id)
        if older_than is not None:
            where.append("pruned < ?")
            args.append(time.time() - older_than)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        if not self._db.scalar(f"SELECT EXISTS (SELECT 1 FROM trash{clause})", args):
            return 0
        with self._db.write("cannot purge the trash", durable=True) as c:
            rows = c.execute(f"SELECT path, times_path FROM trash{clause}", args).fetchall()
            c.execute(f"DELETE FROM trash{clause}", args)
            c.execute(
                "DELETE FROM metas WHERE id NOT IN (SELECT meta_id FROM features) "
                "AND id NOT IN (SELECT meta_id FROM trash)"
            )
            paths = [p for row in rows for p in row if p]
            c.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(p,) for p in paths])
        recovery.delete_garbage(self._db, self.root, paths)
        return len(rows)

    def trash(self, prune_id: str | None = None) -> list[TrashItem]:
        sql = "SELECT prune_id, pruned, source_id, calculator_id, profile, params, feature, nbytes FROM trash"
        args: tuple[str, ...] = ()
        if prune_id is not None:
            sql += " WHERE prune_id = ?"
            args = (prune_id,)
        with self._db.read("cannot read the trash") as c:
            rows = c.execute(sql + " ORDER BY pruned, prune_id, entry_id, feature", args).fetchall()
        return [TrashItem(r[0], r[1], EntryKey(*r[2:6]), r[6], r[7]) for r in rows]

    # -- digests (the DigestCache protocol of core.audio) --------------------------------------

    def get_digest(self, path: str, stamp: FileStamp) -> str | None:
        try:
            with self._db.lock:
                row = (
                    self._db.live()
                    .execute(
                        "SELECT digest, size, mtime_ns, inode, ctime_ns FROM digests WHERE path = ?",
                        (path,),
                    )
                    .fetchone()
                )
        except sqlite3.Error as exc:
            raise self._db.error("cannot read digests", exc) from None
        if row is None or tuple(row[1:]) != (
            stamp.size,
            stamp.mtime_ns,
            stamp.inode,
            stamp.ctime_ns,
        ):
            return None
        return str(row[0])

    def put_digest(self, path: str, stamp: FileStamp, digest: str) -> None:
        with self._db.write("cannot store a digest") as c:
            c.execute(
                "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)",
                (path, stamp.size, stamp.mtime_ns, stamp.inode, stamp.ctime_ns, digest),
            )

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(self, record: JobRecord) -> None:
        """Insert (or overwrite) a job record."""
        _check_state(record.state)
        with self._db.write("cannot record a job") as c:
            c.execute(
                f"INSERT OR REPLACE INTO jobs ({_JOB_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.id,
                    record.source_id,
                    json.dumps(list(record.calculator_ids)),
                    record.profile,
                    record.params,
                    json.dumps(list(record.features)),
                    record.state,
                    record.progress,
                    record.label,
                    record.message,
                    record.origin,
                    record.owner_pid,
                    record.owner_start,
                    record.created,
                    record.updated,
                ),
            )
            if record.state in FINISHED_JOB_STATES:
                _trim_jobs(c, record.source_id, record.profile, record.params)
            self._db.bump(c, "jobs")

    def update_job(
        self,
        job_id: str,
        *,
        state: str | _Unset = _UNSET,
        progress: float | _Unset | None = _UNSET,
        label: str | _Unset = _UNSET,
        message: str | _Unset | None = _UNSET,
    ) -> bool:
        """Change some fields of a job (and its ``updated`` time); False if there is no such
        job. One small transaction: fine at 10 calls per second."""
        sets: list[str] = ["updated = ?"]
        args: list[object] = [time.time()]
        fields: list[tuple[str, object]] = [
            ("state", state),
            ("progress", progress),
            ("label", label),
            ("message", message),
        ]
        for name, value in fields:
            if not isinstance(value, _Unset):
                sets.append(f"{name} = ?")
                args.append(value)
        if isinstance(state, str):
            _check_state(state)
        with self._db.write("cannot update a job") as c:
            cur = c.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*args, job_id))
            if cur.rowcount == 0:
                return False
            if isinstance(state, str) and state in FINISHED_JOB_STATES:
                row = c.execute(
                    "SELECT source_id, profile, params FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()
                _trim_jobs(c, *row)
            self._db.bump(c, "jobs")
        return True

    def jobs(self, active_only: bool = False) -> list[JobRecord]:
        """Job records of every process, oldest first."""
        sql = f"SELECT {_JOB_COLS} FROM jobs"
        if active_only:
            sql += " WHERE state IN ('queued', 'running')"
        with self._db.read("cannot read jobs") as c:
            rows = c.execute(sql + " ORDER BY created, id").fetchall()
        return [_job_from_row(r) for r in rows]

    def job(self, job_id: str) -> JobRecord | None:
        with self._db.read("cannot read jobs") as c:
            row = c.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_from_row(row) if row is not None else None

    def latest_jobs_by_key(self) -> dict[EntryKey, JobRecord]:
        """Per (source, calculator, profile, params): the most recently finished job."""
        with self._db.read("cannot read jobs") as c:
            rows = c.execute(
                f"SELECT {_JOB_COLS} FROM jobs WHERE state IN ('done', 'failed', 'cancelled') "
                "ORDER BY updated DESC, id"
            ).fetchall()
        out: dict[EntryKey, JobRecord] = {}
        for row in rows:
            job = _job_from_row(row)
            for key in job.entry_keys():
                out.setdefault(key, job)
        return out

    def request_cancel(self, job_id: str) -> bool:
        """Ask whichever process runs ``job_id`` to cancel it (it checks at its next progress
        report, so within a block); False if there is no such active job."""
        with self._db.write("cannot request a cancellation") as c:
            row = c.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] not in ACTIVE_JOB_STATES:
                return False
            c.execute("INSERT OR REPLACE INTO cancel_requests VALUES (?, ?)", (job_id, time.time()))
            self._db.bump(c, "jobs")
        return True

    def cancel_requested(self, job_id: str) -> bool:
        with self._db.read("cannot read cancellation requests") as c:
            row = c.execute("SELECT 1 FROM cancel_requests WHERE job_id = ?", (job_id,)).fetchone()
        return row is not None

    def clear_cancel_request(self, job_id: str) -> None:
        with self._db.write("cannot clear a cancellation request") as c:
            c.execute("DELETE FROM cancel_requests WHERE job_id = ?", (job_id,))

    def reap_dead_jobs(self) -> list[str]:
        """Fail every queued or running job whose owner process is gone (pid reuse detected
        by the start token). Returns the ids of the jobs reaped."""
        with self._db.read("cannot read jobs") as c:
            rows = c.execute(
                "SELECT id, owner_pid, owner_start FROM jobs WHERE state IN ('queued', 'running')"
            ).fetchall()
        dead = [(job_id, pid) for job_id, pid, start in rows if not process_alive(pid, start)]
        if not dead:
            return []
        now = time.time()
        with self._db.write("cannot update jobs") as c:
            c.executemany(
                "UPDATE jobs SET state = 'failed', progress = NULL, label = 'failed', "
                "message = ?, updated = ? WHERE id = ? AND state IN ('queued', 'running')",
                [(f"owner process {pid} died", now, job_id) for job_id, pid in dead],
            )
            self._db.bump(c, "jobs")
        return [job_id for job_id, _ in dead]


if TYPE_CHECKING:  # the protocol it implements, checked by mypy

    def _is_digest_cache(store: FeatureStore) -> DigestCache:
        return store
