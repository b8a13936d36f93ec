"""The file watcher: the project file and the audio files, changed by other programs.

:class:`QFileSystemWatcher` s (shards of at most ``SHARD_PATHS`` paths) watch the project
file, the audio files and their folders.
After a quiet period (editors write in several steps) the session says whether the project
file changed on disk since it was last read or written here
(:meth:`~diagnostics_app.core.session.Session.outside_change`: stamp, then bytes). Without
unsaved edits the project is reloaded; with them, :attr:`FileWatcher.conflict` is emitted
once per outside version, and the window asks what to do (reload and lose the edits,
overwrite, save as, or decide later: Save asks again). In any case a re-derivation is asked
for, because ``diagnose()`` re-reads the audio files' stamps (changed audio → stale rows).

It is apart from the :class:`~diagnostics_app.qt.controller.Controller` because it is one
source of change notifications among several, with its own state (stamps, watched paths);
the controller connects its signals and hands it the paths each derivation found.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal, Slot

from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.project import Project
from diagnostics_app.core.session import ProjectFile, Session

QUIET_MS = 150  # editors write in several steps: wait for quiet
# Qt's watcher checks every path added or removed against the list of those it holds, so one
# watcher's cost grows with the square of its size (20,000 audio files: 1.4 s to add, 3 s to
# remove, on the GUI thread); shards of this size keep it linear (bench/library.py).
SHARD_PATHS = 2000
# Paths added per turn of the event loop: adding 20,000 at once held the GUI thread 0.6 s; the
# project file and its folder go first, so a project changed on disk is seen at once.
ADD_PER_TURN = 1000


def watched_paths(project: Project) -> list[str]:
    """The project file, the audio files and their folders (any thread: it only stats)."""
    paths: set[str] = set()
    if project.path is not None:
        paths.add(str(project.path))
        paths.add(str(project.path.parent))
    for src in project.sources:
        p = project.audio_path(src)
        if p.exists():
            paths.add(str(p))
        if p.parent.exists():
            paths.add(str(p.parent))
    return sorted(paths)


class FileWatcher(QObject):
    """Watches the files of ``session``'s project; reloads the project when it changed on
    disk."""

    changed = Signal()  # watched files changed: re-derive (after any reload)
    message = Signal(str, int)  # a status-bar message and its timeout (ms, 0 = sticky)
    conflict = Signal()  # the project file changed on disk and there are unsaved edits

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._announced: ProjectFile | None = None  # the outside version last asked about
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(QUIET_MS)
        self._timer.timeout.connect(self._check)
        self._shards: list[QFileSystemWatcher] = []  # see SHARD_PATHS
        self._adding: list[str] = []  # still to add, ADD_PER_TURN at a time
        self._add_timer = QTimer(self)
        self._add_timer.setSingleShot(True)
        self._add_timer.setInterval(0)
        self._add_timer.timeout.connect(self._add_some)
        self._want: set[str] = set()
        # (project, its watched paths): recomputed for a new project or after a file event
        self._cache: tuple[Project, tuple[str, ...]] | None = None

    def paths_for(self, project: Project) -> tuple[str, ...]:
        """:func:`watched_paths` of ``project``, kept until the project value changes or a
        file event comes (it stats every audio file: not for every derivation). Any thread."""
        cached = self._cache
        if cached is None or cached[0] is not project:
            cached = (project, tuple(watched_paths(project)))
            self._cache = cached
        return cached[1]

    def watch(self, want_paths: Iterable[str] | None = None) -> None:
        """Watch ``want_paths`` (by default the last ones handed over): only the difference
        with what the watcher holds is added or removed."""
        if want_paths is not None:
            self._want = set(want_paths)
        want = self._want
        held = [set(w.files()) | set(w.directories()) for w in self._shards]
        have = set().union(*held)
        for shard, paths in zip(self._shards, held, strict=True):
            if gone := sorted(paths - want):
                shard.removePaths(gone)
                paths.difference_update(gone)
        path = self._session.project.path
        first = {str(path), str(path.parent)} if path is not None else set()
        self._adding = sorted(want - have, key=lambda p: (p not in first, p))
        self._add_some()

    @Slot()
    def _add_some(self) -> None:
        if self._closed:
            self._adding.clear()
            return
        new = [p for p in self._adding[:ADD_PER_TURN] if p in self._want]
        del self._adding[:ADD_PER_TURN]
        for shard in self._shards:
            room = SHARD_PATHS - len(shard.files()) - len(shard.directories())
            if new and room > 0:
                shard.addPaths(new[:room])
                del new[:room]
        while new:
            shard = QFileSystemWatcher(self)
            shard.fileChanged.connect(self._on_event)
            shard.directoryChanged.connect(self._on_event)
            self._shards.append(shard)
            shard.addPaths(new[:SHARD_PATHS])
            del new[:SHARD_PATHS]
        if self._adding:
            self._add_timer.start()

    def stop(self) -> None:
        """No more checks (at shutdown, before the owner waits for its workers)."""
        self._closed = True
        self._timer.stop()
        self._add_timer.stop()

    def unwatch_all(self) -> None:
        self._adding.clear()
        for shard in self._shards:
            watched = shard.files() + shard.directories()
            if watched:
                shard.removePaths(watched)

    @Slot(str)
    def _on_event(self, path: str) -> None:
        self._cache = None  # a file came or went: the next derivation looks again
        if not self._closed:
            self._timer.start()

    @Slot()
    def _check(self) -> None:
        outside = self._session.outside_change()
        if outside is not None and outside != self._announced:
            self._announced = outside  # one question per outside version, not per event
            if self._session.dirty:
                self.conflict.emit()
            else:
                self.reload()
        self.watch()  # an atomic replace drops the watch on the old inode
        self.changed.emit()  # source stamps are re-read by diagnose(): changed audio → stale

    def take_outside_change(self) -> bool:
        """Whether the project file changed on disk, for a caller about to ask the user (at
        Save): the watcher then does not ask again about that same version."""
        outside = self._session.outside_change()
        if outside is not None:
            self._announced = outside
        return outside is not None

    def reload(self) -> bool:
        """Read the project file again, dropping unsaved edits; False (with a message) when it
        cannot be read."""
        try:
            changed = self._session.reload_from_disk()
        except DiagnosticsError as exc:
            self.message.emit(f"The project file changed on disk but cannot be read: {exc}", 0)
            return False
        if changed:
            self.message.emit("Reloaded the project: it was changed by another program", 5000)
        return True
