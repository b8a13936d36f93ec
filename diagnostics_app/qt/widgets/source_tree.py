"""The left panel: a filter box, an "issues only" switch and the source/track tree.

Right-clicking a node asks for its source's context menu (``sourceMenuRequested``: the window
builds it); a node whose audio cannot be read is drawn with a warning icon before its name
(:class:`~diagnostics_app.qt.widgets.delegates.BadgeDelegate`).
"""

from __future__ import annotations

import os

from PySide6.QtCore import (
    QAbstractProxyModel,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLineEdit,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from diagnostics_app.core.library import AUDIO_SUFFIXES
from diagnostics_app.qt.models.roles import KeyRole, NodeRole
from diagnostics_app.qt.models.sources import (
    SourceFilterProxy,
    SourceTreeModel,
    Tree,
    UnfilteredProxy,
)
from diagnostics_app.qt.widgets.delegates import BadgeDelegate


def local_paths(urls: list[str]) -> list[str]:
    """The dropped files and folders that exist: which of them is audio is for
    ``core/library.py`` to say (by content, not only by extension), and it reports the rest."""
    return [u for u in urls if u and os.path.exists(u)]


# Above this many sources the tree opens collapsed: expanding 20,000 sources asks the Python
# model for every node (1.3 s on the GUI thread, bench/library.py); a source still opens by
# hand, and selecting a track (scrollTo) opens its source.
EXPAND_ALL_MAX = 2000


class SourceTreeView(QTreeView):
    """Accepts audio files and folders dropped from a file manager."""

    filesDropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourceTree")
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        take_dropped_paths(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        take_dropped_paths(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = take_dropped_paths(event)
        if paths:
            self.filesDropped.emit(paths)


def take_dropped_paths(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[str]:
    """The local files and folders a drag carries (those that exist), the event accepted when
    there are some and ignored otherwise: the drop rule of the tree and of the window."""
    mime = event.mimeData()
    urls = mime.urls() if mime.hasUrls() else []
    paths = local_paths([u.toLocalFile() for u in urls if u.isLocalFile()])
    if paths:
        event.acceptProposedAction()
    else:
        event.ignore()
    return paths


class SourceTreePanel(QWidget):
    """Emits ``selectionChanged(key)`` with ("source" | "track", id), or None."""

    selectionChanged = Signal(object)
    filesDropped = Signal(list)
    sourceMenuRequested = Signal(str, QPoint)  # source id (of the node or its track), global pos

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SourceTreeModel(self)
        # the view shows the model through the filter proxy only while a filter is on: its
        # filter is Python, asked for every node at each reset and layout (20,000 sources:
        # 40,000 calls on the GUI thread); unfiltered, a C++ identity proxy stands in
        self.filter_proxy = SourceFilterProxy(self)
        self.filter_proxy.setSourceModel(self.model)
        self.unfiltered = UnfilteredProxy(self)
        self.unfiltered.setSourceModel(self.model)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("sourceFilter")
        self.filter_edit.setPlaceholderText("Filter sources and tracks")
        self.filter_edit.setClearButtonEnabled(True)
        self.issues_only = QCheckBox("Issues only", self)
        self.issues_only.setObjectName("issuesOnly")
        self.issues_only.setToolTip("Show only sources and tracks with a row that is not ok")
        self.view = SourceTreeView(self)
        self.view.setModel(self.unfiltered)
        self.view.setItemDelegate(BadgeDelegate(self.view))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.setHeaderHidden(True)
        self.view.setUniformRowHeights(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setToolTip("Drop audio files or folders here to add them as sources")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.issues_only)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        self.filter_edit.textChanged.connect(self._on_filter)
        self.issues_only.toggled.connect(self._on_issues_only)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.view.filesDropped.connect(self.filesDropped)
        self.view.customContextMenuRequested.connect(self._on_context_menu)
        self._current: tuple[str, str] | None = None

    @property
    def proxy(self) -> QAbstractProxyModel:
        """The proxy the view shows (:attr:`filter_proxy` while a filter is on, else
        :attr:`unfiltered`): its indexes are the view's."""
        model = self.view.model()
        assert isinstance(model, QAbstractProxyModel)
        return model

    def _show_filtered(self, on: bool) -> None:
        want: QAbstractProxyModel = self.filter_proxy if on else self.unfiltered
        if self.view.model() is want:
            return
        old = self.view.selectionModel()
        self.view.setModel(want)  # (a new selection model: the selection is put back below)
        old.deleteLater()
        self.view.selectionModel().selectionChanged.connect(self._on_selection)

    def _expand(self) -> None:
        if self.proxy.rowCount() <= EXPAND_ALL_MAX:
            self.view.expandAll()

    def set_tree(self, tree: Tree) -> None:
        """Show new nodes; when only counts changed (the model updates in place) and no filter
        can have let new nodes in, nothing else is touched: no re-expansion, no re-selection
        (``expandAll`` over 10,000 nodes is a visible stall)."""
        keep = self._current
        reset = self.model.set_tree(tree)
        if not reset and not self.filter_proxy.filtering:
            return
        self._expand()
        if keep is not None and self.current_key() != keep:
            self.select(keep)

    def current_key(self) -> tuple[str, str] | None:
        idx = self.view.selectionModel().currentIndex()
        rows = self.view.selectionModel().selectedRows()
        if rows:
            idx = rows[0]
        if not idx.isValid() or not self.view.selectionModel().isSelected(idx):
            return None
        key = idx.data(KeyRole)
        return tuple(key) if key else None

    def select(self, key: tuple[str, str] | None) -> bool:
        if key is None:
            self.view.clearSelection()
            return True
        src = self.model.index_of(key)
        idx = self.proxy.mapFromSource(src) if src.isValid() else QModelIndex()
        if not idx.isValid():
            return False
        self.view.selectionModel().setCurrentIndex(
            idx,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.view.scrollTo(idx)
        return True

    @Slot()
    def _on_selection(self) -> None:
        key = self.current_key()
        if key is None or key == self._current:
            return  # a filter hiding the node keeps what is shown
        self._current = key
        self.selectionChanged.emit(key)

    @Slot(QPoint)
    def _on_context_menu(self, pos: QPoint) -> None:
        """A source's menu for a source or a track (a track's source); none for a removed
        source (its data is reached through its rows)."""
        node = self.view.indexAt(pos).data(NodeRole)
        if node is None or node.kind == "orphan":
            return
        self.sourceMenuRequested.emit(node.source_id, self.view.viewport().mapToGlobal(pos))

    @Slot(str)
    def _on_filter(self, text: str) -> None:
        self.filter_proxy.set_text(text)
        self._filter_changed()

    @Slot(bool)
    def _on_issues_only(self, on: bool) -> None:
        self.filter_proxy.set_issues_only(on)
        self._filter_changed()

    def _filter_changed(self) -> None:
        keep = self._current
        self._show_filtered(self.filter_proxy.filtering)
        self._expand()
        if keep is not None and self.current_key() != keep:
            self.select(keep)  # (hidden by the filter: nothing selected, what is shown stays)


__all__ = ["AUDIO_SUFFIXES", "SourceTreePanel", "SourceTreeView"]
