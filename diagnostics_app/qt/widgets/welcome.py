"""The welcome screen: recent projects, open a project, or open the demo; and the message box
that says why a project could not be opened, shown over it (someone who started the app from
a file manager sees no terminal)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diagnostics_app import APP_NAME, __version__
from diagnostics_app.qt.theme import app_icon


def open_error_box(parent: QWidget | None, path: str, message: str) -> QMessageBox:
    """Show (window-modal, without blocking the caller) why ``path`` could not be opened;
    ``message`` is the core's one-line reason. The box deletes itself when closed."""
    box = QMessageBox(parent)
    box.setObjectName("openErrorBox")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle("Cannot open the project")
    box.setText(f"Cannot open {Path(path).name or path}")
    box.setInformativeText(message)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box


class WelcomeWindow(QWidget):
    openRequested = Signal(str)  # a project path
    browseRequested = Signal()
    demoRequested = Signal()

    def __init__(self, recent: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.setWindowIcon(app_icon())
        title = QLabel(
            f"<h2>{APP_NAME}</h2><p>Diagnostics for audio feature caches: which descriptors are stale, why, and regenerate only those.</p>",
            self,
        )
        title.setWordWrap(True)
        self.recent = QListWidget(self)
        self.recent.setObjectName("recentProjects")
        for path in recent:
            item = QListWidgetItem(f"{Path(path).parent.name}/{Path(path).name}")
            item.setToolTip(path)
            item.setData(Qt.ItemDataRole.UserRole, path)
            if not Path(path).is_file():
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setText(item.text() + "  (missing)")
            self.recent.addItem(item)
        self.recent.itemActivated.connect(
            lambda item: self.openRequested.emit(item.data(Qt.ItemDataRole.UserRole))
        )
        self.open_button = QPushButton("Open project…", self)
        self.open_button.clicked.connect(self.browseRequested)
        self.demo_button = QPushButton("Open demo", self)
        self.demo_button.setObjectName("openDemo")
        self.demo_button.setToolTip("Write a demo project with generated audio and open it")
        self.demo_button.clicked.connect(self.demoRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.demo_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(
            QLabel("<b>Recent projects</b>" if recent else "<i>No recent projects</i>", self)
        )
        layout.addWidget(self.recent, 1)
        layout.addLayout(buttons)
        self.resize(560, 400)
