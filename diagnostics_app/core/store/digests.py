"""The content digest cache (the ``DigestCache`` protocol of :mod:`diagnostics_app.core.audio`).

A content digest costs a full read of the audio file, so it is kept with the stat facts it
was computed under and served again only while all of them (size, mtime, inode, ctime) are
unchanged: any change means the content may have changed, and the file is hashed again. Written with ``synchronous=NORMAL``: a lost digest is only recomputed.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from diagnostics_app.core.store.connection import IndexConnection

if TYPE_CHECKING:
    from diagnostics_app.core.audio import FileStamp


def get_digest(db: IndexConnection, path: str, stamp: FileStamp) -> str | None:
    try:
        with db.lock:
            row = (
                db.live()
                .execute(
                    "SELECT digest, size, mtime_ns, inode, ctime_ns FROM digests WHERE path = ?",
                    (path,),
                )
                .fetchone()
            )
    except sqlite3.Error as exc:
        raise db.error("cannot read digests", exc) from None
    if row is None or tuple(row[1:]) != (
        stamp.size,
        stamp.mtime_ns,
        stamp.inode,
        stamp.ctime_ns,
    ):
        return None
    return str(row[0])


def put_digest(db: IndexConnection, path: str, stamp: FileStamp, digest: str) -> None:
    with db.write("cannot store a digest") as c:
        c.execute(
            "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)",
            (path, stamp.size, stamp.mtime_ns, stamp.inode, stamp.ctime_ns, digest),
        )
