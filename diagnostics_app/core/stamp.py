"""The one file stamp: what ``stat`` says of a file, taken as "its bytes are unchanged" while
it is equal.

Content digests, a session's audio facts, the check's cached result, the file watcher and the
waveform cache all key by it, so they agree on when a file changed: size, mtime, inode (an
atomic replace changes it even when size and mtime stay) and ctime (which no program can set
back).

A leaf of the core with nothing but the standard library: the check's fast path stamps files
before it imports anything heavy. :func:`diagnostics_app.core.audio.stamp_of` is the stamp of
an audio file, with the audio module's one-line errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class FileStamp:
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int

    @classmethod
    def from_stat(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    @classmethod
    def of(cls, path: str | os.PathLike[str] | int) -> FileStamp:
        """The stamp of ``path`` (or an open file descriptor); OSError if it cannot be had."""
        return cls.from_stat(os.stat(path))

    @classmethod
    def peek(cls, path: str | os.PathLike[str] | int) -> FileStamp | None:
        """The stamp, or None when it cannot be had: for noticing a change, not for reading."""
        try:
            return cls.of(path)
        except (OSError, ValueError):  # ValueError: a null byte in the path
            return None

    def to_json(self) -> list[int]:
        """The fields in order, as a JSON list (a cache key)."""
        return [self.size, self.mtime_ns, self.inode, self.ctime_ns]
