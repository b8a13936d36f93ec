"""The tables of the SQLite index, and how an index is created or brought up to date.

Several programs of several versions may share one cache folder, so the schema version is
checked at every open: an older index is migrated in one durable transaction, a newer one is
refused with a message saying what to do, never read as if it were ours.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.connection import IndexConnection

# 2: cancel_requests (cancelling another process's job); 3: features and trash rows record
# each file's stamp and checksum (see .verify); 4: owners (leases, see .lease), and the place
# (host, boot, PID namespace) of each job's owner and each writer; 5: previous versions
# (the ``previous`` table), each entry's provenance, each feature's ``regenerated`` verdict; 6:
# environment_marks (entries verify --repair found drifted, see .marks); 7: audio_blocks
# (block digests of each audio version, by content digest: core.ranges); 8: the ``splices``
# column of features, trash and previous (frames replaced in place, see .splicing); 9: the
# ``algorithm`` of audio_blocks (core.hashing: new digests are XXH3-128 "x3", the rows already
# there BLAKE2b-128 "b2"; new array checksums are "x3:...", the "b2:..." already there stay)
SCHEMA_VERSION: Final = 9

# columns added after the table was first released: (table, column, declaration)
_ADDED_COLUMNS: Final = (
    ("features", "stamp", "TEXT"),
    ("features", "checksum", "TEXT"),
    ("trash", "stamp", "TEXT"),
    ("trash", "checksum", "TEXT"),
    ("jobs", "owner_place", "TEXT"),
    ("writers", "place", "TEXT"),
    ("entries", "provenance", "TEXT"),
    ("features", "regenerated", "TEXT"),
    ("trash", "provenance", "TEXT"),
    ("trash", "regenerated", "TEXT"),
    ("features", "splices", "TEXT"),
    ("trash", "splices", "TEXT"),
    ("previous", "splices", "TEXT"),
    # the rows already there were digested with BLAKE2b (new rows always name theirs)
    ("audio_blocks", "algorithm", "TEXT NOT NULL DEFAULT 'b2'"),
)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS metas (id INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id TEXT NOT NULL, calculator_id TEXT NOT NULL, profile TEXT NOT NULL,
    params TEXT NOT NULL, fingerprint TEXT NOT NULL, calculator_version INTEGER NOT NULL,
    commit_id TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0, provenance TEXT,
    UNIQUE (source_id, calculator_id, profile, params));
CREATE INDEX IF NOT EXISTS entries_by_seq ON entries (seq);
CREATE TABLE IF NOT EXISTS features (
    entry_id INTEGER NOT NULL, feature TEXT NOT NULL, path TEXT NOT NULL, times_path TEXT,
    meta_id INTEGER NOT NULL, encoding TEXT NOT NULL, frames INTEGER NOT NULL,
    channels INTEGER NOT NULL, width INTEGER NOT NULL, nbytes INTEGER NOT NULL,
    stamp TEXT, checksum TEXT, regenerated TEXT,
    PRIMARY KEY (entry_id, feature)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trash (
    prune_id TEXT NOT NULL, pruned REAL NOT NULL, entry_id INTEGER NOT NULL,
    source_id TEXT NOT NULL, calculator_id TEXT NOT NULL, profile TEXT NOT NULL,
    params TEXT NOT NULL, fingerprint TEXT NOT NULL, calculator_version INTEGER NOT NULL,
    commit_id TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    feature TEXT NOT NULL, path TEXT NOT NULL, times_path TEXT, meta_id INTEGER NOT NULL,
    encoding TEXT NOT NULL, frames INTEGER NOT NULL, channels INTEGER NOT NULL,
    width INTEGER NOT NULL, nbytes INTEGER NOT NULL, stamp TEXT, checksum TEXT,
    provenance TEXT, regenerated TEXT,
    PRIMARY KEY (prune_id, entry_id, feature));
CREATE TABLE IF NOT EXISTS previous (
    source_id TEXT NOT NULL, calculator_id TEXT NOT NULL, profile TEXT NOT NULL,
    params TEXT NOT NULL, feature TEXT NOT NULL, fingerprint TEXT NOT NULL,
    calculator_version INTEGER NOT NULL, commit_id TEXT NOT NULL, updated REAL NOT NULL,
    replaced REAL NOT NULL, replaced_by TEXT NOT NULL, provenance TEXT,
    path TEXT NOT NULL, times_path TEXT, meta_id INTEGER NOT NULL, encoding TEXT NOT NULL,
    frames INTEGER NOT NULL, channels INTEGER NOT NULL, width INTEGER NOT NULL,
    nbytes INTEGER NOT NULL, stamp TEXT, checksum TEXT,
    PRIMARY KEY (source_id, calculator_id, profile, params, feature));
CREATE TABLE IF NOT EXISTS garbage (path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS writers (
    token TEXT PRIMARY KEY, pid INTEGER NOT NULL, start TEXT NOT NULL, since REAL NOT NULL,
    place TEXT);
CREATE TABLE IF NOT EXISTS owners (
    place TEXT NOT NULL, pid INTEGER NOT NULL, start TEXT NOT NULL, heartbeat REAL NOT NULL,
    PRIMARY KEY (place, pid, start));
CREATE TABLE IF NOT EXISTS digests (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audio_blocks (
    digest TEXT PRIMARY KEY, sample_rate INTEGER NOT NULL, channels INTEGER NOT NULL,
    frames INTEGER NOT NULL, block_frames INTEGER NOT NULL, blocks BLOB NOT NULL,
    algorithm TEXT NOT NULL DEFAULT 'b2');
CREATE TABLE IF NOT EXISTS cancel_requests (job_id TEXT PRIMARY KEY, requested REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, source_id TEXT NOT NULL, calculator_ids TEXT NOT NULL,
    profile TEXT NOT NULL, params TEXT NOT NULL, features TEXT NOT NULL, state TEXT NOT NULL,
    progress REAL, label TEXT NOT NULL, message TEXT, origin TEXT NOT NULL,
    owner_pid INTEGER NOT NULL, owner_start TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL, owner_place TEXT);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (source_id, profile, params);
CREATE TABLE IF NOT EXISTS environment_marks (
    entry_id INTEGER PRIMARY KEY, commit_id TEXT NOT NULL, detail TEXT NOT NULL,
    marked REAL NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('entries', 0), ('jobs', 0);
"""


def setup(db: IndexConnection, busy_timeout: float) -> None:
    """Set the connection up (busy timeout, WAL) and create or migrate the schema."""
    conn = db.live()
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")
        version = _schema_version(conn, db.path)
    except sqlite3.Error as exc:
        raise db.error("cannot open the feature index", exc) from None
    if version == SCHEMA_VERSION:
        return
    with db.write("cannot initialise the feature index", durable=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = _schema_version(c, db.path)  # again: another process may have won the race
        if version is None or version < SCHEMA_VERSION:
            # every statement is IF NOT EXISTS: running them all creates a new index and
            # migrates an older one (1 -> 2 adds cancel_requests); columns added later are
            # added to the tables an older version created (2 -> 3: stamps and checksums,
            # NULL for the rows already there: verified by header, "no checksum recorded";
            # 3 -> 4: owners and places, NULL for jobs and writers already there: judged by
            # their pid, as the program that wrote them did; 4 -> 5: previous versions, none
            # for the entries already there, and no provenance or verdict recorded for them;
            # 5 -> 6: environment_marks, empty: nothing is marked until verify --repair;
            # 6 -> 7: audio_blocks, empty: an entry whose audio has no block digests yet is
            # diagnosed whole-file, as before, until its file is next digested; 7 -> 8: the
            # splices columns, NULL (no parts) for every row already there; 8 -> 9: the
            # algorithm of audio_blocks, "b2" for every row already there: compared only with
            # other "b2" rows, so an edit made after the upgrade is diagnosed whole-file once)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            for table, column, declaration in _ADDED_COLUMNS:
                have = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for table in ("features", "trash", "previous"):
                # which rows have splices, without a scan (see recovery.any_spliced)
                c.execute(
                    f"CREATE INDEX IF NOT EXISTS {table}_spliced ON {table} (splices) "
                    "WHERE splices IS NOT NULL"
                )
            c.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )


def _schema_version(conn: sqlite3.Connection, index_path: Path) -> int | None:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{index_path}: the feature index has schema version {version}, newer than "
            f"this program supports ({SCHEMA_VERSION}); upgrade diagnostics-app or use "
            f"another cache folder"
        )
    return version
