"""Verifying a listing: each feature's files are there, whole, and hold what its row says.

A row is only a claim about files, and files can be deleted, truncated or replaced behind the
store's back, so :meth:`FeatureStore.entries` (the listing every diagnosis uses) checks each
feature's files and sets :attr:`StoredFeature.problem` (and :attr:`StoredEntry.problems`) on
those that fail. What a sound feature guarantees, file by file (data, and times if any):

- its path is one the store may follow (:mod:`.paths`), and it is a regular file;
- its ``.npy`` header says the dtype and shape the row records (``float32`` or ``uint16`` for
  u16db, ``(frames, channels, width)``; ``float64 (frames,)`` for times);
- its size is exactly what that header and shape imply.

A spliced feature (:mod:`.splicing`) is checked file by file the same way: its base files
against the base's frame count, each part's files against the part's, with the stamps and
checksums each part recorded at commit (a part's stamp is not written back: parts are small).

Cost: a file whose ``lstat`` gives the stamp (``size:mtime_ns:inode``) under which it was last
found sound costs that ``lstat`` and nothing else. The stamp is recorded in the row at commit;
after a header check passes under a new stamp (an index from an older version, a copied
store, a touched file), the new stamp is kept for this process and written back to the row
(best effort: a read-only store is checked by header again next time), so a re-check of an
unchanged store reads no file. Any other stamp means the file may have changed: its header is
read again (the first 128 bytes, compared with the header the writer writes).

With content checks on (``check --verify``), every file is also read in full and its values
(the bytes after the header) hashed with the algorithm the recorded checksum names (its prefix:
``x3:`` XXH3-128, ``b2:`` BLAKE2b-128 in stores written before schema 9; :mod:`core.hashing`)
and compared with the checksum recorded at commit; a prefix naming no known algorithm fails
the file (one line naming it) without reading it. Rows committed before checksums were
recorded cannot be checked that way: they are
counted and reported in one warning line, not failed. A mismatch is *kept*: the row's stamp
becomes ``!`` + the problem (and the entry's ``seq`` is bumped, so every process lists it
again), and every later listing, content checks or not, reports it, until the feature is
recomputed (a new row) or a content check finds the file right again; otherwise ``analyze``,
which lists without content checks, would call the row ``ok`` and leave it.

The stamp is a cache, not a proof: a file rewritten in place with its size and mtime set back
passes the cheap check (the content check catches it), and reading a feature checks its header
and size again anyway (:func:`~.arrays.load_feature`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.hashing import checksum_like, unknown_checksum
from diagnostics_app.core.store.arrays import (
    F32,
    F64,
    U16,
    describe,
    expected_size,
    npy_header,
    read_npy_header,
    stamp_text,
)
from diagnostics_app.core.store.causes import one_line, os_cause
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.paths import (
    DATA_DIR,
    index_path_ok,
    open_folder,
    open_no_follow,
    refusal,
)
from diagnostics_app.core.store.records import StoredEntry, StoredFeature
from diagnostics_app.core.store.spliced import parts_problem

_CHUNK: Final = 1 << 20
_HEADER_BYTES: Final = 128  # what ArrayWriter writes; other headers are parsed by numpy

# (row path, expected dtype, expected shape): what a file is checked against
_Layout = tuple[str, np.dtype[Any], tuple[int, ...]]
# (entry id, feature, data path, new stamp, whether a kept verdict is set or cleared): a
# stamp to write back to its row
_Learned = tuple[int, str, str, str, bool, str | None]  # ..., the stamp the row had
VERDICT: Final = "!"  # a stamp starting with it is a kept content verdict (see the module)


class Verifier:
    """The verification state of one store instance: the stamps found sound or broken in
    this process, and the entries it re-made with their problems (kept while unchanged, so
    a consumer that remembers entries by identity sees the same objects)."""

    def __init__(self, db: IndexConnection, root: Path) -> None:
        self._db = db
        self._root = root
        self._prefix = str(root) + os.sep
        # during a listing: a descriptor of data/, in which files are looked up by name (a
        # shorter lookup than the full path, and always in the folder opened), or None
        self._at: int | None = None
        self._lock = threading.Lock()
        # (path, layout) -> the stamp under which the file was found sound in this process
        self._good: dict[tuple[str, str, tuple[int, ...]], str] = {}
        self._bad: dict[tuple[str, str, tuple[int, ...]], tuple[str, str]] = {}  # (stamp, why)
        self._broken: dict[int, tuple[StoredEntry, tuple[tuple[str, str], ...], StoredEntry]] = {}
        self.headers_read = 0  # files whose header was read (tests count them)
        self.contents_read = 0  # files read in full (content checks)

    def listing(self, entries: Sequence[StoredEntry], content: bool) -> list[StoredEntry]:
        """``entries`` with ``problem`` set on each feature whose files fail the checks (the
        other entries are the same objects)."""
        with self._lock:
            self._at = open_folder(self._root / DATA_DIR)
            try:
                return self._listing(entries, content)
            finally:
                if self._at is not None:
                    os.close(self._at)
                    self._at = None

    def _listing(self, entries: Sequence[StoredEntry], content: bool) -> list[StoredEntry]:
        out = list(entries)
        learned: list[_Learned] = []
        broken: dict[int, tuple[StoredEntry, tuple[tuple[str, str], ...], StoredEntry]] = {}
        unchecked = [0]
        good, ok_path, at, stat_ = self._good, index_path_ok, self._at, os.stat
        # a row path "data/<name>" (checked first) is looked up as <name> in data/ if open
        pre, cut = ("", len(DATA_DIR) + 1) if at is not None else (self._prefix, 0)
        for i, entry in enumerate(out):
            problems: list[tuple[str, str]] | None = None
            for name, sf in entry.features.items():
                if sf.times_path is None and not content and not sf.splices:
                    # the common case, inline: a data file only, its stamp unchanged
                    path = sf.path
                    if ok_path(path):
                        try:
                            st = stat_(pre + path[cut:], dir_fd=at, follow_symlinks=False)
                        except OSError:
                            pass
                        else:
                            s = stamp_text(st)
                            rec = sf.stamp
                            if s == rec and stat.S_ISREG(st.st_mode):
                                continue
                            if (
                                good.get(_key(path, sf)) == s
                                and stat.S_ISREG(st.st_mode)
                                and (rec is None or rec[:1] != VERDICT)
                            ):
                                continue
                problem = self._feature(entry, sf, content, learned, unchecked)
                if problem is not None:
                    problems = problems or []
                    problems.append((name, problem))
            if problems:
                out[i] = self._with_problems(entry, tuple(problems), broken)
        self._broken = broken
        if learned:
            self._learn(learned)
        if unchecked[0]:
            self._db.warn(
                f"{unchecked[0]:,} cached feature file(s) have no checksum recorded (written "
                f"by an older version): their content could not be verified"
            )
        return out

    def _with_problems(
        self,
        entry: StoredEntry,
        problems: tuple[tuple[str, str], ...],
        broken: dict[int, tuple[StoredEntry, tuple[tuple[str, str], ...], StoredEntry]],
    ) -> StoredEntry:
        seen = self._broken.get(entry.entry_id)
        if seen is not None and seen[0] is entry and seen[1] == problems:
            made = seen[2]
        else:
            why = dict(problems)
            features = {
                name: dataclasses.replace(sf, problem=why[name]) if name in why else sf
                for name, sf in entry.features.items()
            }
            made = dataclasses.replace(
                entry, features=MappingProxyType(features), problems=problems
            )
        broken[entry.entry_id] = (entry, problems, made)
        return made

    def _feature(
        self,
        entry: StoredEntry,
        sf: StoredFeature,
        content: bool,
        learned: list[_Learned],
        unchecked: list[int],
    ) -> str | None:
        """Why the feature's files are not what its row says, or None."""
        verdict = sf.stamp[1:] if sf.stamp is not None and sf.stamp[:1] == VERDICT else None
        if verdict is not None and not content:
            return verdict
        problem = parts_problem(sf)
        if problem is not None:
            return problem
        dtype = U16 if sf.encoding == "u16db" else F32
        base = sf.base_frames
        files: list[tuple[str, _Layout]] = [
            ("data file", (sf.path, dtype, (base, *_shape(sf)[1:])))
        ]
        if sf.times_path is not None:
            files.append(("times file", (sf.times_path, F64, (base,))))
        n_base = len(files)
        recorded = ((sf.stamp or "").split(",") + [""] * n_base)[:n_base]
        checksums = ((sf.checksum.split(",") if sf.checksum else []) + [""] * n_base)[:n_base]
        # the splice parts, each file with the stamp and checksum of its part (see .splicing)
        for part in sf.splices:
            files.append(("splice file", (part.path, dtype, (part.frames, *_shape(sf)[1:]))))
            if part.times_path is not None:
                files.append(("splice times file", (part.times_path, F64, (part.frames,))))
            n = len(part.paths)
            recorded.extend((part.stamp.split(",") + [""] * n)[:n])
            checksums.extend((part.checksum.split(",") + [""] * n)[:n])
        stamps: list[str] = []
        for k, (kind, layout) in enumerate(files):
            problem, s = self._file(kind, layout, recorded[k] if k < len(recorded) else None)
            if problem is not None:
                return problem
            if k < n_base:
                stamps.append(s)  # the row's stamps are its base files' (parts keep theirs)
            if content:
                if k < len(checksums) and checksums[k]:
                    problem = self._content(kind, layout, checksums[k])
                    if problem is not None:
                        self._good.pop((layout[0], layout[1].str, layout[2]), None)
                        if problem != verdict:
                            learned.append(
                                (
                                    entry.entry_id,
                                    sf.feature,
                                    sf.path,
                                    VERDICT + problem,
                                    True,
                                    sf.stamp,
                                )
                            )
                        return problem
                else:
                    unchecked[0] += 1
        joined = ",".join(stamps)
        if joined != sf.stamp:
            learned.append(
                (entry.entry_id, sf.feature, sf.path, joined, verdict is not None, sf.stamp)
            )
        return None

    def _file(self, kind: str, layout: _Layout, recorded: str | None) -> tuple[str | None, str]:
        """(why the file fails the cheap checks or None, its stamp)."""
        rel, dtype, shape = layout
        if not index_path_ok(rel):
            return f"{kind}: {refusal(rel)}; not read", ""
        path = self._prefix + rel
        try:
            st = os.stat(self._name(rel), dir_fd=self._at, follow_symlinks=False)
        except FileNotFoundError:
            return f"{kind} {path} is missing", ""
        except OSError as exc:
            return f"{kind} {path} cannot be read: {os_cause(exc)}", ""
        if stat.S_ISLNK(st.st_mode):
            return f"{kind} {path} is a symbolic link: refused, not followed", ""
        if not stat.S_ISREG(st.st_mode):
            return f"{kind} {path} is not a regular file", ""
        s = stamp_text(st)
        key = (rel, dtype.str, shape)
        if s == recorded or self._good.get(key) == s:
            return None, s
        bad = self._bad.get(key)
        if bad is not None and bad[0] == s:
            return bad[1], s
        problem = self._header(kind, layout, st.st_size)
        if problem is None:
            self._good[key] = s
            self._bad.pop(key, None)
        else:
            self._bad[key] = (s, problem)
        return problem, s

    def _header(self, kind: str, layout: _Layout, size: int) -> str | None:
        rel, dtype, shape = layout
        path = self._prefix + rel
        self.headers_read += 1
        try:
            with os.fdopen(open_no_follow(self._name(rel), self._at), "rb") as f:
                offset = _data_offset(f, dtype, shape)
        except FileNotFoundError:
            return f"{kind} {path} is missing"
        except _Mismatch as exc:
            return f"{kind} {path}{exc}"
        except OSError as exc:
            return f"{kind} {path} cannot be read: {os_cause(exc)}"
        need = expected_size(offset, dtype, shape)
        if size != need:
            return f"{kind} {path} is {size:,} bytes, expected {need:,}"
        return None

    def _content(self, kind: str, layout: _Layout, recorded: str) -> str | None:
        rel, dtype, shape = layout
        path = self._prefix + rel
        h = checksum_like(recorded)
        if h is None:
            return f"{kind} {path}: {unknown_checksum(recorded)}"
        self.contents_read += 1
        try:
            with os.fdopen(open_no_follow(self._name(rel), self._at), "rb") as f:
                f.seek(_data_offset(f, dtype, shape))
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        except _Mismatch as exc:
            return f"{kind} {path}{exc}"
        except OSError as exc:
            return f"{kind} {path} cannot be read: {os_cause(exc)}"
        if h.text() != recorded:
            return f"{kind} {path}: its content differs from the checksum recorded at commit"
        return None

    def _name(self, rel: str) -> str:
        """How to look up an index path already checked ("data/<name>"): its name in the
        open ``data/``, or else its full path."""
        return rel[len(DATA_DIR) + 1 :] if self._at is not None else self._prefix + rel

    def _learn(self, learned: list[_Learned]) -> None:
        """Write the stamps of files found sound under a new stamp back to their rows, so the
        next process need not read their headers, and kept verdicts set or cleared (best
        effort; the row must be unchanged). Only a verdict changes what a listing says, so
        only then are the entries' ``seq`` and the change counter bumped."""
        with (
            contextlib.suppress(StoreError),
            self._db.write("cannot record verified stamps") as c,
        ):
            # only where the row still holds the stamp this listing read: a verdict written
            # meanwhile by another process's ``--verify`` must not be overwritten by a stamp
            written = [
                eid
                for eid, feature, path, s, _, seen in learned
                if c.execute(
                    "UPDATE features SET stamp = ? WHERE entry_id = ? AND feature = ? "
                    "AND path = ? AND stamp IS ?",
                    (s, eid, feature, path, seen),
                ).rowcount
            ]
            changed = {eid for eid, _, _, _, verdict, _ in learned if verdict} & set(written)
            if changed:
                seq = self._db.bump(c, "entries")
                c.executemany(
                    "UPDATE entries SET seq = ? WHERE id = ?", [(seq, eid) for eid in changed]
                )


class _Mismatch(Exception):
    """A file that is not the ``.npy`` array its row describes: the message says how, as it
    follows the file's name (" is not ...", ": header says ...")."""


def _shape(sf: StoredFeature) -> tuple[int, int, int]:
    return (sf.frames, sf.channels, sf.width)


def _key(path: str, sf: StoredFeature) -> tuple[str, str, tuple[int, ...]]:
    """The key of a data file in the sound/broken caches: its path and the layout checked."""
    return (path, (U16 if sf.encoding == "u16db" else F32).str, _shape(sf))


def _data_offset(f: Any, dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
    """Where the values start, once the header is found to say ``dtype`` and ``shape``;
    raises :class:`_Mismatch` otherwise. Reads only the header."""
    with contextlib.suppress(ValueError):  # a shape too long for the writer's header
        if f.read(_HEADER_BYTES) == npy_header(dtype, shape):  # what our writer wrote
            return _HEADER_BYTES
    f.seek(0)
    try:
        got_dtype, got_shape, offset = read_npy_header(f)
    except (ValueError, EOFError) as exc:
        raise _Mismatch(f" is not a .npy array file ({one_line(str(exc))[:120]})") from None
    if got_dtype != dtype or got_shape != shape:
        raise _Mismatch(
            f": header says {describe(got_dtype, got_shape)}, expected {describe(dtype, shape)}"
        )
    return offset
