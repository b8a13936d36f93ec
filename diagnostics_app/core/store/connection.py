"""The one SQLite connection of a store instance and the transaction discipline around it.

Every module of the store reaches the index through :class:`IndexConnection`, so the rules
hold everywhere: one connection per store instance behind one re-entrant lock (a store is
shared by threads); a write is ONE ``BEGIN IMMEDIATE … COMMIT``, rolled back on any error;
a read is one ``BEGIN … COMMIT`` so every query in it sees the same snapshot; ``durable``
writes (entry commits, prunes, restores, purges) run with ``synchronous=FULL`` so that a
power loss cannot resurrect a row whose files were already deleted, the others with
``NORMAL`` (safe against process crashes, cheap at 10 job updates per second); every SQLite
error leaves as a one-line :class:`StoreError` naming the index.

It also carries the store's *warnings* (:meth:`IndexConnection.warn`): problems that are not
errors, such as a path in the index that the store refuses to follow. Each is one line, kept
once per store instance and logged once to the ``diagnostics_app.store`` logger: where
nothing configured logging (the CLI), Python prints it on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.causes import db_cause, unwritable_hint
from diagnostics_app.core.store.records import StoreVersion

INDEX_NAME: Final = "index.sqlite"
DEFAULT_BUSY_TIMEOUT: Final = 30.0  # seconds a writer waits for another process's transaction

log = logging.getLogger("diagnostics_app.store")
# SQLite's words when it cannot create or write the index, its journal or its WAL files
_CANNOT_WRITE = ("unable to open database file", "readonly database")


def connect(index: Path, busy_timeout: float) -> sqlite3.Connection:
    try:
        return sqlite3.connect(
            str(index), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(
            f"{index}: cannot open the feature index: {db_cause(exc)}{unwritable_hint(index)}"
        ) from None


class IndexConnection:
    """A connection in autocommit mode (``isolation_level=None``): transactions are only the
    explicit ones of :meth:`write` and :meth:`read`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = conn
        self._writes = 0  # transactions committed by this connection
        self._version_cache: tuple[int, int, StoreVersion] | None = None
        self.warnings: list[str] = []  # see warn()

    def warn(self, message: str) -> None:
        """Report ``message`` (one line, naming what it is about) once per store instance."""
        text = f"warning: {self.path.parent}: {message}"
        with self.lock:
            if text in self.warnings:
                return
            self.warnings.append(text)
        log.warning("%s", text)

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def live(self) -> sqlite3.Connection:
        if self._conn is None:  # named by its cache folder, as the user knows it
            raise StoreError(f"{self.path.parent}: the feature store is closed")
        return self._conn

    def error(self, what: str, exc: sqlite3.Error) -> StoreError:
        hint = unwritable_hint(self.path) if any(w in str(exc) for w in _CANNOT_WRITE) else ""
        return StoreError(f"{self.path}: {what}: {db_cause(exc)}{hint}")

    @contextlib.contextmanager
    def write(self, what: str, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT); rolled back on any error."""
        with self.lock:
            conn = self.live()
            try:
                if durable:
                    conn.execute("PRAGMA synchronous = FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                    self._writes += 1
                finally:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise self.error(what, exc) from None
            finally:
                if durable:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA synchronous = NORMAL")

    @contextlib.contextmanager
    def read(self, what: str) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        with self.lock:
            conn = self.live()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self.error(what, exc) from None

    @staticmethod
    def bump(conn: sqlite3.Connection, counter: str) -> int:
        """Increment a change counter inside the current transaction; its new value (entries
        changed by the transaction get it as their ``seq``)."""
        conn.execute("UPDATE counters SET value = value + 1 WHERE name = ?", (counter,))
        row = conn.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()
        return int(row[0])

    def scalar(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One integer, read outside any transaction (a single statement is its own)."""
        try:
            with self.lock:
                return int(self.live().execute(sql, args).fetchone()[0])
        except sqlite3.Error as exc:
            raise self.error("cannot read the index", exc) from None

    def version(self) -> StoreVersion:
        """Change counters of entries and jobs; cheap enough to poll several times a second
        (``PRAGMA data_version`` tells whether anyone else committed since the last call)."""
        with self.lock:
            conn = self.live()
            try:
                data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                cached = self._version_cache
                if cached is not None and cached[0] == data_version and cached[1] == self._writes:
                    return cached[2]
                values = dict(conn.execute("SELECT name, value FROM counters").fetchall())
            except sqlite3.Error as exc:
                raise self.error("cannot read the index", exc) from None
            result = StoreVersion(int(values.get("entries", 0)), int(values.get("jobs", 0)))
            self._version_cache = (data_version, self._writes, result)
            return result

    def state_token(self) -> tuple[tuple[Any, ...], ...]:
        """A value that changes whenever an entry or a job record changes, for caches of what
        is derived from them (``check``'s result): the change counters, which every such write
        bumps in its own transaction, plus the last changed entry and the newest job record,
        whose random ids tell this index from another whose counters happen to be equal."""
        with self.read("cannot read the index") as c:
            counters = c.execute("SELECT name, value FROM counters ORDER BY name").fetchall()
            entry = c.execute(
                "SELECT id, commit_id, seq FROM entries ORDER BY seq DESC, id DESC LIMIT 1"
            ).fetchone()
            job = c.execute("SELECT id, updated FROM jobs ORDER BY rowid DESC LIMIT 1").fetchone()
        return (tuple(map(tuple, counters)), tuple(entry or ()), tuple(job or ()))
