"""Staged passes: array files written by another machine, committed here by the index's owner.

A pass run on a cluster worker (:mod:`diagnostics_app.core.cluster`) must not open the index:
SQLite is never written over a network file system. The worker writes the pass's files into
the store's ``tmp/`` (the staging area the client shares with it) through a
:class:`StagingSink` and hands back a :class:`StagedPass`, a small manifest (names, checksums,
shapes, metas); the client alone checks the files against it and commits them
(:func:`commit_staged`), exactly as a :class:`~.writing.PassWriter` would have.

File names and crash recovery
    Every staged file is named with the *client's* owner tag (``<random>.<pid>-<token>...``,
    see :mod:`.owners`), not the worker's: the client registered as a writer before the pass
    was handed out and holds its lease while the pass is queued or running, so a sweep
    anywhere keeps the files while the client lives, and the existing sweep of ``tmp/`` (and of
    ``data/`` after a dead writer) deletes them once it died. Finished files get names derived
    from the pass's stage id, calculator and feature (:func:`staged_name`), so the client can
    delete them after a failed or cancelled pass without listing the folder; files being
    written end in ``.<stage id>.part`` and are renamed only when complete (fsynced), so a
    name from the manifest always names a whole file, whatever happened to the worker.

Same bytes as local analysis
    The sink streams float32 through the same :class:`~.arrays.ArrayWriter`, transcodes u16db
    features with the same :func:`~.arrays.transcode_u16` and writes times with the same
    :func:`~.arrays.write_times` as the pass writer, so a staged feature's files are
    byte-equal to a locally written one's (``tests/core/test_cluster.py`` compares them).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.hashing import checksum_like, unknown_checksum
from diagnostics_app.core.store.arrays import (
    F32,
    TMP_DIR,
    U16,
    OpenFeatures,
    StagedFeature,
    expected_size,
    finish_feature,
    read_npy_header,
    unlink,
    unlink_all,
)
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.index import commit_files
from diagnostics_app.core.store.provenance import current_provenance, provenance_text
from diagnostics_app.core.store.records import EntryKey, StoredEntry

if TYPE_CHECKING:
    from diagnostics_app.core.engine import FeatureSink

PART: Final = ".part"  # files being written: never named by a manifest


@dataclass(frozen=True)
class StagingArea:
    """Where a pass's files are staged and whose name they carry: the store's ``tmp/`` folder
    (as the client sees it; workers must see it at the same path) and the client's owner tag."""

    folder: str
    owner_tag: str  # "<pid>-<8 hex>" of the client (owners)


def staged_name(area: StagingArea, stage_id: str, calculator: str, feature: str, kind: str) -> str:
    """The name of a finished staged file (``kind``: ``npy`` or ``times.npy``): derived, so
    that the client can delete the files of a pass it never got a manifest for."""
    digest = hashlib.blake2b(
        f"{stage_id}\0{calculator}\0{feature}\0{kind}".encode(), digest_size=16
    ).hexdigest()
    return f"{digest}.{area.owner_tag}.{kind}"


@dataclass(frozen=True)
class StagedFile:
    name: str  # in the staging folder
    checksum: str  # "x3:..." of the values after the .npy header (core.hashing)
    nbytes: int


@dataclass(frozen=True)
class StagedOutput:
    """One feature of a staged entry: its data file (and times file), layout and meta."""

    feature: str
    meta: OutputMeta
    encoding: str  # "float32" | "u16db"
    frames: int
    data: StagedFile
    times: StagedFile | None


@dataclass(frozen=True)
class StagedPass:
    """The manifest a worker returns: per calculator, the features it staged."""

    stage_id: str
    entries: Mapping[str, tuple[StagedOutput, ...]]
    # what computed the data: the worker's provenance record, not the committing client's
    # (their numpy, scipy or libsndfile may differ: that is what the record is for)
    provenance: Mapping[str, Any] | None = None


class StagingSink:
    """The engine's ``FeatureSink`` on a worker: each calculator's features are finished and
    renamed into the staging area at ``close`` (nothing is committed: see :class:`StagedPass`)."""

    def __init__(self, area: StagingArea, stage_id: str) -> None:
        self._area = area
        self._folder = Path(area.folder)
        self._stage_id = stage_id
        self._files = OpenFeatures(self._part, "stage")  # float32, as the pass writer
        self.entries: dict[str, tuple[StagedOutput, ...]] = {}

    def _part(self) -> Path:
        return self._folder / f"{uuid.uuid4().hex}.{self._area.owner_tag}.{self._stage_id}{PART}"

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        self._files.write(calculator_id, feature, frames)

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        self._files.discard(calculator_id, keep=metas)  # written but not declared
        self.entries[calculator_id] = tuple(
            self._finish(calculator_id, feature, meta, times.get(feature))
            for feature, meta in metas.items()
        )

    def _finish(
        self, calculator: str, feature: str, meta: OutputMeta, times: np.ndarray | None
    ) -> StagedOutput:
        arr = self._files.take(calculator, feature, meta)
        item = finish_feature(
            arr, calculator, feature, meta, times, lambda _: self._part(), "stage"
        )
        try:  # the pass writer's files, under their staged names
            data = self._publish(item.paths[0], item.checksums[0], calculator, feature, "npy")
            staged_times = None
            if len(item.paths) > 1:
                staged_times = self._publish(
                    item.paths[1], item.checksums[1], calculator, feature, "times.npy"
                )
        except OSError as exc:
            unlink_all(item.paths)
            raise StoreError(f"{arr.path}: cannot stage feature data: {os_cause(exc)}") from None
        return StagedOutput(feature, meta, item.encoding, item.frames, data, staged_times)

    def _publish(
        self, part: Path, checksum: str, calculator: str, feature: str, kind: str
    ) -> StagedFile:
        """Rename a finished (fsynced) part to its staged name: a manifest's names are whole."""
        name = staged_name(self._area, self._stage_id, calculator, feature, kind)
        os.replace(part, self._folder / name)
        return StagedFile(name, checksum, (self._folder / name).stat().st_size)

    def abort(self) -> None:
        self._files.discard_all()

    def manifest(self) -> StagedPass:
        return StagedPass(self._stage_id, dict(self.entries), current_provenance())


def staging_area(root: Path, owner_tag: str) -> StagingArea:
    return StagingArea(str(root / TMP_DIR), owner_tag)


def discard_staged(area: StagingArea, stage_id: str, wanted: Mapping[str, Sequence[str]]) -> int:
    """Delete what a pass staged and will never be committed (failed, cancelled, refused):
    its finished files (by their derived names) and its parts. Returns the number deleted."""
    folder = Path(area.folder)
    removed = 0
    for calculator, features in wanted.items():
        for feature in features:
            for kind in ("npy", "times.npy"):
                removed += unlink(folder / staged_name(area, stage_id, calculator, feature, kind))
    suffix = f".{area.owner_tag}.{stage_id}{PART}"
    try:
        with os.scandir(folder) as listing:
            parts = [e.path for e in listing if e.name.endswith(suffix)]
    except OSError:
        return removed  # the sweep deletes them once the client is gone
    return removed + sum(unlink(Path(p)) for p in parts)


def commit_staged(
    db: IndexConnection,
    root: Path,
    area: StagingArea,
    staged: StagedPass,
    keys: Mapping[str, EntryKey],
    fingerprints: Mapping[str, str],
    versions: Mapping[str, int],
) -> list[StoredEntry]:
    """Check every staged file against the manifest (present, size, ``.npy`` header), then
    commit each calculator's entry as :meth:`~.writing.PassWriter.close` does (files renamed
    into ``data/``, one durable transaction per entry). Nothing is committed when a file
    does not match (a StoreError naming it)."""
    folder = Path(area.folder)
    ready: list[tuple[str, list[StagedFeature]]] = []
    for calculator, outputs in staged.entries.items():
        if calculator not in keys:
            raise StoreError(f"staged pass {staged.stage_id}: unexpected calculator {calculator!r}")
        items = []
        for out in outputs:
            files = [out.data] if out.times is None else [out.data, out.times]
            paths = [folder / f.name for f in files]
            _check(paths[0], U16 if out.encoding == "u16db" else F32, out, files[0])
            if out.times is not None:
                _check(paths[1], np.dtype("<f8"), out, out.times, times=True)
            item = StagedFeature(
                out.feature, out.meta, out.encoding, out.frames, paths, [f.checksum for f in files]
            )
            item.measure()
            items.append(item)
        ready.append((calculator, items))
    committed: list[StoredEntry] = []
    made_by = None if staged.provenance is None else provenance_text(staged.provenance)
    for calculator, items in ready:
        commit_files(
            db,
            root,
            keys[calculator],
            fingerprints[calculator],
            int(versions.get(calculator, 0)),
            items,
            committed,
            made_by,
        )
    return committed


def _check(
    path: Path, dtype: np.dtype, out: StagedOutput, file: StagedFile, times: bool = False
) -> None:
    """The staged file is there, as large as the manifest says, with the header it implies,
    and its checksum is one this program can verify later (a worker of another version may
    have made it: an older one's ``b2:`` is fine, an unknown algorithm is refused)."""
    if checksum_like(file.checksum) is None:
        raise StoreError(f"{path}: staged file: {unknown_checksum(file.checksum)}")
    shape: tuple[int, ...] = (
        (out.frames,) if times else (out.frames, out.meta.channels, out.meta.width)
    )
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            got_dtype, got_shape, offset = read_npy_header(f)
    except FileNotFoundError:
        raise StoreError(
            f"{path}: staged file missing (do the workers write to this store folder at the "
            "same path?)"
        ) from None
    except (OSError, ValueError, EOFError) as exc:
        raise StoreError(f"{path}: unreadable staged file: {exc}") from None
    if got_dtype != dtype or got_shape != shape or size != file.nbytes:
        raise StoreError(f"{path}: staged file does not match its manifest")
    if size != expected_size(offset, dtype, shape):
        raise StoreError(f"{path}: staged file is truncated")


if TYPE_CHECKING:  # the protocol it implements, checked by mypy

    def _is_sink(sink: StagingSink) -> FeatureSink:
        return sink
