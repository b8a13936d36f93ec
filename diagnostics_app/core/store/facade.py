"""``FeatureStore``: the one object through which the rest of the core uses a cache folder.

It composes the store's modules over one :class:`~.connection.IndexConnection` and holds no
SQL and no file format of its own: each method says which part does the work (entries in
:mod:`.index`, files in :mod:`.arrays` and :mod:`.writing`, crash recovery in
:mod:`.recovery`, the trash, jobs and digests in their modules). What it does own is the life
of a store instance: opening (schema, sweep, reaping, trash expiry), the writer registration
of this process, the pass writers it handed out, and closing all of that in order.
"""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.splice import FrameSplice
from diagnostics_app.core.store import (
    digests,
    index,
    lease,
    marks,
    paths,
    previous,
    recovery,
    schema,
    splicing,
)
from diagnostics_app.core.store import jobs as job_table
from diagnostics_app.core.store import trash as trash_table
from diagnostics_app.core.store.arrays import DATA_DIR, TMP_DIR
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import (
    DEFAULT_BUSY_TIMEOUT,
    INDEX_NAME,
    IndexConnection,
    connect,
)
from diagnostics_app.core.store.jobs import UNSET, Unset
from diagnostics_app.core.store.owners import process_start_token, tag_of
from diagnostics_app.core.store.provenance import provenance_text
from diagnostics_app.core.store.records import (
    EntryImport,
    EntryKey,
    JobRecord,
    LoadedFeature,
    PreviousVersion,
    StoredEntry,
    StoreVersion,
    TrashItem,
    canonical_params,
)
from diagnostics_app.core.store.spliced import load_any, load_any_times
from diagnostics_app.core.store.staged import (
    StagedPass,
    StagingArea,
    commit_staged,
    discard_staged,
    staging_area,
)
from diagnostics_app.core.store.trash import TRASH_MAX_AGE
from diagnostics_app.core.store.verify import Verifier
from diagnostics_app.core.store.writing import PassWriter, stage_import

if TYPE_CHECKING:
    from diagnostics_app.core.audio import BlockCache, DigestCache, FileStamp
    from diagnostics_app.core.ranges import BlockDigests


class FeatureStore:
    """A cache folder: see :mod:`diagnostics_app.core.store`. Thread-safe (one connection
    behind a lock); any number of processes may open the same folder at once."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        """Use :meth:`open`."""
        self.root = root
        self.index_path = root / INDEX_NAME
        self._db = IndexConnection(self.index_path, conn)
        self._index = index.EntryIndex(self._db)
        self._verifier = Verifier(self._db, root)
        # entries() also hashes every file and compares it with its recorded checksum
        # (``check --verify``); off, it checks existence, size and header (see .verify)
        self.verify_content = False
        self._registration: tuple[int, str] | None = None  # (pid, token) in the writers table
        self._writers: weakref.WeakSet[PassWriter] = weakref.WeakSet()
        # this process's lease: held by whoever has active jobs (the job runner), so that
        # processes in another host or PID namespace see them alive (see .lease)
        self.lease = lease.Heartbeat(lambda now: lease.beat(self._db, now))

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
        left, fails the jobs of dead processes and purges trash older than ``trash_max_age``.
        A system folder, or a folder holding other things and no store, is refused
        (:func:`~.paths.check_cache_dir`)."""
        root = Path(cache_dir)
        paths.check_cache_dir(root)
        try:
            for folder in (root, root / DATA_DIR, root / TMP_DIR):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{root}: cannot create the feature store folder: {os_cause(exc)}"
            ) from None
        paths.check_own_folders(root)
        _refuse_emptied_index(root)
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
        self.lease.close()  # outside the lock: its last beat may be waiting for it
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
        self.lease.hold()  # its files are live until the commit, whoever sweeps meanwhile
        try:
            staged, written = stage_import(items, self.root / DATA_DIR, durable)
            return index.commit_import(self._db, self.root, staged, written, durable)
        finally:
            self.lease.release()

    def commit_splices(
        self,
        key: EntryKey,
        fingerprint: Mapping[str, Any],
        version: int,
        base_commit_id: str,
        splices: Mapping[str, Sequence[FrameSplice]],
        provenance: str | None = None,
    ) -> StoredEntry:
        """Replace some frames of ``key``'s entry, committed as ``base_commit_id``, in one
        durable transaction, at a cost proportional to the frames replaced (see
        :mod:`.splicing`). ``splices``: per feature of the entry (every one; an empty sequence
        leaves it unchanged), in the frame indices of its current data, float32 values (stored
        in the feature's encoding, u16db over its own range). ``fingerprint`` and ``version``
        are the entry's new ones; ``provenance`` the text of what computed the frames (None:
        this process). The replaced data is kept as the key's previous version, as by a full
        commit. Raises :class:`~.splicing.StaleBase` when the entry changed since (gone,
        recomputed, other features, a feature with a ``problem``), ValueError for malformed
        splices, StoreError on I/O failure; on any failure nothing changed."""
        self._register()
        fp = canonical_json(dict(fingerprint))
        current = self.get(key)
        if current is not None:  # its files checked as a listing checks them (problems)
            current = self._verifier.listing([current], False)[0]
        self.lease.hold()  # its files are live until the commit, whoever sweeps meanwhile
        try:
            return splicing.commit_splices(
                self._db,
                self.root,
                key,
                current,
                fp,
                version,
                base_commit_id,
                splices,
                provenance or provenance_text(),
            )
        finally:
            self.lease.release()

    # -- staged passes (written by cluster workers, committed here: see .staged) -------------

    def staging_area(self) -> StagingArea:
        """Where workers stage a pass for this process to commit: registers this process as a
        writer first (the staged files carry its owner tag, see :mod:`.staged`)."""
        self._register()
        pid, token = tag_of(os.getpid(), process_start_token(os.getpid()))
        # absolute: workers run elsewhere, in other working folders
        return staging_area(Path(os.path.abspath(self.root)), f"{pid}-{token}")

    def commit_staged(
        self,
        area: StagingArea,
        manifest: StagedPass,
        source_id: str,
        profile: str,
        params: str | Mapping[str, Any] | None,
        fingerprints: Mapping[str, Mapping[str, Any]],
        versions: Mapping[str, int],
    ) -> list[StoredEntry]:
        """Commit a staged pass's entries as a pass writer would (see :func:`.staged.commit_staged`)."""
        key_params = canonical_params(params)
        keys = {c: EntryKey(source_id, c, profile, key_params) for c in manifest.entries}
        fps = {calc: canonical_json(dict(fp)) for calc, fp in fingerprints.items()}
        return commit_staged(self._db, self.root, area, manifest, keys, fps, versions)

    def discard_staged(
        self, area: StagingArea, stage_id: str, wanted: Mapping[str, Sequence[str]]
    ) -> int:
        """Delete the files of a staged pass that will not be committed."""
        return discard_staged(area, stage_id, wanted)

    def sweep(self, full: bool = False, *, now: float | None = None) -> int:
        """Delete what crashed processes left: listed garbage, temporary files of dead
        writers and, when a registered writer died (or ``full``), every file in ``data/`` that
        no row references and whose writer is dead. A writer elsewhere (another host or PID
        namespace) is dead when its lease expired at ``now`` (default: the clock). Returns the
        number of files deleted."""
        return recovery.sweep(self._db, self.root, full, time.time() if now is None else now)

    # -- reading ------------------------------------------------------------------------------

    def entries(self, verify: bool = True) -> list[StoredEntry]:
        """Every entry with its features, in entry id order: one joined query. The result is
        kept: while the ``entries`` counter is unchanged it is returned again, and after a
        change only the entries whose ``seq`` is newer are read again.

        With ``verify`` (the listing a diagnosis uses) each feature's files are checked
        (:mod:`.verify`: an ``lstat`` per file while unchanged; the content too with
        :attr:`verify_content`) and a feature that fails has its ``problem`` set; the sound
        entries are the kept objects."""
        listed = self._index.entries()
        if verify:
            listed = self._verifier.listing(listed, self.verify_content)
        found = marks.current(self._db)  # almost always none: one query on an empty table
        return marks.apply(listed, found) if found else listed

    def entries_for_source(self, source_id: str) -> list[StoredEntry]:
        return self._index.for_source(source_id)

    def get(self, key: EntryKey) -> StoredEntry | None:
        found = self._index.get(key)
        if found is None:
            return None
        return marks.apply([found], marks.current(self._db))[0]

    def path_of(self, relative: str) -> Path:
        """The file an index path names; StoreError if the store may not follow it."""
        if not paths.index_path_ok(relative):
            raise StoreError(f"{self.root}: {paths.refusal(relative)}")
        return self.root / relative

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per problem reported so far that was not an error (a refused path in the
        index, features whose content could not be verified), each once."""
        return tuple(self._db.warnings)

    def load(
        self,
        entry: StoredEntry,
        feature: str,
        mmap: bool = True,
        frames: slice | None = None,
    ) -> LoadedFeature:
        """A feature's values, decoded to float32 ``(frames, channels, width)``, and its frame
        times. With ``mmap`` a float32 feature is a read-only memory map (no copy); ``frames``
        decodes only a range of frames (e.g. the visible part of a long spectrogram). A
        spliced feature reads as ``apply_splices(base, parts)`` (:mod:`.spliced`: a range
        composes only the parts it overlaps; a whole read is a new array, not a map)."""
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
        return load_any(self.root, stored, what, mmap, frames, why_missing)

    def load_times(self, entry: StoredEntry, feature: str) -> np.ndarray:
        """A feature's frame times alone (float64; a memory map for explicit times): what a
        comparison on a common time grid needs without decoding the values."""
        stored = entry.features.get(feature)
        if stored is None:
            raise StoreError(f"entry {entry.key}: has no feature {feature!r}")
        what = f"{entry.key} feature {stored.feature!r}"
        return load_any_times(self.root, stored, what, lambda: "missing")

    def total_bytes(self) -> int:
        """Bytes of the array files of every listed entry and of every previous version kept
        (the cache's size; trash excluded)."""
        return index.total_bytes(self._db)

    # -- previous versions (see .previous) ----------------------------------------------------

    def previous(self, key: EntryKey, feature: str) -> PreviousVersion | None:
        """The data (key, feature) had before its entry was last replaced, if still kept."""
        return previous.get(self._db, key, feature)

    def previous_versions(self) -> list[PreviousVersion]:
        """Every previous version kept, the oldest replaced first (eviction's order)."""
        return previous.listing(self._db)

    def previous_bytes(self) -> int:
        return previous.total_bytes(self._db)

    def drop_previous(self, items: Sequence[tuple[EntryKey, str]]) -> int:
        """Delete the previous versions of ``items`` (key, feature); the bytes freed."""
        return previous.drop(self._db, self.root, items)

    def load_previous(
        self, version: PreviousVersion, mmap: bool = True, frames: slice | None = None
    ) -> LoadedFeature:
        """A previous version's values and frame times, as :meth:`load` reads current data."""
        return load_any(
            self.root,
            version.feature,
            self._previous_what(version),
            mmap,
            frames,
            lambda: "the previous version was dropped since it was listed (reload it)",
        )

    def load_previous_times(self, version: PreviousVersion) -> np.ndarray:
        return load_any_times(
            self.root, version.feature, self._previous_what(version), lambda: "missing"
        )

    @staticmethod
    def _previous_what(version: PreviousVersion) -> str:
        return f"{version.key} feature {version.feature.feature!r} (previous version)"

    def set_regenerated(self, key: EntryKey, feature: str, commit_id: str, verdict: str) -> bool:
        """Record how the data committed as ``commit_id`` compares with the version it
        replaced (a :mod:`~diagnostics_app.core.compare` verdict); False if replaced since."""
        return previous.set_regenerated(self._db, key, feature, commit_id, verdict)

    def trash_bytes(self) -> int:
        return trash_table.trash_bytes(self._db)

    def version(self) -> StoreVersion:
        """Change counters of entries and jobs; cheap enough to poll several times a second
        (``PRAGMA data_version`` tells whether anyone else committed since the last call)."""
        return self._db.version()

    # -- environment marks (verify --repair) ---------------------------------------------------

    def mark_environment(self, items: Mapping[EntryKey, tuple[str, Mapping[str, Any]]]) -> int:
        """Mark entries as computed differently by this environment: ``{key: (commit_id,
        detail)}``, each only if the entry still holds that commit (see :mod:`.marks`).
        Returns the number marked."""
        return marks.mark(self._db, items)

    # -- prune, restore, purge ----------------------------------------------------------------

    def prune(self, items: Sequence[tuple[EntryKey, str]]) -> str:
        """Move the given features to the trash (one transaction); an entry left without
        features is removed. Items that do not exist are ignored. Returns the prune id."""
        return trash_table.prune(self._db, items)

    def restore(self, prune_id: str) -> list[tuple[EntryKey, str]]:
        """Undo a prune: its features come back with the same entry id, fingerprint, version
        and timestamps. A feature whose entry was recomputed after the prune stays in the
        trash (the newer data wins). Returns what was restored."""
        return trash_table.restore(self._db, prune_id)

    def purge(self, prune_id: str | None = None, *, older_than: float | None = None) -> int:
        """Delete trashed features for real: of one prune, or all (``None``), optionally only
        those pruned more than ``older_than`` seconds ago. Returns the number purged."""
        return trash_table.purge(self._db, self.root, prune_id, older_than)

    def trash(self, prune_id: str | None = None) -> list[TrashItem]:
        return trash_table.listing(self._db, prune_id)

    # -- digests (the DigestCache protocol of core.audio) --------------------------------------

    def get_digest(self, path: str, stamp: FileStamp) -> str | None:
        return digests.get_digest(self._db, path, stamp)

    def put_digest(self, path: str, stamp: FileStamp, digest: str) -> None:
        digests.put_digest(self._db, path, stamp, digest)

    # -- block digests (the BlockCache protocol of core.audio), by content digest ------------

    def get_blocks(self, digest: str) -> BlockDigests | None:
        return digests.get_blocks(self._db, digest)

    def put_blocks(self, digest: str, blocks: BlockDigests) -> None:
        digests.put_blocks(self._db, digest, blocks)

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(self, record: JobRecord) -> None:
        """Insert (or overwrite) a job record."""
        self.add_jobs((record,))

    def add_jobs(self, records: Sequence[JobRecord]) -> None:
        """Insert (or overwrite) job records, all in one transaction: all are written or, when
        the store refuses (a full disk, a locked index), none. Queueing 20,000 passes is then
        one commit, not 20,000."""
        job_table.add(self._db, records, time.time())

    def update_job(
        self,
        job_id: str,
        *,
        state: str | Unset = UNSET,
        progress: float | Unset | None = UNSET,
        label: str | Unset = UNSET,
        message: str | Unset | None = UNSET,
    ) -> bool:
        """Change some fields of a job (and its ``updated`` time); False if there is no such
        job. One small transaction: fine at 10 calls per second."""
        return job_table.update(self._db, (job_id,), state, progress, label, message) > 0

    def update_jobs(
        self,
        job_ids: Sequence[str],
        *,
        state: str | Unset = UNSET,
        progress: float | Unset | None = UNSET,
        label: str | Unset = UNSET,
        message: str | Unset | None = UNSET,
    ) -> int:
        """:meth:`update_job` for many jobs (cancelling a queue of 20,000 passes), in one
        transaction; the number of jobs changed."""
        return job_table.update(self._db, job_ids, state, progress, label, message)

    def jobs(self, active_only: bool = False) -> list[JobRecord]:
        """Job records of every process, oldest first."""
        return job_table.listing(self._db, active_only)

    def job(self, job_id: str) -> JobRecord | None:
        return job_table.get(self._db, job_id)

    def latest_jobs_by_key(self) -> dict[EntryKey, JobRecord]:
        """Per (source, calculator, profile, params): the most recently finished job."""
        return job_table.latest_by_key(self._db)

    def request_cancel(self, job_id: str) -> bool:
        """Ask whichever process runs ``job_id`` to cancel it (it checks at its next progress
        report, so within a block); False if there is no such active job."""
        return job_table.request_cancel(self._db, job_id)

    def cancel_requested(self, job_id: str) -> bool:
        return job_table.cancel_requested(self._db, job_id)

    def clear_cancel_request(self, job_id: str) -> None:
        job_table.clear_cancel_request(self._db, job_id)

    def reap_dead_jobs(self, *, now: float | None = None) -> list[str]:
        """Fail every queued or running job whose owner is gone: a process in this place
        (host, boot, PID namespace) that no longer runs (pid reuse detected by the start
        token), or one elsewhere whose lease expired at ``now`` (default: the clock; see
        :mod:`.lease`). Returns the ids of the jobs reaped."""
        return job_table.reap_dead(self._db, time.time() if now is None else now)

    def state_token(self) -> tuple[tuple[Any, ...], ...]:
        """Changes whenever an entry or a job record changes (see the connection's)."""
        return self._db.state_token()


def _refuse_emptied_index(root: Path) -> None:
    """A 0-byte index beside data files is a store whose index was lost (truncated, or an
    interrupted copy), not a new store: SQLite would take it as an empty database and every
    row would turn ``missing`` while the data files stay, unreachable by prune and trash."""
    index = root / INDEX_NAME
    try:
        if index.stat().st_size != 0:
            return
        with os.scandir(root / DATA_DIR) as entries:
            emptied = any(entries)
    except OSError:
        return
    if emptied:
        raise StoreError(
            f"{index}: cannot open the feature index: the file is empty but {root / DATA_DIR} "
            "holds data (the index is corrupt: delete the cache folder to start an empty cache)"
        )


if TYPE_CHECKING:  # the protocol it implements, checked by mypy

    def _is_digest_cache(store: FeatureStore) -> DigestCache:
        return store

    def _is_block_cache(store: FeatureStore) -> BlockCache:
        return store
