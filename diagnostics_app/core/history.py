"""Undo and redo of every project edit and of prune.

A command knows how to apply and revert itself against a :class:`Target`: in the app that is
the :class:`~core.session.Session`, which owns the history. This module names only the two
things a command needs from it (replace the project, prune and restore in the store), so it
sits below the session and never imports it (the layers contract in ``pyproject.toml``).
Project edits keep the project value before and after (projects are immutable); a prune keeps
the store's trash id, so undo restores exactly what was deleted.

The history also knows where the saved state is (QUndoStack's *clean index*): the number of
steps done when the project was last loaded or saved. Undoing or redoing back to it is clean
again; a new edit made after undoing past it makes it unreachable. A prune changes the store,
not the project file, so steps that do not change the project are transparent to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from diagnostics_app.core.project import Project
from diagnostics_app.core.store import EntryKey


class PruneStore(Protocol):
    """The store's trash, as prune commands use it."""

    def prune(self, items: Sequence[tuple[EntryKey, str]]) -> str: ...

    def restore(self, prune_id: str) -> object: ...


class Target(Protocol):
    """What commands act on (a :class:`~core.session.Session`)."""

    @property
    def store(self) -> PruneStore: ...

    def replace_project(self, project: Project) -> None: ...


class Command(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def changes_project(self) -> bool:
        """Whether the step changes the project file's content (the saved state)."""
        ...

    def apply(self, target: Target) -> None: ...

    def revert(self, target: Target) -> None: ...


@dataclass(frozen=True)
class ProjectEdit:
    text: str
    before: Project
    after: Project

    @property
    def changes_project(self) -> bool:
        return True

    def apply(self, target: Target) -> None:
        target.replace_project(self.after)

    def revert(self, target: Target) -> None:
        target.replace_project(self.before)


@dataclass
class PruneCommand:
    """Extraneous features moved to the store's trash; undo puts them back exactly."""

    text: str
    items: tuple[tuple[EntryKey, str], ...]
    prune_id: str

    @property
    def changes_project(self) -> bool:
        return False  # the store's data, not the project file

    @property
    def keys(self) -> frozenset[EntryKey]:
        return frozenset(key for key, _ in self.items)

    def apply(self, target: Target) -> None:
        self.prune_id = target.store.prune(list(self.items))

    def revert(self, target: Target) -> None:
        target.store.restore(self.prune_id)


class History:
    def __init__(self, limit: int = 200) -> None:
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self.limit = limit
        # steps done at the saved state; None once no undo or redo can reach it again
        self._clean: int | None = 0

    def push(self, command: Command) -> None:
        """Record a command that has already been applied."""
        done = len(self._done)
        if self._clean is not None and self._clean > done:
            # the saved state was among the undone steps, which a new step discards: it stays
            # reachable only if those steps between here and it left the project unchanged
            between = self._undone[len(self._undone) - (self._clean - done) :]
            self._clean = done if not any(c.changes_project for c in between) else None
        self._done.append(command)
        self._undone.clear()
        dropped = max(0, len(self._done) - self.limit)
        if dropped:
            del self._done[:dropped]
            if self._clean is not None:
                self._clean = self._clean - dropped if self._clean >= dropped else None

    def set_clean(self) -> None:
        """The project as it is now was saved (or loaded)."""
        self._clean = len(self._done)

    @property
    def clean(self) -> bool:
        """The project is as saved: no step that changes it lies between here and the saved
        state."""
        if self._clean is None:
            return False
        done = len(self._done)
        if self._clean <= done:
            between: list[Command] = self._done[self._clean :]
        else:
            between = self._undone[len(self._undone) - (self._clean - done) :]
        return not any(c.changes_project for c in between)

    def undo(self, target: Target) -> Command | None:
        if not self._done:
            return None
        cmd = self._done.pop()
        cmd.revert(target)
        self._undone.append(cmd)
        return cmd

    def redo(self, target: Target) -> Command | None:
        if not self._undone:
            return None
        cmd = self._undone.pop()
        cmd.apply(target)
        self._done.append(cmd)
        return cmd

    @property
    def undo_text(self) -> str | None:
        return self._done[-1].text if self._done else None

    @property
    def redo_text(self) -> str | None:
        return self._undone[-1].text if self._undone else None
