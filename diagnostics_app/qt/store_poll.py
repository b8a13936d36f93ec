"""The store poll: notices writes to the feature store made by other processes.

Jobs started from the command line or another window write the store, not this session, so
no listener hears of them. Every :data:`POLL_MS` the store's cheap change counter is read;
when it differs from the counter the diagnosis shown was derived at, :attr:`StorePoll.changed`
asks for a re-derivation. It is a piece of its own because it is the one place the desktop
app learns of changes by polling, and the one to replace when the store reports its events.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.session import Session

POLL_MS = 400  # how often the store's change counter is read (other processes' jobs)


class StorePoll(QObject):
    """Reads ``session.store``'s change counter on a timer (started by :meth:`start`)."""

    changed = Signal()  # the store changed since the diagnosis shown (or cannot be read)

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._last: object = None  # the counter the diagnosis shown was derived at
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    def counter(self) -> object:
        """The store's cheap change counter (entries and jobs, any process); any thread."""
        try:
            return self._session.store.version()
        except DiagnosticsError:
            return None

    def seen(self, counter: object) -> None:
        """The diagnosis now shown was derived at ``counter``."""
        self._last = counter

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @Slot()
    def _poll(self) -> None:
        counter = self.counter()
        if counter is None or counter != self._last:
            self.changed.emit()
