"""Writing entries: the engine's pass writer, and the bulk import that must end the same way.

Writing (:meth:`FeatureStore.pass_writer`, the engine's ``FeatureSink``)
    ``write`` streams frames to a temporary ``.npy`` per (calculator, feature) in ``tmp/``,
    memory staying flat whatever the length of the source, in the feature's stored encoding
    when ``expect`` told it before the first frame (the engine does, for every run that knows
    its outputs' layout at its start: all the built-ins), else as float32, transcoded at close. ``close(calculator)`` commits:
    every file is finished and fsynced, renamed into ``data/``, the directory fsynced, then
    ONE SQLite transaction replaces the entry (see :mod:`.index`). ``abort`` deletes the
    temporary files of calculators not closed, and so does closing the store. A writer serves
    one pass (one thread), as the engine uses it.

Bulk import (:meth:`FeatureStore.import_entries`)
    For tools and benchmarks that hold many finished entries at once: one transaction for all
    of them, files written straight into ``data/`` (fsynced only with ``durable=True``). Each
    entry ends exactly as a pass writer would have left it (same files, rows and fingerprint
    JSON; ``tests/core/test_store_bulk.py`` compares the two): both write through the same
    :class:`~.arrays.ArrayWriter` and check their input with the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.arrays import (
    F32,
    TMP_DIR,
    OpenFeatures,
    StagedFeature,
    check_layout,
    finish_feature,
    frame_times,
    fsync_dir,
    u16_range,
    unlink_all,
    write_array,
    write_times,
)
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.index import EntryRows, commit_files
from diagnostics_app.core.store.owners import new_name
from diagnostics_app.core.store.provenance import provenance_text
from diagnostics_app.core.store.records import (
    EntryImport,
    EntryKey,
    StoredEntry,
    canonical_params,
)

if TYPE_CHECKING:
    from diagnostics_app.core.engine import FeatureSink


class PassWriter:
    """The engine's ``FeatureSink`` for one pass over one (source, profile, params): one
    entry per calculator, committed by :meth:`close`."""

    def __init__(
        self,
        db: IndexConnection,
        root: Path,
        source_id: str,
        profile: str,
        params: str,
        fingerprints: Mapping[str, str],
        versions: Mapping[str, int],
    ) -> None:
        self._db = db
        self._root = root
        self.source_id = source_id
        self.profile = profile
        self.params = params
        self._fingerprints = dict(fingerprints)
        self._versions = dict(versions)
        self._ranges: dict[tuple[str, str], tuple[float, float]] = {}  # u16db, told by expect()
        # in the encoding expect() told, else float32 (transcoded at close if need be)
        self._files = OpenFeatures(
            lambda: self._tmp_path(".npy"), "write", lambda c, f: self._ranges.get((c, f))
        )
        self._closed: set[str] = set()
        self._aborted = False
        self.committed: list[StoredEntry] = []

    def key(self, calculator_id: str) -> EntryKey:
        return EntryKey(self.source_id, calculator_id, self.profile, self.params)

    def _check(self, calculator_id: str) -> None:
        if self._aborted:
            raise ValueError("this pass writer was aborted")
        if calculator_id not in self._fingerprints:
            raise ValueError(f"no fingerprint was given for calculator {calculator_id!r}")
        if calculator_id in self._closed:
            raise ValueError(f"calculator {calculator_id!r} was already committed")

    def expect(self, calculator_id: str, metas: Mapping[str, OutputMeta]) -> None:
        """The layout a calculator's outputs will have, told before its first frame: a u16db
        feature's frames are then encoded as they come (no float32 file transcoded at close).
        :meth:`close` checks that the final metas keep the range (else the pass fails)."""
        for feature, meta in metas.items():
            value_range = u16_range(meta)
            if value_range is not None and (calculator_id, feature) not in self._files.open:
                self._ranges[(calculator_id, feature)] = value_range

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        """Append frames ``(n, channels, width)`` of one feature."""
        self._check(calculator_id)
        self._files.write(calculator_id, feature, frames)

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        """Commit the calculator's entry: exactly the features in ``metas`` replace the old."""
        self._check(calculator_id)
        self._files.discard(calculator_id, keep=metas)  # written but not declared
        staged: list[StagedFeature] = []
        try:
            for feature, meta in metas.items():
                staged.append(self._stage(calculator_id, feature, meta, times.get(feature)))
            commit_files(
                self._db,
                self._root,
                self.key(calculator_id),
                self._fingerprints[calculator_id],
                int(self._versions.get(calculator_id, 0)),
                staged,
                self.committed,
            )
        except BaseException:
            for item in staged:
                unlink_all(item.paths)
            raise
        finally:
            self._files.discard(calculator_id)
        self._closed.add(calculator_id)

    def _tmp_path(self, suffix: str) -> Path:
        return self._root / TMP_DIR / new_name(suffix)

    def _stage(
        self, calculator_id: str, feature: str, meta: OutputMeta, times: np.ndarray | None
    ) -> StagedFeature:
        arr = self._files.take(calculator_id, feature, meta)
        item = finish_feature(arr, calculator_id, feature, meta, times, self._tmp_path, "write")
        try:
            item.measure()
        except OSError as exc:
            unlink_all(item.paths)
            raise StoreError(
                f"{item.paths[-1]}: cannot write feature data: {os_cause(exc)}"
            ) from None
        return item

    def abort(self) -> None:
        """Delete the temporary files of every calculator not yet committed."""
        self._aborted = True
        self._files.discard_all()

    @property
    def pending(self) -> tuple[str, ...]:
        """Calculators with frames written but not committed."""
        return tuple(sorted({c for c, _ in self._files.open}))

    def __enter__(self) -> PassWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()  # commits happened in close(); anything left is dropped


def stage_import(
    items: Iterable[EntryImport], data: Path, durable: bool
) -> tuple[list[EntryRows], list[Path]]:
    """Write the files of :meth:`FeatureStore.import_entries` into ``data/``: the rows to
    commit and every file written. Nothing is left behind on failure."""
    written: list[Path] = []
    staged: list[EntryRows] = []
    try:
        for item in items:
            key = EntryKey(
                item.key.source_id,
                item.key.calculator_id,
                item.key.profile,
                canonical_params(item.key.params),
            )
            rows = [
                _import_feature(key, feature, meta, item, data, written, durable).row()
                for feature, meta in item.metas.items()
            ]
            fingerprint = canonical_json(dict(item.fingerprint))
            staged.append(
                (key, fingerprint, int(item.version), rows, provenance_text(item.provenance))
            )
        if durable and written:
            fsync_dir(data)
    except BaseException as exc:
        unlink_all(written)
        if isinstance(exc, OSError):
            raise StoreError(f"{data}: cannot write feature data: {os_cause(exc)}") from None
        raise
    return staged, written


def _import_feature(
    key: EntryKey,
    feature: str,
    meta: OutputMeta,
    item: EntryImport,
    data: Path,
    written: list[Path],
    durable: bool,
) -> StagedFeature:
    """Check one feature as the pass writer would, then write it as the pass writer does."""
    what = f"{key.calculator_id}/{feature}"
    raw = item.arrays.get(feature)
    if raw is None:
        values = np.zeros((0, meta.channels, meta.width), F32)
    else:
        values = np.ascontiguousarray(raw, dtype=F32)  # the writer streams float32
        if values.ndim != 3:
            raise ValueError(f"{what}: frames must be (n, channels, width)")
        check_layout(what, values.shape[1], values.shape[2], meta)
    t = frame_times(item.times.get(feature), len(values), what)
    staged = StagedFeature(feature, meta, "float32", len(values), [data / new_name(".npy")], [])
    written.append(staged.paths[0])
    staged.encoding, checksum = write_array(
        staged.paths[0], values, u16_range(meta), durable=durable
    )
    staged.checksums.append(checksum)
    if t is not None:
        staged.paths.append(data / new_name(".times.npy"))
        written.append(staged.paths[1])
        staged.checksums.append(write_times(staged.paths[1], t, durable=durable))
    staged.measure()
    return staged


if TYPE_CHECKING:  # the protocol it implements, checked by mypy

    def _is_sink(writer: PassWriter) -> FeatureSink:
        return writer
