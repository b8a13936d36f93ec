"""The one place where the core's typed events cross into the GUI thread.

The core publishes frozen event values (``core/events.py``) on whichever thread made the
change: a job's worker thread, the store watcher's thread, the GUI thread for edits. This
bridge re-emits each one as a Qt signal of a QObject that lives on the GUI thread; Qt then
queues the delivery when the emitting thread is another one (AutoConnection), so every slot
connected to the bridge runs on the GUI thread and no widget code ever thinks about threads.

Only event values travel (never ``None`` through an ``object`` argument: PySide6 on Python
3.11 can drop a reference to None per delivery).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from diagnostics_app.core.events import (
    EntriesCommitted,
    HistoryChanged,
    JobUpdated,
    ProjectReplaced,
    SessionEvents,
    StoreChanged,
)


class EventsBridge(QObject):
    """Qt signals mirroring a :class:`SessionEvents` group (each carries the event value)."""

    projectReplaced = Signal(object)  # ProjectReplaced
    historyChanged = Signal(object)  # HistoryChanged
    entriesCommitted = Signal(object)  # EntriesCommitted
    jobUpdated = Signal(object)  # JobUpdated
    storeChanged = Signal(object)  # StoreChanged

    def __init__(self, events: SessionEvents, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # bound methods of this object (psygnal holds them weakly: the bridge's owner keeps
        # it alive; a dead bridge is simply skipped)
        self._links: list[tuple[Any, Any]] = [
            (events.project_replaced, self._project_replaced),
            (events.history_changed, self._history_changed),
            (events.entries_committed, self._entries_committed),
            (events.job_updated, self._job_updated),
            (events.store_changed, self._store_changed),
        ]
        for source, relay in self._links:
            source.connect(relay)

    def _project_replaced(self, event: ProjectReplaced) -> None:
        self.projectReplaced.emit(event)

    def _history_changed(self, event: HistoryChanged) -> None:
        self.historyChanged.emit(event)

    def _entries_committed(self, event: EntriesCommitted) -> None:
        self.entriesCommitted.emit(event)

    def _job_updated(self, event: JobUpdated) -> None:
        self.jobUpdated.emit(event)

    def _store_changed(self, event: StoreChanged) -> None:
        self.storeChanged.emit(event)

    def close(self) -> None:
        """Stop relaying (before the session closes): no event reaches a closed window."""
        for source, relay in self._links:
            source.disconnect(relay)
        self._links.clear()

    @property
    def connected(self) -> bool:
        return bool(self._links)
