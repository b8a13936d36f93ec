"""The session: one open project with its registry, store, diagnostics, jobs and history.

This is the facade the CLI and the GUI both drive; it holds no rule of its own beyond wiring.
Data flows one way: project + store → :meth:`Session.diagnose` → views; user actions →
:meth:`Session.plan` → :class:`~core.jobs.JobRunner` → store.

What changed is published as typed values on :attr:`Session.events` (``core/events.py``):
the project replaced, the history moved, entries committed, a job updated, the store changed
by anyone (the watcher). Views subscribe; the Qt layer switches to the GUI thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from diagnostics_app.core import edits, files
from diagnostics_app.core._gc import FREEZE_SOURCES, freeze_long_lived, gc_paused
from diagnostics_app.core.audio import (
    AudioInfo,
    content_blocks,
    content_digest,
    read_info,
    stamp_of,
)
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics import Diagnoser, Diagnosis, Row, SourceStatus
from diagnostics_app.core.errors import AudioError, DiagnosticsError, ProjectError
from diagnostics_app.core.events import (
    EntriesCommitted,
    HistoryChanged,
    ProjectReplaced,
    SessionEvents,
)
from diagnostics_app.core.fingerprint import AudioFacts
from diagnostics_app.core.history import Command, History, ProjectEdit, PruneCommand
from diagnostics_app.core.jobs import PRIORITY_BATCH, Batch, JobRunner
from diagnostics_app.core.planner import PlannedJob, Selection, plan
from diagnostics_app.core.project import Project, Source, load_project, save_project
from diagnostics_app.core.ranges import BlockDigests
from diagnostics_app.core.stamp import FileStamp
from diagnostics_app.core.states import ACTIVE_JOB, eviction_rank, extraneous
from diagnostics_app.core.store import EntryKey, FeatureStore

_PATHS_KEPT = 200_000  # remembered audio paths (see Session._audio_path); then forgotten


def _resolved(path: Path, folders: dict[str, str]) -> str:
    """``path.resolve()``, its folder's real path taken from (or added to) ``folders``: a
    file that is itself a symbolic link is resolved whole."""
    if os.path.islink(path):
        return str(path.resolve())
    parent, name = os.path.split(path)
    real = folders.get(parent)
    if real is None:
        real = folders[parent] = os.path.realpath(parent)
    return os.path.join(real, name)


def _blocks_or_none(path: Path, digest: str, store: FeatureStore) -> BlockDigests | None:
    """The audio's block digests (core.ranges; decoded once per version of the file), or None
    when the data cannot be decoded: the header read, so the source's rows are judged as
    before, and the analysis will name the fault; only the changed ranges go unreported."""
    try:
        return content_blocks(path, digest, store)
    except AudioError:
        return None


class SaveConflict(ProjectError):
    """Saving would overwrite a project file another program changed since it was read or
    written here."""


@dataclass(frozen=True)
class ProjectFile:
    """The project file as a session last read or wrote it: its stamp (equal: unchanged, no
    read needed) and the digest of its bytes (a file touched, or rewritten with the same bytes,
    is not a change)."""

    stamp: FileStamp
    digest: str

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ProjectFile | None:
        """The file's state now, or None when it cannot be read (gone, not a regular file)."""
        try:
            st, data = files.read_regular_stat(path, files.MAX_PROJECT_BYTES)
        except (OSError, ValueError, DiagnosticsError):
            return None
        return cls(FileStamp.from_stat(st), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class _SourceCacheItem:
    stamp: FileStamp
    status: SourceStatus
    info: AudioInfo | None


class Session:
    def __init__(
        self,
        project: Project,
        registry: Registry | None = None,
        store: FeatureStore | None = None,
        disk: ProjectFile | None = None,
    ) -> None:
        """``disk``: the project file as read before ``project`` was loaded from it (by
        default it is read now)."""
        self._project = project
        # the project file as last read or written here: what an outside change is against
        self._disk = (
            disk if disk is not None or project.path is None else ProjectFile.read(project.path)
        )
        self.events = SessionEvents()
        self.registry = registry or Registry.default()
        self.store = store or FeatureStore.open(project.cache_path())
        self.history = History()
        self.diagnoser = Diagnoser(self.registry)
        # the diagnoser's memo is not thread-safe: one diagnose() at a time (the GUI runs it in
        # a worker thread; planning may run it on the calling thread)
        self._diagnose_lock = threading.Lock()
        self._sources: dict[str, _SourceCacheItem] = {}
        self._sources_lock = threading.Lock()
        self._paths: dict[tuple[Path, str], Path] = {}  # see _audio_path
        self._frozen_sources = 0  # sources of the project when the heap was last frozen
        if len(project.sources) >= FREEZE_SOURCES:  # loaded: freeze it (and, once it is
            freeze_long_lived()  # diagnosed, what the first diagnosis built: n >= 2 * 0)
        self.runner = JobRunner(
            lambda: self._project, self.registry, self.store, self.audio_facts, self.events
        )

    @classmethod
    def open(cls, path: str | os.PathLike[str], registry: Registry | None = None) -> Session:
        # read before loading: a change made in between shows as an outside change later
        disk = ProjectFile.read(path)
        return cls(load_project(path), registry, disk=disk)

    def close(self) -> None:
        try:
            self.runner.cancel_all()
        finally:  # the connection is closed even when the index can no longer be written
            self.store.close()
            # the runner's callbacks make a reference cycle with this session: without this,
            # 100,000 remembered rows would wait for the cyclic GC (in a CLI, a full collection
            # at exit: 1 s at that scale) instead of being freed now
            self.diagnoser.clear()
            with self._sources_lock:
                self._sources.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the project ------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self._project

    @property
    def dirty(self) -> bool:
        """The project has edits since it was last loaded or saved: the history is away from
        its clean index (undoing or redoing back to it is clean again)."""
        return not self.history.clean

    def replace_project(self, project: Project, cause: str = "edit") -> None:
        """Swap the project value (edits, history, a reload); views re-derive."""
        self._project = project
        self.events.project_replaced.emit(ProjectReplaced(project, cause))

    def reload(self, project: Project) -> None:
        """The project as read again from disk (changed by another program): the new clean
        state, and a new, empty history (the old steps describe a document that is gone)."""
        self.history = History()
        self.replace_project(project, "reload")
        self._history_changed()

    def edit(self, text: str, change: Callable[[Project], Project]) -> Project:
        """Apply an edit from :mod:`core.edits` as one undoable step."""
        before = self._project
        after = change(before)
        if after == before:
            return before
        self.history.push(ProjectEdit(text, before, after))
        self.replace_project(after)
        self._history_changed()
        return after

    def undo(self) -> str | None:
        return self._step(self.history.undo, "undo")

    def redo(self) -> str | None:
        return self._step(self.history.redo, "redo")

    def _step(self, move: Callable[[Session], Command | None], cause: str) -> str | None:
        cmd = move(self)
        if cmd is None:
            return None
        if isinstance(cmd, PruneCommand):
            self.events.entries_committed.emit(EntriesCommitted(cmd.keys, cause))
        self._history_changed()
        return cmd.text

    def reload_from_disk(self) -> bool:
        """Read the project file again (another program changed it), dropping unsaved edits;
        returns whether the project changed. ProjectError (one line) when it cannot be read:
        then nothing changes."""
        path = self._project.path
        if path is None:
            raise ProjectError("the project has no file to reload")
        disk = ProjectFile.read(path)
        fresh = replace(load_project(path), path=path)
        self._disk = disk
        if fresh == self._project and self.history.clean:
            return False  # rewritten, not changed (e.g. reformatted)
        self.reload(fresh)
        return True

    def outside_change(self) -> ProjectFile | None:
        """The project file as it is on disk now when another program changed it since it was
        last read or written here; None when unchanged, or when there is no file whose
        content could be lost (none yet, gone, unreadable)."""
        path = self._project.path
        if path is None:
            return None
        stamp = FileStamp.peek(path)
        known = self._disk
        if stamp is None or (known is not None and stamp == known.stamp):
            return None
        now = ProjectFile.read(path)
        if now is None:
            return None
        if known is not None and now.digest == known.digest:
            self._disk = now  # touched, or rewritten with the same bytes: not a change
            return None
        return now

    def save(self, path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> Path:
        """Write the project (to ``path``: save as). :class:`SaveConflict` instead of
        overwriting its own file when another program changed it since it was read or written
        here, unless ``overwrite`` (the user chose to)."""
        own = self._project.path
        target = Path(path).resolve() if path is not None else own
        if not overwrite and own is not None and target == own and self.outside_change():
            raise SaveConflict(
                f"{files.printable(own)}: changed on disk by another program since it was "
                "opened or saved here; reload it, overwrite it or save as another file"
            )
        self._project = save_project(self._project, path)
        assert self._project.path is not None
        self._disk = ProjectFile.read(self._project.path)
        self.history.set_clean()
        self.replace_project(self._project, "save")
        self._history_changed()
        return self._project.path

    def _history_changed(self) -> None:
        self.events.history_changed.emit(
            HistoryChanged(self.history.undo_text, self.history.redo_text, not self.dirty)
        )

    # -- audio facts ------------------------------------------------------------------------

    def source_status(self, source_id: str) -> SourceStatus:
        """Facts of a source's audio, re-read only when its file's stat stamp changed."""
        project = self._project
        try:
            src = project.source(source_id)
        except DiagnosticsError as exc:
            return SourceStatus(error=str(exc))
        return self._status_of(project, src, {})

    def source_statuses(self, project: Project) -> dict[str, SourceStatus]:
        """:meth:`source_status` of every source of ``project``, each folder resolved once."""
        folders: dict[str, str] = {}
        return {src.id: self._status_of(project, src, folders) for src in project.sources}

    def _audio_path(self, project: Project, src: Source) -> Path:
        """``project.audio_path(src)``, remembered by (folder, path as written): building
        paths was a third of a 20,000-source diagnosis, asked again at every re-derivation."""
        if project.path is None:  # relative to the working directory: not remembered
            return project.audio_path(src)
        key = (project.path, src.path)  # (one Path per project file: its hash is kept)
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) > _PATHS_KEPT:
                self._paths.clear()
            path = self._paths[key] = project.audio_path(src)
        return path

    def _status_of(self, project: Project, src: Source, folders: dict[str, str]) -> SourceStatus:
        """``folders``: real paths of folders already resolved (shared by a batch)."""
        path = self._audio_path(project, src)
        try:
            stamp = stamp_of(path)
        except AudioError as exc:
            return SourceStatus(error=f"source {src.id!r}: {exc}")
        key = str(path)
        with self._sources_lock:
            cached = self._sources.get(key)
        if cached is not None and cached.stamp == stamp:
            return cached.status
        info: AudioInfo | None = None
        try:
            info = read_info(path)
            resolved = _resolved(path, folders)
            digest = content_digest(path, self.store, resolved=resolved, stamp=stamp)
            status = SourceStatus(
                AudioFacts(digest, info.sample_rate, info.channels), duration=info.duration
            )
        except AudioError as exc:
            status = SourceStatus(error=f"source {src.id!r}: {exc}")
        with self._sources_lock:
            self._sources[key] = _SourceCacheItem(stamp, status, info)
        return status

    def source_info(self, source_id: str) -> AudioInfo | None:
        project = self._project
        src = project.source(source_id)  # (an unknown id raises, as it always did)
        self._status_of(project, src, {})
        with self._sources_lock:
            item = self._sources.get(str(self._audio_path(project, src)))
        return item.info if item else None

    def audio_facts(self, source_id: str) -> AudioFacts:
        """For the job runner: the facts, or an error whose message names the source, the
        file and the cause (the same one-liner the rows show)."""
        status = self.source_status(source_id)
        if status.facts is None:
            raise DiagnosticsError(status.error or f"source {source_id!r}: audio unavailable")
        # (the block digests of this audio version are remembered by the pass: pass_work)
        return status.facts

    # -- diagnostics, planning, jobs --------------------------------------------------------

    def diagnose(self) -> Diagnosis:
        """Rows of the current project against the store. Safe to call from any thread (calls
        are serialised); the project is read once, so a concurrent edit is either wholly seen
        or not at all."""
        with self._diagnose_lock:
            project = self._project
            self.store.reap_dead_jobs()
            # one pause for the facts and the rows: what they build is frozen at once for a
            # large project, not traversed by a young collection in between
            with gc_paused():
                statuses = self.source_statuses(project)
                diagnosis = self.diagnoser.diagnose(
                    project,
                    statuses,
                    self.store.entries(),
                    self.store.jobs(),
                    self.blocks_lookup(project, statuses),
                )
                self._freeze_if_grown(project)
            return diagnosis

    def _freeze_if_grown(self, project: Project) -> None:
        """Freeze the long-lived state of a large project (core._gc.freeze_long_lived) after
        its first diagnosis, then again only if the project doubles."""
        n = len(project.sources)
        if n >= FREEZE_SOURCES and n >= 2 * self._frozen_sources:
            self._frozen_sources = n
            freeze_long_lived()

    def blocks_lookup(
        self, project: Project, statuses: Mapping[str, SourceStatus]
    ) -> Callable[[str], BlockDigests | None]:
        """The block digests of an audio version, by content digest, as a diagnosis asks for
        them (see :meth:`_blocks_of`): what a from-scratch diagnosis must be handed to equal
        :meth:`diagnose`."""
        paths = {
            status.facts.digest: self._audio_path(project, project.source(src))
            for src, status in statuses.items()
            if status.facts is not None
        }
        return lambda digest: self._blocks_of(digest, paths)

    def _blocks_of(self, digest: str, paths: dict[str, Path]) -> BlockDigests | None:
        """The block digests of an audio version: stored ones, or, for a source's current
        version, digested now (asked only for a changed source whose cached entry's version
        has blocks: ``check`` decodes nothing for unchanged or never-analysed files)."""
        known = self.store.get_blocks(digest)
        if known is None and digest in paths:
            return _blocks_or_none(paths[digest], digest, self.store)
        return known

    def plan(
        self, selection: Selection | None = None, include_ok: bool = False
    ) -> list[PlannedJob]:
        return plan(self.diagnose(), selection, include_ok=include_ok)

    def enqueue(
        self, jobs: Sequence[PlannedJob], priority: int = PRIORITY_BATCH, origin: str = "cli"
    ) -> list[Batch]:
        return self.runner.enqueue(jobs, priority, origin)

    def prune(self, rows: Iterable[Row]) -> PruneCommand | None:
        """Move the given extraneous rows' data to the trash, as one undoable step."""
        items = tuple((r.key.entry_key, r.key.feature) for r in extraneous(rows))
        if not items:
            return None
        prune_id = self.store.prune(list(items))
        cmd = PruneCommand(f"Prune {len(items)} extraneous", items, prune_id)
        self.history.push(cmd)
        self.events.entries_committed.emit(EntriesCommitted(cmd.keys, "prune"))
        self._history_changed()
        return cmd

    def enforce_cache_limit(self, limit_bytes: int) -> int:
        """Delete cached data until the store holds at most ``limit_bytes``; returns the bytes
        freed. Previous versions go first (the oldest replaced first), then the rows' data:
        :data:`core.states.EVICT_FIRST`, then the least recently computed; never data an
        active job is about to replace. Not undoable: this is
        eviction, not a user's prune."""
        total = self.store.total_bytes()
        if limit_bytes < 0 or total <= limit_bytes:
            return 0
        # previous versions first, the oldest replaced first: they are the copies nobody's
        # rows show, kept only to compare with (core.store.previous)
        older: list[tuple[EntryKey, str]] = []
        freed = 0
        for version in self.store.previous_versions():
            if total - freed <= limit_bytes:
                break
            older.append((version.key, version.feature.feature))
            freed += version.nbytes
        if older:
            self.store.drop_previous(older)
            keys = frozenset(key for key, _ in older)
            self.events.entries_committed.emit(EntriesCommitted(keys, "evict"))
        if total - freed <= limit_bytes:
            return freed
        candidates = sorted(
            (
                (eviction_rank(r.state), r.updated or 0.0, r)
                for r in self.diagnose().rows
                if r.nbytes and r.state not in ACTIVE_JOB
            ),
            key=lambda item: (item[0], item[1]),
        )
        items: list[tuple[EntryKey, str]] = []
        for _, _, row in candidates:
            if total - freed <= limit_bytes:
                break
            items.append((row.key.entry_key, row.key.feature))
            freed += row.nbytes or 0
        if items:
            self.store.purge(self.store.prune(items))
            keys = frozenset(key for key, _ in items)
            self.events.entries_committed.emit(EntriesCommitted(keys, "evict"))
        return freed


__all__ = ["ProjectFile", "SaveConflict", "Session", "edits"]
