"""The content digest cache (the ``DigestCache`` protocol of :mod:`diagnostics_app.core.audio`).

A content digest costs a full read of the audio file, so it is kept with the stat facts it
was computed under and served again only while all of them (size, mtime, inode, ctime) are
unchanged: any change means the content may have changed, and the file is hashed again. Written with ``synchronous=NORMAL``: a lost digest is only recomputed.

Block digests (:mod:`diagnostics_app.core.ranges`) cost a full decode; they are kept by the
content digest of the version they describe (``audio_blocks``), so each version of a file is
decoded for them once, and a stored entry's fingerprint (its ``audio.content``) finds the
blocks of the audio it was computed from. A lost row only means that version's changes are
reported whole-file. Each row records its digests' algorithm (``"x3"``; ``"b2"`` for the rows
of stores written before schema 9, which the migration gave that value): versions whose
digests differ in algorithm are not compared (the whole file changed).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from diagnostics_app.core.ranges import BlockDigests
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


def get_blocks(db: IndexConnection, digest: str) -> BlockDigests | None:
    try:
        with db.lock:
            row = (
                db.live()
                .execute(
                    "SELECT sample_rate, channels, frames, block_frames, blocks, algorithm"
                    " FROM audio_blocks WHERE digest = ?",
                    (digest,),
                )
                .fetchone()
            )
    except sqlite3.Error as exc:
        raise db.error("cannot read block digests", exc) from None
    if row is None:
        return None
    return BlockDigests(
        int(row[0]), int(row[1]), int(row[2]), int(row[3]), bytes(row[4]), str(row[5])
    )


def put_blocks(db: IndexConnection, digest: str, blocks: BlockDigests) -> None:
    with db.write("cannot store block digests") as c:
        c.execute(
            "INSERT OR REPLACE INTO audio_blocks (digest, sample_rate, channels, frames, "
            "block_frames, blocks, algorithm) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                digest,
                blocks.sample_rate,
                blocks.channels,
                blocks.frames,
                blocks.block_frames,
                blocks.digests,
                blocks.algorithm,
            ),
        )
