"""Undo and redo of every project edit and of prune.

A command knows how to apply and revert itself against a :class:`~core.session.Session`.
Project edits keep the project value before and after (projects are immutable); a prune keeps
the store's trash id, so undo restores exactly what was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from diagnostics_app.core.project import Project
from diagnostics_app.core.store import EntryKey

if TYPE_CHECKING:
    from diagnostics_app.core.session import Session


class Command(Protocol):
    @property
    def text(self) -> str: ...

    def apply(self, session: Session) -> None: ...

    def revert(self, session: Session) -> None: ...


@dataclass(frozen=True)
class ProjectEdit:
    text: str
    before: Project
    after: Project

    def apply(self, session: Session) -> None:
        session.replace_project(self.after)

    def revert(self, session: Session) -> None:
        session.replace_project(self.before)


@dataclass
class PruneCommand:
    """Extraneous features moved to the store's trash; undo puts them back exactly."""

    text: str
    items: tuple[tuple[EntryKey, str], ...]
    prune_id: str

    def apply(self, session: Session) -> None:
        self.prune_id = session.store.prune(list(self.items))

    def revert(self, session: Session) -> None:
        session.store.restore(self.prune_id)


class History:
    def __init__(self, limit: int = 200) -> None:
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self.limit = limit

    def push(self, command: Command) -> None:
        """Record a command that has already been applied."""
        self._done.append(command)
        del self._done[: -self.limit]
        self._undone.clear()

    def undo(self, session: Session) -> Command | None:
        if not self._done:
            return None
        cmd = self._done.pop()
        cmd.revert(session)
        self._undone.append(cmd)
        return cmd

    def redo(self, session: Session) -> Command | None:
        if not self._undone:
            return None
        cmd = self._undone.pop()
        cmd.apply(session)
        self._done.append(cmd)
        return cmd

    @property
    def undo_text(self) -> str | None:
        return self._done[-1].text if self._done else None

    @property
    def redo_text(self) -> str | None:
        return self._undone[-1].text if self._undone else None
