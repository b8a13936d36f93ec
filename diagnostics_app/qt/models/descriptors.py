"""The descriptor table: one line per row of the diagnosis for the current selection."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QFont

from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.core.explain import format_value
from diagnostics_app.core.explain import profile_text as _profile_text
from diagnostics_app.core.fingerprint import ranges_text
from diagnostics_app.core.states import STATES, severity_rank
from diagnostics_app.qt.models._diff import Roles, multi_data, proxy_multi_data, update_rows
from diagnostics_app.qt.models.roles import KeyRole, ProgressRole, RowRole, SortRole, StateRole
from diagnostics_app.qt.theme import STATE_HELP, human_bytes, state_color, state_icon

Index = QModelIndex | QPersistentModelIndex

COLUMNS = (
    "Feature",
    "Calculator",
    "Ver.",  # "Version" took twice the width of its "v1"; the header's tooltip says it
    "Profile",
    "State",
    "Tracks",
    "Reason",
    "Updated",
    "Size",
)
(
    COL_FEATURE,
    COL_CALC,
    COL_VERSION,
    COL_PROFILE,
    COL_STATE,
    COL_TRACKS,
    COL_REASON,
    COL_UPDATED,
    COL_SIZE,
) = range(len(COLUMNS))


HEADER_TIPS = {
    COL_VERSION: "Calculator version (stored → current when they differ)",
    COL_PROFILE: "Profile, and how many parameters the request sets over it",
    COL_TRACKS: "Tracks that request this row",
    COL_REASON: "Why the row has its state",
    COL_UPDATED: "When the cached data was computed (time only: today)",
    COL_SIZE: "Size of the cached data",
}


def profile_text(row: Row) -> str:
    return _profile_text(row.key.profile, row.params)


def profile_cell_text(row: Row) -> str:
    """The table's short form: ``default +2 params`` (the parameters are in the tooltip:
    the full JSON made the column either too wide or cut mid-value)."""
    n = len(row.params)
    if not n:
        return row.key.profile
    return f"{row.key.profile} +{n} param{'s' if n != 1 else ''}"


def profile_tooltip(row: Row) -> str:
    """The profile and every parameter the request sets over it, one per line."""
    lines = [f"profile {row.key.profile}"]
    if row.params:
        lines.append("request parameters (over the profile):")
        lines.extend(f"  {k} = {format_value(v)}" for k, v in sorted(row.params.items()))
    return "\n".join(lines)


def version_text(row: Row) -> str:
    v = row.calculator_version
    if row.stored_version is not None and v is not None and row.stored_version != v:
        return f"v{row.stored_version} → v{v}"
    if v is None and row.stored_version is not None:
        return f"v{row.stored_version}"
    return f"v{v}" if v is not None else "—"


def state_text(row: Row) -> str:
    if row.state == "running" and row.progress is not None:
        return f"running {row.progress * 100:.0f}%"
    return row.state


def reason_text(row: Row) -> str:
    if row.state == "stale" and row.reasons:
        if not any(r.ranges for r in row.reasons):
            return ", ".join(r.input for r in row.reasons) + " changed"
        # where the audio changed, when known (core.ranges): "audio.content: changed 1:02.300–…"
        return "; ".join(
            f"{r.input}: {ranges_text(r.ranges)}" if r.ranges else f"{r.input} changed"
            for r in row.reasons
        )
    if row.state == "extraneous":
        return "requested by no track"
    if row.state == "running":
        return f"computing ({row.message})" if row.message else "computing"
    if row.state == "queued":
        return "waiting for a worker"
    return row.message or ""


def updated_text(row: Row, now: float | None = None) -> str:
    """Short, as mail and file managers show it: ``14:05`` today, ``30 Nov 14:05`` this
    year, else ``2025-11-30`` (the full time is in the tooltip; sorting goes by the number)."""
    if row.updated is None:
        return ""
    when = time.localtime(row.updated)
    today = time.localtime(time.time() if now is None else now)
    if when.tm_year != today.tm_year:
        return time.strftime("%Y-%m-%d", when)
    if when.tm_yday == today.tm_yday:
        return time.strftime("%H:%M", when)
    return time.strftime("%d %b %H:%M", when)


class DescriptorTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = []

    def set_rows(self, rows: list[Row]) -> None:
        """Update in place by row key: selections on surviving rows are kept."""
        update_rows(self, self._rows, rows, lambda r: r.key, len(COLUMNS), self._cells)

    def set_progress(self, job_id: str, progress: float | None, label: str) -> int:
        """A running job's progress: only the state and reason cells of the rows it computes
        change (no re-derivation, no other row touched). Returns how many rows changed."""
        changed = 0
        message = label or None  # as the diagnosis words a running row
        for i, row in enumerate(self._rows):
            if row.state != "running" or row.job_id != job_id:
                continue
            if (row.progress, row.message) == (progress, message):
                continue
            self._rows[i] = replace(row, progress=progress, message=message)
            self.dataChanged.emit(self.index(i, COL_STATE), self.index(i, COL_REASON))
            changed += 1
        return changed

    @staticmethod
    def _cells(row: Row) -> tuple[str, ...]:
        """What each column shows (the state column's text names the state and progress,
        which its icon, colour, font and bar follow)."""
        return tuple(DescriptorTableModel._display(row, c) for c in range(len(COLUMNS)))

    def rows(self) -> list[Row]:
        return list(self._rows)

    def row_at(self, index: Index) -> Row | None:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        return self._rows[index.row()]

    def row_of(self, key: RowKey) -> int:
        for i, r in enumerate(self._rows):
            if r.key == key:
                return i
        return -1

    # -- the model interface ------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole and section == COL_STATE:
                return "<br>".join(f"<b>{s}</b>: {STATE_HELP[s]}" for s in STATES)
            if role == Qt.ItemDataRole.ToolTipRole:
                return HEADER_TIPS.get(section)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def multiData(self, index: Index, roleDataSpan: Roles) -> None:
        multi_data(self, index, roleDataSpan)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index)
        if row is None or not 0 <= index.column() < len(COLUMNS):
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == SortRole:
            return self._sort(row, col)
        if role == StateRole:
            return row.state
        if role == ProgressRole:
            return row.progress
        if role == KeyRole:
            return row.key
        if role == RowRole:
            return row
        if role == Qt.ItemDataRole.DecorationRole and col == COL_STATE:
            return state_icon(row.state)
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATE:
            return state_color(row.state)
        if role == Qt.ItemDataRole.FontRole and col == COL_STATE:
            font = QFont()
            font.setBold(row.state != "ok")
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_SIZE, COL_VERSION):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, col)
        return None

    @staticmethod
    def _display(row: Row, col: int) -> str:
        if col == COL_FEATURE:
            return row.key.feature
        if col == COL_CALC:
            return row.key.calculator or "—"
        if col == COL_VERSION:
            return version_text(row)
        if col == COL_PROFILE:
            return profile_cell_text(row)
        if col == COL_STATE:
            return state_text(row)
        if col == COL_TRACKS:
            return ", ".join(row.tracks) or "—"
        if col == COL_REASON:
            return reason_text(row)
        if col == COL_UPDATED:
            return updated_text(row)
        return human_bytes(row.nbytes)

    @staticmethod
    def _sort(row: Row, col: int) -> Any:
        if col == COL_STATE:
            return severity_rank(row.state)
        if col == COL_UPDATED:
            return row.updated or 0.0
        if col == COL_SIZE:
            return row.nbytes or 0
        if col == COL_VERSION:
            return row.calculator_version or 0
        return DescriptorTableModel._display(row, col).lower()

    @staticmethod
    def _tooltip(row: Row, col: int) -> str | None:
        if col == COL_STATE:
            return f"{row.state}: {STATE_HELP.get(row.state, '')}"
        if col == COL_REASON:
            if row.reasons:
                return "\n".join(str(r) for r in row.reasons)
            return row.message
        if col == COL_PROFILE:
            return profile_tooltip(row)
        if col == COL_UPDATED and row.updated is not None:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.updated))
        return None


class DescriptorFilterProxy(QSortFilterProxyModel):
    """Sorts by :data:`SortRole` (numbers as numbers, states by severity)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SortRole)
        self.setDynamicSortFilter(True)

    def multiData(self, index: Index, roleDataSpan: Roles) -> None:
        proxy_multi_data(self, index, roleDataSpan)
