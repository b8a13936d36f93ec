"""The job table: queued and running passes from this process and from any other."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)

from diagnostics_app.qt.models._diff import Roles, multi_data, update_rows
from diagnostics_app.qt.models.roles import KeyRole, ProgressRole, RowRole, SortRole, StateRole
from diagnostics_app.qt.theme import state_color, state_icon

Index = QModelIndex | QPersistentModelIndex

JOB_COLUMNS = ("Source", "Features", "State", "Progress", "Started by", "")
(
    COL_JOB_SOURCE,
    COL_JOB_FEATURES,
    COL_JOB_STATE,
    COL_JOB_PROGRESS,
    COL_JOB_ORIGIN,
    COL_JOB_CANCEL,
) = range(len(JOB_COLUMNS))


def origin_text(job: Any) -> str:
    pid = getattr(job, "owner_pid", None)
    origin = getattr(job, "origin", "") or "?"
    if pid is not None and pid != os.getpid():
        return f"{origin} (pid {pid})"
    return f"{origin} (this window)"


def job_counts_text(jobs: Sequence[Any]) -> str:
    """``Jobs: 2 running · 3 queued`` (or ``Jobs: none``): counts of jobs, which a reader must
    not take for the rows they compute (one job may compute several rows), so it says so."""
    counts = [
        (n, state)
        for state in ("running", "queued")
        if (n := sum(1 for j in jobs if j.state == state))
    ]
    return "Jobs: " + (" · ".join(f"{n} {state}" for n, state in counts) or "none")


class JobTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._jobs: list[Any] = []

    def set_jobs(self, jobs: Sequence[Any]) -> None:
        update_rows(self, self._jobs, list(jobs), lambda j: j.id, len(JOB_COLUMNS), self._cells)

    def _cells(self, job: Any) -> tuple[Any, ...]:
        """What each column shows (the progress column's text follows the progress bar)."""
        return tuple(self._display(job, c) for c in range(len(JOB_COLUMNS)))

    def jobs(self) -> list[Any]:
        return list(self._jobs)

    def job_at(self, row: int) -> Any:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    @staticmethod
    def _display(job: Any, col: int) -> str:
        if col == COL_JOB_SOURCE:
            return str(job.source_id)
        if col == COL_JOB_FEATURES:
            feats = ", ".join(job.features) or ", ".join(job.calculator_ids)
            return f"{feats}  [{job.profile}]"
        if col == COL_JOB_STATE:
            return str(job.state)
        if col == COL_JOB_PROGRESS:
            return f"{(job.progress or 0) * 100:.0f}%" if job.state == "running" else ""
        if col == COL_JOB_ORIGIN:
            return origin_text(job)
        return "Cancel"

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(JOB_COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(JOB_COLUMNS)
        ):
            return JOB_COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def multiData(self, index: Index, roleDataSpan: Roles) -> None:
        multi_data(self, index, roleDataSpan)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.column() < len(JOB_COLUMNS):
            return None
        job = self.job_at(index.row())
        if job is None:
            return None
        col = index.column()
        progress = job.progress if job.state == "running" else None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(job, col)
        if role == SortRole:
            return (progress or 0.0) if col == COL_JOB_PROGRESS else str(self.data(index))
        if role == StateRole:
            return job.state
        if role == ProgressRole:
            return progress
        if role == KeyRole:
            return job.id
        if role == RowRole:
            return job
        if role == Qt.ItemDataRole.DecorationRole and col == COL_JOB_STATE:
            return state_icon("running" if job.state == "running" else "queued")
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_JOB_STATE:
            return state_color("running" if job.state == "running" else "queued")
        if role == Qt.ItemDataRole.ToolTipRole:
            label = getattr(job, "label", "") or ""
            msg = getattr(job, "message", "") or ""
            return f"job {job.id}: {', '.join(job.calculator_ids)} on {job.source_id}\n{label} {msg}".strip()
        return None
