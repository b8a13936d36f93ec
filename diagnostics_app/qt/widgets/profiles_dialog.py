"""The Profiles dialog: named parameter sets, added, renamed, deleted and edited.

Like the other edit dialogs it changes nothing itself: OK hands a :class:`ProfilesChange`
(the steps in order, then the parameters) to ``apply``, which runs it as one undoable edit
through :func:`diagnostics_app.core.edits.edit_profiles`. The rules (valid names, ``default``
is fixed, a used profile is not dropped silently) are the core's: the dialog asks them early
so a refusal shows while the user is still at it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLayout,
    QListWidget,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diagnostics_app.core.edits import (
    ProfileOp,
    check_profile_name,
    in_use_message,
    refuse_default,
)
from diagnostics_app.core.errors import ProjectError
from diagnostics_app.core.params import PARAMS
from diagnostics_app.core.project import DEFAULT_PROFILE
from diagnostics_app.qt.widgets.dialogs import _EditDialog, _parse_value

PROFILE_NAME_HELP = 'Name: letters, digits, "_", "-" and "." (starting with a letter or digit)'


@dataclass(frozen=True)
class ProfilesChange:
    """What the Profiles dialog did: its add / rename / delete steps in order, then every
    profile's parameters (by its final name). :func:`core.edits.edit_profiles` applies it."""

    ops: tuple[ProfileOp, ...]
    values: Mapping[str, Mapping[str, Any]]


class ProfilesDialog(_EditDialog):
    """Named parameter sets: add, rename and delete them, and set their parameters (each one
    left empty takes its built-in default). ``users`` names, per profile, the requests that
    use it (``Mix / rms``): a used profile is deleted only by moving them to ``default``.
    Nothing is changed until OK, which applies all of it as one undoable edit."""

    def __init__(
        self,
        profiles: Mapping[str, Mapping[str, Any]],
        parent: QWidget | None = None,
        users: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__("Analysis profiles", parent)
        self.setObjectName("profilesDialog")
        self._profiles: dict[str, dict[str, Any]] = {DEFAULT_PROFILE: {}}
        self._profiles.update({n: dict(v) for n, v in profiles.items()})
        self._users: dict[str, list[str]] = {n: list(v) for n, v in (users or {}).items()}
        self.ops: list[ProfileOp] = []
        self.names = QListWidget(self)
        self.names.setObjectName("profileNames")
        self.names.addItems(list(self._profiles))
        self.names.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table = QTableWidget(len(PARAMS), 4, self)
        self.table.setObjectName("profileParams")
        self.table.setHorizontalHeaderLabels(["Parameter", "Value", "Default", "Meaning"])
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        # full names and defaults; the meaning wraps in what is left
        for col in (0, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(1, 110)
        for r, spec in enumerate(PARAMS.values()):
            cells = (spec.name, "", json.dumps(spec.default), spec.doc)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c != 1:
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                    item.setToolTip(spec.doc)
                self.table.setItem(r, c, item)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.add_button = QPushButton("Add…", self)
        self.add_button.clicked.connect(self._on_add)
        self.rename_button = QPushButton("Rename…", self)
        self.rename_button.clicked.connect(self._on_rename)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self._on_delete)
        self.usage = QLabel(self)
        self.usage.setObjectName("profileUsage")
        self.usage.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.rename_button, self.delete_button):
            buttons.addWidget(button)
        left = QVBoxLayout()
        left.addWidget(self.names, 1)
        left.addLayout(buttons)
        left.addWidget(self.usage)
        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(self.table, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        # the names list widens as names grow; that must not push size hints to the platform
        # window (offscreen, used by tests and screenshots, warns)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self._shown: str | None = None
        self.names.currentTextChanged.connect(self._show)
        self.names.setCurrentRow(0)
        self._fit_names()
        self.resize(960, 460)

    # -- what the user does ------------------------------------------------------------------

    def add_profile(self, name: str) -> str | None:
        """A new, empty profile ``name`` (selected); or why not, also shown in the dialog."""
        try:
            check_profile_name(name, self._profiles)
        except ProjectError as exc:
            return self._refuse(str(exc))
        self._store_shown()
        self._profiles[name] = {}
        self.ops.append(ProfileOp("add", name))
        self.names.addItem(name)
        self._after_change(name)
        return None

    def rename_profile(self, old: str, new: str) -> str | None:
        """``old`` is called ``new`` (the requests using it follow on OK); or why not."""
        if old == new:
            return None
        problem = self._not_default(old, "renamed")
        if problem is None:
            try:
                check_profile_name(new, self._profiles)
            except ProjectError as exc:
                problem = str(exc)
        if problem is not None:
            return self._refuse(problem)
        self._store_shown()
        self._profiles = {(new if n == old else n): v for n, v in self._profiles.items()}
        if old in self._users:
            self._users[new] = self._users.pop(old)
        self.ops.append(ProfileOp("rename", old, new))
        item = self.names.item(list(self._profiles).index(new))
        self._shown = None  # the old name is gone: nothing to store under it
        item.setText(new)
        self._after_change(new)
        return None

    def delete_profile(self, name: str, move_to_default: bool = False) -> str | None:
        """Delete ``name``. While requests use it this is refused, naming them, unless
        ``move_to_default``: then they move to ``default`` (on OK)."""
        problem = self._not_default(name, "deleted")
        users = self._users.get(name, [])
        if problem is None and users and not move_to_default:
            problem = in_use_message(name, users)
        if problem is not None:
            return self._refuse(problem)
        self._store_shown()
        row = list(self._profiles).index(name)
        del self._profiles[name]
        if users:
            self._users.setdefault(DEFAULT_PROFILE, []).extend(self._users.pop(name))
        self.ops.append(ProfileOp("delete", name, move_to=DEFAULT_PROFILE if users else None))
        self._shown = None
        self.names.takeItem(row)
        self._after_change(list(self._profiles)[max(0, row - 1)])
        return None

    def users_of(self, name: str) -> list[str]:
        return list(self._users.get(name, []))

    def set_param(self, profile: str, name: str, value: Any) -> None:
        self.names.setCurrentRow(list(self._profiles).index(profile))
        r = list(PARAMS).index(name)
        item = self.table.item(r, 1)
        assert item is not None
        item.setText(json.dumps(value))

    def value(self) -> ProfilesChange:
        self._store_shown()
        return ProfilesChange(tuple(self.ops), {n: dict(v) for n, v in self._profiles.items()})

    # -- the buttons (each asks, then does one of the above) --------------------------------------

    def _current(self) -> str | None:
        item = self.names.currentItem()
        return item.text() if item is not None else None

    def _on_add(self) -> None:
        n = 1
        while f"profile{n}" in self._profiles:
            n += 1
        name, ok = QInputDialog.getText(self, "New profile", PROFILE_NAME_HELP, text=f"profile{n}")
        if ok:
            self.add_profile(name.strip())

    def _on_rename(self) -> None:
        old = self._current()
        if old is None:
            return
        note = (
            f"{PROFILE_NAME_HELP}\nRequests using it follow. Cached results are stored under "
            "the profile's name: its rows are calculated again."
        )
        new, ok = QInputDialog.getText(self, f"Rename profile {old}", note, text=old)
        if ok:
            self.rename_profile(old, new.strip())

    def _on_delete(self) -> None:
        name = self._current()
        if name is None:
            return
        users = self._users.get(name, [])
        if not users or name == DEFAULT_PROFILE:
            self.delete_profile(name)
            return
        answer = QMessageBox.question(
            self,
            f"Delete profile {name}",
            f"{in_use_message(name, users, limit=20)}.\n\n"
            f'Move them to "{DEFAULT_PROFILE}" and delete {name}?',
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_profile(name, move_to_default=True)

    # -- keeping the views in step ---------------------------------------------------------

    def _refuse(self, message: str) -> str:
        self.show_error(message)
        return message

    @staticmethod
    def _not_default(name: str, what: str) -> str | None:
        try:
            refuse_default(name, what)
        except ProjectError as exc:
            return str(exc)
        return None

    def _after_change(self, select: str) -> None:
        self.error.hide()
        self._fit_names()
        self.names.setCurrentRow(list(self._profiles).index(select))
        self._show_usage(select)

    def _fit_names(self) -> None:
        """The list as wide as its longest name: names are never cut."""
        fm = self.names.fontMetrics()
        widest = max((fm.horizontalAdvance(n) for n in self._profiles), default=0)
        frame = 2 * self.names.frameWidth()
        scroll = self.names.verticalScrollBar().sizeHint().width()
        self.names.setMinimumWidth(max(160, widest + frame + scroll + 16))

    def _show_usage(self, name: str | None) -> None:
        users = self._users.get(name or "", [])
        self.usage.setText(
            f"Used by {len(users)} request{'s' if len(users) != 1 else ''}: {', '.join(users)}"
            if users
            else "Not used by any request"
        )
        self.usage.setToolTip("\n".join(users))
        fixed = name == DEFAULT_PROFILE
        self.rename_button.setEnabled(name is not None and not fixed)
        self.delete_button.setEnabled(name is not None and not fixed)

    def _store_shown(self) -> None:
        if self._shown is None or self._shown not in self._profiles:
            return
        values: dict[str, Any] = {}
        for r, spec in enumerate(PARAMS.values()):
            item = self.table.item(r, 1)
            text = item.text() if item is not None else ""
            if text.strip():
                values[spec.name] = _parse_value(text)
        self._profiles[self._shown] = values

    def _show(self, name: str) -> None:
        self._store_shown()
        self._shown = name or None
        values = self._profiles.get(name, {})
        for r, spec in enumerate(PARAMS.values()):
            item = self.table.item(r, 1)
            assert item is not None
            item.setText(json.dumps(values[spec.name]) if spec.name in values else "")
        self._show_usage(self._shown)
