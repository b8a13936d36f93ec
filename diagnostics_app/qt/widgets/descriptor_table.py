"""The centre table: one line per descriptor row of the selection, sortable, multi-select."""

from __future__ import annotations

from collections.abc import Collection

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolTip,
    QWidget,
)

from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.qt.models.descriptors import (
    COL_CALC,
    COL_FEATURE,
    COL_PROFILE,
    COL_REASON,
    COL_SIZE,
    COL_STATE,
    COL_TRACKS,
    COL_UPDATED,
    COL_VERSION,
    DescriptorFilterProxy,
    DescriptorTableModel,
)
from diagnostics_app.qt.models.roles import RowRole
from diagnostics_app.qt.widgets.delegates import (
    LeftElidingDelegate,
    ProgressDelegate,
    elided_tooltip,
)

# When the columns' contents are wider than the table, these give way (elided, the full text
# in the tooltip), the widest first: long names are what make a table too wide. First down to
# floors that still read well, then (a narrow window) to the least that says anything. The
# short columns (version, state, updated, size) keep their width and Reason takes what is
# left, never less than REASON_MIN.
ELASTIC_TIERS = (
    {COL_FEATURE: 90, COL_CALC: 76, COL_PROFILE: 120, COL_TRACKS: 40},
    {COL_FEATURE: 56, COL_CALC: 40, COL_PROFILE: 56, COL_TRACKS: 32},
)
REASON_MIN = 110
CAPS = {COL_REASON: 400, COL_STATE: 150}
CAP = 180


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
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Reason is the one long text: it takes the room the others leave
        header.setSectionResizeMode(COL_REASON, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(32)
        self.setItemDelegateForColumn(COL_STATE, ProgressDelegate(self))
        # "core.spectrogram" cut to "…spectrogram", not "core.spe…"
        self.setItemDelegateForColumn(COL_CALC, LeftElidingDelegate(self))
        self._wanted = {
            COL_FEATURE: 90,
            COL_CALC: 110,
            COL_VERSION: 54,
            COL_PROFILE: 90,
            COL_STATE: 110,
            COL_TRACKS: 70,
            COL_UPDATED: 90,
            COL_SIZE: 62,
        }
        self._fitting = False
        header.sectionResized.connect(self._on_section_resized)
        self._apply_fit()
        self.selectionModel().currentRowChanged.connect(self._on_current)
        self.selectionModel().selectionChanged.connect(self._on_selection)
        self._current_key: RowKey | None = None

    def set_rows(self, rows: list[Row]) -> None:
        self.table_model.set_rows(rows)
        self._emit_current()

    def fit_columns(self) -> None:
        """Size the columns to their contents, capped (once per selection, not on every
        update: that would cost a pass over all rows each time), then fit them in the
        table's width (:meth:`_apply_fit`, also run when the table is resized)."""
        for col in range(self.table_model.columnCount()):
            if col == COL_REASON:
                continue
            # the header's label, not its sort arrow's room too: "Version" over "v1" would
            # take twice what the column needs
            label = str(self.table_model.headerData(col, Qt.Orientation.Horizontal) or "")
            hint = max(
                self.sizeHintForColumn(col), self.fontMetrics().horizontalAdvance(label) + 14
            )
            floor = 100 if col == COL_STATE else 0  # room for "running 100%" in its bar
            self._wanted[col] = max(floor, min(hint + 6, CAPS.get(col, CAP)))
        self._apply_fit()

    def fitted_widths(self, available: int) -> dict[int, int]:
        """Each column's width (Reason's excepted) for a table ``available`` pixels wide: as
        wanted when they all fit beside Reason; else the elastic columns give way, the
        widest first, down to their floors."""
        widths = dict(self._wanted)
        excess = sum(widths.values()) + REASON_MIN - available
        for floors in ELASTIC_TIERS:
            while excess > 0:
                give = [c for c in floors if widths[c] > floors[c]]
                if not give:
                    break
                widest = max(give, key=lambda c: widths[c])
                others = [widths[c] for c in give if c != widest]
                # down to the next widest (or the floor), at most by what is still too much
                target = max(max(others, default=0), floors[widest])
                cut = min(excess, widths[widest] - target) if widths[widest] > target else 1
                widths[widest] -= cut
                excess -= cut
        return widths

    def _apply_fit(self) -> None:
        self._fitting = True
        try:
            for col, width in self.fitted_widths(self.viewport().width()).items():
                if self.columnWidth(col) != width:
                    self.setColumnWidth(col, width)
        finally:
            self._fitting = False

    @Slot(int, int, int)
    def _on_section_resized(self, col: int, _old: int, new: int) -> None:
        if not self._fitting and col in self._wanted:
            self._wanted[col] = new  # the user's width wins until the next selection

    def cell_tooltip(self, index: QModelIndex) -> str | None:
        """The full text of a cell the column cuts, above the model's tooltip."""
        option = QStyleOptionViewItem()
        option.initFrom(self)
        option.rect = self.visualRect(index)
        delegate = self.itemDelegateForIndex(index)
        if not isinstance(delegate, QStyledItemDelegate):
            return None
        return elided_tooltip(delegate, option, index)

    def viewportEvent(self, event: QEvent) -> bool:
        # the viewport, not the view: a vertical scrollbar coming or going resizes only it
        if event.type() == QEvent.Type.Resize:
            self._apply_fit()
        elif event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            index = self.indexAt(event.pos())
            tip = self.cell_tooltip(index) if index.isValid() else None
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.viewport(), self.visualRect(index))
            else:
                QToolTip.hideText()
            return True
        return super().viewportEvent(event)

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
