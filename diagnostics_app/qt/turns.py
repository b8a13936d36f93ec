"""View updates spread over turns of the event loop, one per turn.

Qt paints every widget a turn made dirty in one go, after the turn's events: a snapshot that
updated the table, the tree, the job panel and the plot lanes in one slot was painted as one
block of 9-11 ms on the GUI thread (``bench/gui.py``'s longest stall). :class:`Turns` runs the
updates that can wait a few milliseconds (the job panel, the lanes' marks) each in a later turn,
so each is painted on its own and a timer or an input event can be served between them.

An update is queued under a key: queuing a key already waiting keeps its place and runs the
newest function (a second snapshot before the first's updates ran does not run them twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PySide6.QtCore import QObject, QTimer, Slot

# one turn: a zero timer fires after the events (and the paint) the previous turn posted
TURN_MS: Final = 0


class Turns(QObject):
    """Runs queued updates one per turn of the event loop, in the order first queued."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: dict[str, Callable[[], None]] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(TURN_MS)
        self._timer.timeout.connect(self._next)

    def queue(self, key: str, update: Callable[[], None]) -> None:
        self._queue[key] = update  # a key already waiting keeps its place
        if not self._timer.isActive():
            self._timer.start()

    def clear(self) -> None:
        """Drop every queued update (the window is closing)."""
        self._timer.stop()
        self._queue.clear()

    @property
    def pending(self) -> bool:
        return bool(self._queue)

    def flush(self) -> None:
        """Run every queued update now (tests, screenshots, closing)."""
        self._timer.stop()
        try:
            while self._queue:
                self._run_first()
        finally:  # an update that raised leaves the others to their turns
            if self._queue:
                self._timer.start()

    @Slot()
    def _next(self) -> None:
        try:
            if self._queue:
                self._run_first()
        finally:  # an update that raised (a bug, reported by Qt) must not strand the others
            if self._queue:
                self._timer.start()

    def _run_first(self) -> None:
        key = next(iter(self._queue))
        self._queue.pop(key)()
