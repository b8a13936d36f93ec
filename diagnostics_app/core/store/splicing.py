"""Committing splices: an entry's frames replaced in place, at a cost proportional to the
frames replaced (issue 13: one second of a 60-minute source changed, one second recomputed).

Storage
    A feature row keeps its *base* files (``path``, ``times_path``) and an ordered list of
    splice *parts* in its ``splices`` column (JSON, see :class:`~.records.SplicePart`): each
    part is a small ``.npy`` of replacement frames in the feature's stored encoding (plus a
    times file for a timed feature), with the base frame range it replaces, its stamp and its
    checksum. Parts are kept *normalised*: ascending and disjoint in base frame indices, so a
    read composes one list (:mod:`.spliced`) whatever the number of commits. Splices of a new
    commit come in the frame indices of the current (spliced) data; each is turned into a part
    over base indices, absorbing the existing parts it overlaps or touches (their frames are
    read, they are small), so the base file is never copied, hashed or rewritten. Part files
    are named like every other file of ``data/`` (:func:`~.owners.new_name`), so the path rule
    of :mod:`.paths` and the crash sweep apply to them unchanged.

Compaction
    When a feature would hold more than :data:`MAX_PARTS` parts, or its parts more than
    :data:`MAX_PART_SHARE` of its frames, the commit writes a fresh full file instead (the
    spliced values composed in the stored encoding, checksummed as written), so reads stay a
    slice of one file plus a few small ones.

Atomicity
    As :func:`~.index.commit_files`: part files are written and fsynced in ``tmp/``, renamed
    into ``data/``, the folder fsynced, then ONE durable transaction checks that the entry
    still holds ``base_commit_id`` and replaces it (new commit id, fingerprint, ``updated``,
    ``seq``). The replaced version becomes the key's previous version (:mod:`.previous`) and
    shares its base files (and parts) with the new row: files are deleted only when no row of
    ``features``, ``trash`` or ``previous`` references them (:func:`~.recovery.shared`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.hashing import Checksum
from diagnostics_app.core.splice import FrameSplice, apply_splices, apply_times, check_splices
from diagnostics_app.core.store.arrays import (
    DATA_DIR,
    F32,
    TMP_DIR,
    encode_u16,
    fsync_dir,
    npy_header,
    stamp_text,
    u16_range,
    unlink_all,
    write_times,
)
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.index import FeatureRow, _replace_in
from diagnostics_app.core.store.owners import new_name
from diagnostics_app.core.store.records import (
    EntryKey,
    SplicePart,
    StoredEntry,
    StoredFeature,
    splices_to_json,
)
from diagnostics_app.core.store.recovery import delete_garbage, references
from diagnostics_app.core.store.spliced import Reader, Run, stored_dtype

MAX_PARTS: Final = 8  # more parts than this: the feature is compacted into one full file
MAX_PART_SHARE: Final = 0.25  # parts holding more than this share of the frames: compacted
_CHUNK_BYTES: Final = 1 << 20


class StaleBase(StoreError):
    """The entry changed (recomputed, pruned, its files damaged) since the splices were
    planned: the caller recomputes whole."""


def _step(name: str) -> None:
    """Reached at each step of a commit ("written": parts in ``tmp/``; "renamed": in
    ``data/``; "commit": the transaction written, not committed): nothing here; the crash
    tests replace it in a child process to SIGKILL it exactly there (no sleeps, no races)."""


@dataclass
class _Written:
    """A file of the commit: written in ``tmp/``, then renamed into ``data/``."""

    name: str
    checksum: str
    stamp: str = ""
    nbytes: int = 0


@dataclass
class _Plan:
    """What the commit writes for one feature: new parts (or a full file) and the row."""

    sf: StoredFeature
    kept: list[SplicePart] = field(default_factory=list)
    new: list[tuple[int, int, np.ndarray, np.ndarray | None]] = field(default_factory=list)
    full: tuple[np.ndarray, np.ndarray | None] | None = None  # compacted: the whole data
    files: list[tuple[_Written, _Written | None]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        if self.full is not None:
            return len(self.full[0])
        growth = sum(len(d) - removed for _, removed, d, _ in self.new)
        kept = sum(p.frames - p.removed for p in self.kept)
        return self.sf.base_frames + growth + kept


def check_input(sf: StoredFeature, splices: Sequence[FrameSplice], what: str) -> None:
    """ValueError (naming the feature) unless ``splices`` fit ``sf``: ascending, disjoint,
    inside its frames, its layout, and carrying times exactly when the feature has them."""
    try:
        check_splices(splices, sf.frames)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    for s in splices:
        if s.data.shape[1:] != (sf.channels, sf.width):
            raise ValueError(
                f"{what}: splice at frame {s.first} has frames of shape {s.data.shape[1:]}, "
                f"the feature's are ({sf.channels}, {sf.width})"
            )
        if (s.times is None) != (sf.times_path is None):
            need = "carries no frame times" if s.times is None else "carries frame times"
            raise ValueError(
                f"{what}: splice at frame {s.first} {need} "
                f"({'a timed' if sf.times_path else 'an evenly timed'} feature)"
            )


def _encoded(sf: StoredFeature, data: np.ndarray) -> np.ndarray:
    """Frames in the feature's stored encoding (its u16db range: the base's own)."""
    values = np.ascontiguousarray(data, dtype=F32)
    value_range = u16_range(sf.meta) if sf.encoding == "u16db" else None
    return values if value_range is None else encode_u16(values, *value_range)


def plan_feature(reader: Reader, sf: StoredFeature, splices: Sequence[FrameSplice]) -> _Plan | None:
    """The new parts of ``sf`` once ``splices`` (in the frame indices of its current data)
    apply, or a full file when the chain would grow too long; None when nothing changes."""
    if not splices:
        return None
    plan = _Plan(sf)
    enc = [
        FrameSplice(
            s.first,
            s.removed,
            _encoded(sf, s.data),
            None if s.times is None else np.ascontiguousarray(s.times, dtype="<f8"),
        )
        for s in splices
    ]
    runs = reader.runs
    regions = _regions(runs, enc)
    absorbed = {id(p) for r in regions for p in r.parts}
    plan.kept = [p for p in sf.splices if id(p) not in absorbed]
    for r in regions:
        local = [FrameSplice(s.first - r.cur0, s.removed, s.data, s.times) for s in r.splices]
        data = apply_splices(reader.raw(r.cur0, r.cur1), local)
        times = None
        if sf.times_path is not None:
            times = apply_times(reader.raw(r.cur0, r.cur1, times=True), local)
        if len(data) or r.base1 > r.base0:
            plan.new.append((r.base0, r.base1 - r.base0, data, times))
    parts = len(plan.kept) + len(plan.new)
    part_frames = sum(p.frames for p in plan.kept) + sum(len(n[2]) for n in plan.new)
    if parts > MAX_PARTS or part_frames > MAX_PART_SHARE * max(1, plan.frames):
        whole = apply_splices(reader.raw(0, sf.frames), enc)
        whole_times = None
        if sf.times_path is not None:
            whole_times = apply_times(reader.raw(0, sf.frames, times=True), enc)
        plan.full = (whole, whole_times)  # in memory once: compaction is the rare case
        plan.kept, plan.new = [], []
    return plan


@dataclass
class _Region:
    """Where new splices and the parts they overlap or touch are rewritten as one part."""

    cur0: int
    cur1: int
    base0: int
    base1: int
    splices: list[FrameSplice]
    parts: list[SplicePart]


def _base_at(runs: Sequence[Run], x: int) -> int | None:
    """The base index of position ``x`` of the current data, if it lies in base frames (at
    an edge of them included); None inside a part."""
    if not runs:  # an empty feature: position 0 of nothing
        return 0
    for run in runs:
        if run.part is None and run.cur0 <= x <= run.cur1:
            return run.base0 + (x - run.cur0)
    return None


def _regions(runs: Sequence[Run], splices: Sequence[FrameSplice]) -> list[_Region]:
    """One region per group of new splices and existing parts that overlap or touch (closed
    intervals of the current data), with the base range it covers. A region's ends lie in
    base frames or at the ends of parts it absorbed, so its base range is exact."""
    found: list[_Region] = []
    for s in splices:
        touched = [r for r in runs if r.part is not None and r.cur0 <= s.stop and s.first <= r.cur1]
        cur0 = min([s.first, *(r.cur0 for r in touched)])
        cur1 = max([s.stop, *(r.cur1 for r in touched)])
        # an end inside a part has no base index: that part is touched and gives the range
        b0, b1 = _base_at(runs, s.first), _base_at(runs, s.stop)
        base0 = min(b for b in (b0, *(r.base0 for r in touched)) if b is not None)
        base1 = max(b for b in (b1, *(r.base1 for r in touched)) if b is not None)
        parts = [r.part for r in touched if r.part is not None]
        found.append(_Region(cur0, cur1, base0, base1, [s], parts))
    merged: list[_Region] = []
    for r in found:  # ascending already: splices are
        last = merged[-1] if merged else None
        if last is not None and r.cur0 <= last.cur1:
            last.cur1 = max(last.cur1, r.cur1)
            last.base1 = max(last.base1, r.base1)
            last.splices.extend(r.splices)
            last.parts.extend(p for p in r.parts if all(p is not q for q in last.parts))
        else:
            merged.append(r)
    return merged


def _write_raw(path: Path, raw: np.ndarray) -> str:
    """Write stored values as :class:`~.arrays.ArrayWriter` would (its fixed header, the
    values, fsynced); their checksum."""
    raw = np.ascontiguousarray(raw)
    h = Checksum()
    with path.open("wb") as f:
        f.write(npy_header(raw.dtype, raw.shape))
        flat = raw.reshape(-1).view(np.uint8)
        for start in range(0, len(flat), _CHUNK_BYTES):
            chunk = flat[start : start + _CHUNK_BYTES]
            f.write(chunk.data)
            h.update(chunk.data)
        f.flush()
        os.fsync(f.fileno())
    return h.text()


def _write_plan(root: Path, plan: _Plan, written: list[Path]) -> None:
    """Write a plan's files into ``tmp/`` (each appended to ``written`` before it is
    created, so a failure deletes it)."""
    tmp = root / TMP_DIR
    items: list[tuple[np.ndarray, np.ndarray | None]] = (
        [plan.full] if plan.full is not None else [(d, t) for _, _, d, t in plan.new]
    )
    for data, times in items:
        path = tmp / new_name(".npy")
        written.append(path)
        one = _Written(path.name, _write_raw(path, data.astype(stored_dtype(plan.sf), copy=False)))
        two = None
        if times is not None:
            tpath = tmp / new_name(".times.npy")
            written.append(tpath)
            two = _Written(tpath.name, write_times(tpath, times, durable=True))
        for w in (one, two):
            if w is not None:
                st = os.stat(tmp / w.name)
                w.stamp, w.nbytes = stamp_text(st), st.st_size
        plan.files.append((one, two))


def _row(plan: _Plan) -> FeatureRow:
    """The ``features`` row a plan commits (its files in ``data/``)."""
    sf = plan.sf
    if plan.full is not None:
        one, two = plan.files[0]
        ws = [w for w in (one, two) if w is not None]
        return (
            sf.feature,
            f"{DATA_DIR}/{one.name}",
            None if two is None else f"{DATA_DIR}/{two.name}",
            sf.meta,
            sf.encoding,
            plan.frames,
            sf.channels,
            sf.width,
            sum(w.nbytes for w in ws),
            ",".join(w.stamp for w in ws),
            ",".join(w.checksum for w in ws),
            None,
        )
    new = []
    for (first, removed, data, _), (one, two) in zip(plan.new, plan.files, strict=True):
        ws = [w for w in (one, two) if w is not None]
        new.append(
            SplicePart(
                first,
                removed,
                len(data),
                f"{DATA_DIR}/{one.name}",
                None if two is None else f"{DATA_DIR}/{two.name}",
                sum(w.nbytes for w in ws),
                ",".join(w.stamp for w in ws),
                ",".join(w.checksum for w in ws),
            )
        )
    parts = sorted([*plan.kept, *new], key=lambda p: (p.first, p.stop))
    return _same_row(sf, plan.frames, sf.base_nbytes + sum(p.nbytes for p in parts), parts)


def _same_row(
    sf: StoredFeature, frames: int, nbytes: int, parts: Sequence[SplicePart]
) -> FeatureRow:
    return (
        sf.feature,
        sf.path,
        sf.times_path,
        sf.meta,
        sf.encoding,
        frames,
        sf.channels,
        sf.width,
        nbytes,
        sf.stamp,
        sf.checksum,
        # "[]" for no parts: the row shares its files with the previous version all the
        # same, and a non-NULL column is what tells deletion to look (recovery.any_spliced)
        splices_to_json(parts) or "[]",
    )


def commit_splices(
    db: IndexConnection,
    root: Path,
    key: EntryKey,
    current: StoredEntry | None,
    fingerprint: str,
    version: int,
    base_commit_id: str,
    splices: Mapping[str, Sequence[FrameSplice]],
    provenance: str,
) -> StoredEntry:
    """See :meth:`FeatureStore.commit_splices`; ``current``: the key's entry as a verified
    listing gives it (problems set), ``fingerprint``: canonical JSON."""
    if current is None:
        raise StaleBase(f"entry {key}: gone since the splices were planned; recompute it whole")
    if current.commit_id != base_commit_id:
        raise StaleBase(
            f"entry {key}: recomputed since the splices were planned; recompute it whole"
        )
    if set(splices) != set(current.features):
        raise StaleBase(
            f"entry {key}: holds features {sorted(current.features)}, the splices are for "
            f"{sorted(splices)}; recompute it whole"
        )
    for name, problem in current.problems:
        raise StaleBase(f"entry {key} feature {name!r}: {problem}; recompute it whole")
    for name, sf in current.features.items():
        check_input(sf, splices[name], f"entry {key} feature {name!r}")
    written: list[Path] = []
    try:
        rows = _plan_and_write(root, key, current, splices, written)
    except BaseException:
        unlink_all(written)
        raise
    _step("written")
    return _commit(db, root, key, fingerprint, version, base_commit_id, rows, written, provenance)


def _plan_and_write(
    root: Path,
    key: EntryKey,
    current: StoredEntry,
    splices: Mapping[str, Sequence[FrameSplice]],
    written: list[Path],
) -> list[FeatureRow]:
    rows: list[FeatureRow] = []
    for name, sf in current.features.items():
        what = f"{key} feature {name!r}"
        reader = Reader(root, sf, what, lambda: "missing")
        try:
            plan = plan_feature(reader, sf, splices[name])
        except StoreError as exc:  # its files went since they were listed sound
            raise StaleBase(f"{exc}; recompute it whole") from None
        if plan is None:
            rows.append(_same_row(sf, sf.frames, sf.nbytes, sf.splices))
            continue
        try:
            _write_plan(root, plan, written)
        except OSError as exc:
            where = written[-1] if written else root / TMP_DIR
            raise StoreError(f"{where}: cannot write spliced frames: {os_cause(exc)}") from None
        rows.append(_row(plan))
    return rows


def _commit(
    db: IndexConnection,
    root: Path,
    key: EntryKey,
    fingerprint: str,
    version: int,
    base_commit_id: str,
    rows: Sequence[FeatureRow],
    written: list[Path],
    provenance: str,
) -> StoredEntry:
    """Rename the files into ``data/``, then one durable transaction (see the module)."""
    data = root / DATA_DIR
    moved: list[Path] = []
    try:
        for path in written:
            os.replace(path, data / path.name)
            moved.append(data / path.name)
        if written:
            fsync_dir(data)
    except OSError as exc:
        unlink_all([*moved, *written])
        raise StoreError(f"{data}: cannot commit spliced frames: {os_cause(exc)}") from None
    _step("renamed")
    now = time.time()
    try:
        with db.write(f"cannot commit splices of entry {key}", durable=True) as c:
            _check_base(c, key, base_commit_id)
            seq = db.bump(c, "entries")
            entry, garbage = _replace_in(
                c, key, fingerprint, version, rows, provenance, seq, now, {}
            )
            _step("commit")
    except BaseException:
        # an error after COMMIT (an interrupt, say) leaves the files referenced: they stay
        if moved and not references(db, f"{DATA_DIR}/{moved[0].name}"):
            unlink_all(moved)
        raise
    assert entry is not None  # rows is never empty: the entry had features
    delete_garbage(db, root, garbage)
    return entry


def _check_base(c: sqlite3.Connection, key: EntryKey, base_commit_id: str) -> None:
    found = c.execute(
        "SELECT commit_id FROM entries WHERE source_id = ? AND calculator_id = ? "
        "AND profile = ? AND params = ?",
        (key.source_id, key.calculator_id, key.profile, key.params),
    ).fetchone()
    if found is None or found[0] != base_commit_id:
        what = "gone" if found is None else "recomputed"
        raise StaleBase(f"entry {key}: {what} while its splices were written; recompute it whole")
