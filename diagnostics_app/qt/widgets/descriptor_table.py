"""The centre table: one line per descriptor row of the selection, sortable, multi-select."""

from __future__ import annotations

from collections.abc import Collection

from PySide6.QtCore import QItemSelectionModel, Qt, Signal, Slot
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.qt.models.descriptors import (
    COL_FEATURE,
    COL_REASON,
    COL_STATE,
    DescriptorFilterProxy,
    DescriptorTableModel,
)
from diagnostics_app.qt.models.roles import RowRole
from diagnostics_app.qt.widgets.delegates import ProgressDelegate


class DescriptorTable(QTableView):
    """Emits ``currentRowChanged([Row])`` (an empty list when there is none: never ``None``
    through a signal) and ``rowsSelected(list[Row])``."""

    currentRowChanged = Signal(list)
    rowsSelected = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("descriptorTable")
        self.table_model = DescriptorTableModel(self)
        self.proxy = DescriptorFilterProxy(self)
        self.proxy.setSourceModel(self.table_model)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(COL_STATE, Qt.SortOrder.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.setItemDelegateForColumn(COL_STATE, ProgressDelegate(self))
        widths = {COL_FEATURE: 110, 1: 120, 2: 70, 3: 90, COL_STATE: 120, 5: 90, 7: 120, 8: 70}
        for col, w in widths.items():
            self.setColumnWidth(col, w)
        self.selectionModel().currentRowChanged.connect(self._on_current)
        self.selectionModel().selectionChanged.connect(self._on_selection)
        self._current_key: RowKey | None = None

    def set_rows(self, rows: list[Row]) -> None:
        self.table_model.set_rows(rows)
        self._emit_current()

    def fit_columns(self) -> None:
        """Size the columns to their contents, capped (once per selection, not on every
        update: that would cost a pass over all rows each time)."""
        for col in range(self.table_model.columnCount()):
            self.resizeColumnToContents(col)
            cap = 220 if col == COL_REASON else 160
            floor = 130 if col == COL_STATE else 0  # room for "running 100%" in its bar
            self.setColumnWidth(col, max(floor, min(self.columnWidth(col) + 6, cap)))

    def selected_rows(self) -> list[Row]:
        out = []
        for idx in self.selectionModel().selectedRows():
            row = idx.data(RowRole)
            if row is not None:
                out.append(row)
        return out

    def current_row(self) -> Row | None:
        idx = self.selectionModel().currentIndex()
        row = idx.data(RowRole) if idx.isValid() else None
        return row if isinstance(row, Row) else None

    def select_key(self, key: RowKey) -> bool:
        src_row = self.table_model.row_of(key)
        if src_row < 0:
            return False
        idx = self.proxy.mapFromSource(self.table_model.index(src_row, 0))
        self.selectionModel().setCurrentIndex(
            idx,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.scrollTo(idx)
        return True

    def select_first(self, states: Collection[str]) -> bool:
        """Select the first row (in the view's order) whose state is one of ``states``."""
        for r in range(self.proxy.rowCount()):
            row = self.proxy.index(r, 0).data(RowRole)
            if row is not None and row.state in states:
                return self.select_key(row.key)
        return False

    def _emit_current(self) -> None:
        row = self.current_row()
        self.currentRowChanged.emit([row] if row is not None else [])

    @Slot()
    def _on_current(self) -> None:
        self._emit_current()

    @Slot()
    def _on_selection(self) -> None:
        self.rowsSelected.emit(self.selected_rows())
