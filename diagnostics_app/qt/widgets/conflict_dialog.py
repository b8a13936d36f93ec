"""The save-conflict question: the project file changed on disk and this window has unsaved
edits. Asked when the watcher notices, and again at Save, so an outside edit is never
overwritten without the user saying so."""

from __future__ import annotations

import enum
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget


class ConflictChoice(enum.Enum):
    RELOAD = "reload"  # read the file again: my edits are lost
    OVERWRITE = "overwrite"  # write mine over the other program's
    SAVE_AS = "save_as"  # keep both: mine goes to another file
    CANCEL = "cancel"  # decide later (Save asks again)


_BUTTONS: tuple[tuple[ConflictChoice, str, QMessageBox.ButtonRole], ...] = (
    (ConflictChoice.RELOAD, "Reload (discard my changes)", QMessageBox.ButtonRole.DestructiveRole),
    (ConflictChoice.OVERWRITE, "Overwrite with mine", QMessageBox.ButtonRole.AcceptRole),
    (ConflictChoice.SAVE_AS, "Save As…", QMessageBox.ButtonRole.ActionRole),
    (ConflictChoice.CANCEL, "Cancel (decide later)", QMessageBox.ButtonRole.RejectRole),
)


class ConflictDialog(QMessageBox):
    """Four buttons, one per :class:`ConflictChoice`; :meth:`choice` after it closed (Escape
    or closing the window is Cancel)."""

    def __init__(self, path: Path, at_save: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("saveConflictDialog")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("Project changed on disk")
        self.setText(
            f"<b>{path.name}</b> was changed by another program, and you have unsaved changes."
        )
        when = (
            "Saving now would overwrite the other program's changes."
            if at_save
            else "Nothing is overwritten until you choose."
        )
        self.setInformativeText(
            f"{when}<br><br>Reload reads the file again and discards your changes; Overwrite "
            "writes yours over it; Save As keeps both; Cancel decides later (Save asks again)."
        )
        self.setToolTip(str(path))
        self.choice_buttons: dict[ConflictChoice, QPushButton] = {}
        for choice, text, role in _BUTTONS:
            button = self.addButton(text, role)
            button.setObjectName(f"conflict_{choice.value}")
            self.choice_buttons[choice] = button
        self.setDefaultButton(self.choice_buttons[ConflictChoice.CANCEL])
        self.setEscapeButton(self.choice_buttons[ConflictChoice.CANCEL])

    def choice(self) -> ConflictChoice:
        clicked = self.clickedButton()
        for choice, button in self.choice_buttons.items():
            if button is clicked:
                return choice
        return ConflictChoice.CANCEL


def ask_conflict(path: Path, at_save: bool, parent: QWidget | None = None) -> ConflictChoice:
    """Ask (modal) and return the choice."""
    dialog = ConflictDialog(path, at_save, parent)
    try:
        dialog.exec()
        return dialog.choice()
    finally:
        dialog.deleteLater()
