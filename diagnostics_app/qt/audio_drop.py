"""Adding dropped audio files and folders without stalling the window.

A small drop (at most :data:`AT_ONCE_MAX` files and folders) is added at once, as it always
was. A larger one (a library folder: 20,000 files took ~4 s to scan and ~1 s to plan on the GUI
thread) is scanned, planned and made into the edited project in a worker
(:func:`core.library.plan_audio`); meanwhile the status bar says so and shows a Cancel button,
and the window stays live. The result is applied on the GUI thread as one undoable edit by the
controller (:meth:`Controller.add_audio`), which does the work again only if the project
changed in the meantime.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Sequence

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QMainWindow, QPushButton

from diagnostics_app.core import library
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.project import Project
from diagnostics_app.qt.controller import Controller

AT_ONCE_MAX = 200  # files and folders a drop may hold to be added at once, on the GUI thread
SCANNING_TEXT = "Scanning dropped audio…"  # (short: the status bar leaves it ~25 characters)


class _Signals(QObject):
    done = Signal(object)  # PlannedAddition, None (cancelled) or str (why it failed)


class _ScanTask(QRunnable):
    def __init__(self, project: Project, paths: list[str], cancel: threading.Event) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.project, self.paths, self.cancel = project, paths, cancel
        self.signals = _Signals()
        self.thread: threading.Thread | None = None  # the thread that scanned (tests)

    def run(self) -> None:
        self.thread = threading.current_thread()
        result: library.PlannedAddition | str | None
        try:
            result = library.plan_audio(self.project, self.paths, self.cancel.is_set)
        except library.Cancelled:
            result = None
        except DiagnosticsError as exc:
            result = str(exc)
        except BaseException as exc:  # a bug must reach the status bar, never hang the drop
            result = f"internal error: {type(exc).__name__}: {exc}"
            traceback.print_exc()
        self.signals.done.emit(result)


class AudioDrop(QObject):
    """Adds audio to the window's project; ``added`` carries the new source ids."""

    added = Signal(list)

    def __init__(self, window: QMainWindow, controller: Controller) -> None:
        super().__init__(window)  # (no Python reference to the window: it would keep it alive)
        self.controller = controller
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.cancel_button = QPushButton("Cancel Adding Audio", window)
        self.cancel_button.setObjectName("cancelAddAudio")
        self.cancel_button.setToolTip("Stop adding the dropped audio (nothing is added)")
        self.cancel_button.clicked.connect(self.cancel)
        window.statusBar().addPermanentWidget(self.cancel_button)
        self.cancel_button.hide()
        self.task: _ScanTask | None = None
        self._cancel = threading.Event()

    @property
    def busy(self) -> bool:
        """A drop is being scanned in the worker."""
        return self.task is not None

    def add(self, paths: Sequence[str]) -> list[str] | None:
        """Add ``paths``: the new source ids when done at once, None when it goes on in the
        worker (``added`` follows) or another drop is still being scanned."""
        if self.busy:
            self.controller.message.emit("Still adding the audio dropped before", 5000)
            return None
        if library.count_entries(paths, AT_ONCE_MAX) <= AT_ONCE_MAX:
            return self._apply(list(paths), None)
        self._cancel = threading.Event()
        task = self.task = _ScanTask(self.controller.project, list(paths), self._cancel)
        task.signals.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self.cancel_button.show()
        self.controller.message.emit(SCANNING_TEXT, 0)
        self.pool.start(task)
        return None

    @Slot()
    def cancel(self) -> None:
        if self.busy:
            self._cancel.set()
            self.controller.message.emit("Adding audio: cancelling…", 0)

    @Slot(object)
    def _on_done(self, result: library.PlannedAddition | str | None) -> None:
        task, self.task = self.task, None
        self.cancel_button.hide()
        if task is None:  # (dropped at the window's close)
            return
        if result is None:
            self.controller.message.emit("Adding audio cancelled: nothing was added", 5000)
        elif isinstance(result, str):
            self.controller.message.emit(f"Cannot add the audio: {result}", 0)
        else:
            self._apply(task.paths, result)

    def _apply(self, paths: list[str], planned: library.PlannedAddition | None) -> list[str]:
        added = self.controller.add_audio(paths, planned)
        self.added.emit(added)
        return added

    def stop(self) -> None:
        """Stop a scan and wait for it (the window is closing: called once its close goes
        ahead, not on the Close event, which the unsaved-changes question may refuse):
        nothing of it is applied."""
        if self.task is None:
            return
        self._cancel.set()
        self.pool.waitForDone()
        self.task = None
        self.cancel_button.hide()
        self.controller.message.emit("Adding audio cancelled: nothing was added", 5000)
