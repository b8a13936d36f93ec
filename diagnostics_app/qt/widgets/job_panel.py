"""Queued and running jobs, from this window and from any other process on the same store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from diagnostics_app.qt.models.jobs import (
    COL_JOB_CANCEL,
    COL_JOB_FEATURES,
    COL_JOB_ORIGIN,
    COL_JOB_PROGRESS,
    JobTableModel,
    job_counts_text,
)
from diagnostics_app.qt.models.roles import RowRole
from diagnostics_app.qt.widgets.delegates import ButtonDelegate, ProgressDelegate


class JobPanel(QWidget):
    """``summaryChanged(str)`` carries the labelled job counts (the status bar shows them)."""

    cancelRequested = Signal(str)
    summaryChanged = Signal(str)

    DEFAULT_ROWS = 6  # jobs visible without scrolling at the default size

    def __init__(self, cancel_all: QAction, can_cancel: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobPanel")
        self.model = JobTableModel(self)
        self.view = QTableView(self)
        self.view.setObjectName("jobTable")
        self.view.setModel(self.model)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(COL_JOB_FEATURES, QHeaderView.ResizeMode.Stretch)
        self.view.setColumnWidth(COL_JOB_PROGRESS, 160)
        self.view.setColumnWidth(COL_JOB_CANCEL, 80)
        self.view.setColumnWidth(COL_JOB_ORIGIN, 170)
        self.view.setWordWrap(False)
        self.view.setItemDelegateForColumn(COL_JOB_PROGRESS, ProgressDelegate(self.view))

        def enabled(index: QModelIndex | QPersistentModelIndex) -> bool:
            return bool(can_cancel(index.data(RowRole)))

        self.cancel_delegate = ButtonDelegate("Cancel", enabled, self.view)
        self.cancel_delegate.clicked.connect(self._on_cancel)
        self.view.setItemDelegateForColumn(COL_JOB_CANCEL, self.cancel_delegate)
        self.summary = QLabel(job_counts_text(()), self)
        self.summary.setObjectName("jobSummary")
        cancel_all_button = QToolButton(self)
        cancel_all_button.setDefaultAction(cancel_all)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.summary, 1)
        top.addWidget(cancel_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)

    def set_jobs(self, jobs: Sequence[Any]) -> None:
        self.model.set_jobs(jobs)
        text = job_counts_text(jobs)
        if text != self.summary.text():
            self.summary.setText(text)
            self.summaryChanged.emit(text)

    def default_height(self) -> int:
        """Tall enough for :data:`DEFAULT_ROWS` jobs under the header, the summary above."""
        view = self.view
        frame = 2 * view.frameWidth()
        header = view.horizontalHeader().sizeHint().height()
        rows = self.DEFAULT_ROWS * view.verticalHeader().defaultSectionSize()
        top = max(self.summary.sizeHint().height(), 24)  # the cancel-all button's row
        layout = self.layout()
        spacing = layout.spacing() if layout is not None else 6
        margins = layout.contentsMargins() if layout is not None else None
        outer = margins.top() + margins.bottom() if margins is not None else 4
        return frame + header + rows + top + spacing + outer

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.default_height())

    def _on_cancel(self, job_id: object) -> None:
        if isinstance(job_id, str):
            self.cancelRequested.emit(job_id)
