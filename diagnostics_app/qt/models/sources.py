"""The source/track tree: sources at the top, the tracks that use each as children.

Each node carries the counts of its rows per state (a source counts all its rows, extraneous
included; a track the rows it requests), which the view paints as coloured badges. Sources
that only the store still knows (removed from the project, data left behind) appear as
"orphan" nodes so their extraneous rows stay reachable.

A source whose audio cannot be read (missing file, not audio, unreadable) carries the reason
(:attr:`TreeNode.error`, the session's one-liner): its node and its tracks' nodes show a warning
icon and the reason in the tooltip, and :meth:`SourceTreeModel.source_error` hands it to other
views (the plot lanes).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import (
    QIdentityProxyModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QIcon, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QApplication, QStyle

from diagnostics_app.core._gc import FREEZE_SOURCES, freeze_long_lived, gc_paused
from diagnostics_app.core.audio import AudioInfo
from diagnostics_app.core.diagnostics import Diagnosis, SourceStatus
from diagnostics_app.core.project import Project
from diagnostics_app.core.states import ISSUES, SEVERITY, STATES
from diagnostics_app.core.timefmt import format_time
from diagnostics_app.qt.models._diff import Roles, multi_data, proxy_multi_data
from diagnostics_app.qt.models.roles import CountsRole, KeyRole, KindRole, NodeRole, SortRole

Index = QModelIndex | QPersistentModelIndex


def warning_icon() -> QIcon:
    """The icon of a node whose audio cannot be read."""
    return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)


_NODE_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
SINGLE_UPDATES_MAX = 64  # nodes changed by one update: above, ranges (one full repaint)


@dataclass(frozen=True, slots=True)  # (slots: one object per node, not two: 40,000 nodes)
class TreeNode:
    kind: str  # "source" | "track" | "orphan"
    id: str
    name: str
    source_id: str
    counts: Mapping[str, int] = field(default_factory=dict)
    tooltip: str = ""
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind if self.kind != "orphan" else "source", self.id)

    @property
    def issues(self) -> int:
        return sum(n for s, n in self.counts.items() if s in ISSUES)

    def badge_text(self) -> str:
        return ", ".join(f"{self.counts[s]} {s}" for s in SEVERITY if self.counts.get(s))


Tree = list[tuple[TreeNode, list[TreeNode]]]
Shape = list[tuple[tuple[str, str], list[tuple[str, str]]]]


class BuiltTree(list[tuple[TreeNode, list[TreeNode]]]):
    """A :data:`Tree` as :func:`build_tree` makes it in the diagnosis worker, carrying what the
    model needs on a reset, made there too: its shape and the item skeleton (one
    :class:`QStandardItem` per node, taken by the first model it is shown in)."""

    shape: Shape
    items: list[QStandardItem] | None
    # every node's fields as plain tuples, in order (sources, each followed by its tracks),
    # and each one's (parent row or -1, row): two trees of one shape are compared in C when
    # nothing changed, in one pass of tuples otherwise (comparing 40,000 nodes one by one
    # took ~0.2 s of the GUI thread per re-derivation)
    facts: list[tuple[Any, ...]]
    positions: list[tuple[int, int]]
    where: dict[tuple[str, str], tuple[int, int]]  # a node's key -> its first position


def _skeleton(tree: Tree) -> list[QStandardItem]:
    """One item per node, nodes' flags set, tracks under their source: the structure the view
    lays out in C++ (a Python model answered ~4 calls per source to each layout: ~0.5 s at
    20,000 sources on the GUI thread). Items hold no data: :meth:`SourceTreeModel.data` reads
    the nodes. Not in any model yet, so any thread may build them."""
    out = []
    for _, children in tree:
        item = QStandardItem()
        item.setFlags(_NODE_FLAGS)
        if children:
            kids = []
            for _ in children:
                kid = QStandardItem()
                kid.setFlags(_NODE_FLAGS)
                kids.append(kid)
            item.appendRows(kids)
        out.append(item)
    return out


def _counts(rows: Sequence[Any]) -> dict[str, int]:
    # a plain dict, not a Counter: Counter's constructor asks isinstance(_, Mapping) (an ABC
    # check) and was a quarter of building a 20,000-source tree
    c: dict[str, int] = {}
    for r in rows:
        c[r.state] = c.get(r.state, 0) + 1
    return {s: c[s] for s in STATES if s in c}


def build_tree(
    project: Project,
    diagnosis: Diagnosis,
    info: Callable[[str], AudioInfo | None],
    status: Callable[[str], SourceStatus],
) -> Tree:
    """The nodes to show, from the project and the one diagnosis. Built in one pause of the
    cyclic collector; a large tree of a new shape is then frozen (see :func:`_freeze_new`)."""
    with gc_paused():
        built = _build_tree(project, diagnosis, info, status)
        _freeze_new(built)
    return built


_frozen_shape: list[Shape] = []  # the shape of the tree last frozen (see _freeze_new)


def _freeze_new(tree: BuiltTree) -> None:
    """Freeze a large tree of a shape not frozen before (core._gc.freeze_long_lived): built
    anew after each edit that adds or removes a node, it lives until the next such edit, and
    at 20,000 sources each full collection traversed its ~200,000 objects again (~100-190 ms
    with the GIL held). Counts changing (every re-derivation) keep the shape: not frozen."""
    if len(tree) < FREEZE_SOURCES or (_frozen_shape and _frozen_shape[0] == tree.shape):
        return
    _frozen_shape[:] = [tree.shape]
    freeze_long_lived()


def _build_tree(
    project: Project,
    diagnosis: Diagnosis,
    info: Callable[[str], AudioInfo | None],
    status: Callable[[str], SourceStatus],
) -> BuiltTree:
    tree: Tree = []
    for src in project.sources:
        st = status(src.id)
        ai = info(src.id) if st.error is None else None
        # (the header's path is the project's, already built: building 20,000 again was slow)
        path = ai.path if ai is not None else project.audio_path(src)
        if ai is not None:
            facts = f"{ai.sample_rate} Hz · {ai.channels} ch · {format_time(ai.duration, 2) if ai.duration is not None else '?'} · {ai.format}/{ai.subtype}"
        else:  # the reason is the tooltip's last line (see SourceTreeModel.data)
            facts = "cannot be read" + ("" if st.error else ": unreadable")
        tracks = project.tracks_of(src.id)
        tip = f"<b>{src.id}</b><br>{path}<br>{facts}<br>tracks: {', '.join(t.name for t in tracks) or 'none'}"
        node = TreeNode(
            "source", src.id, src.id, src.id, _counts(diagnosis.for_source(src.id)), tip, st.error
        )
        children = []
        for t in tracks:
            rows = diagnosis.for_track(t.id)
            ttip = f"<b>{t.name}</b> ({t.id})<br>source {src.id}: {path}<br>{facts}<br>{len(t.requests)} request(s)"
            children.append(TreeNode("track", t.id, t.name, src.id, _counts(rows), ttip, st.error))
        tree.append((node, children))
    known = {s.id for s in project.sources}
    orphans: dict[str, list[Any]] = {}
    for r in diagnosis.rows:
        if r.key.source not in known:
            orphans.setdefault(r.key.source, []).append(r)
    for sid, rows in orphans.items():
        tip = f"<b>{sid}</b><br>not in the project any more; its cached data is extraneous"
        tree.append((TreeNode("orphan", sid, f"{sid} (removed)", sid, _counts(rows), tip), []))
    return built_tree(tree)


def built_tree(tree: Tree) -> BuiltTree:
    """``tree`` with what a model needs of it made now (in the worker: :class:`BuiltTree`)."""
    built = BuiltTree(tree)
    built.shape = _shape(tree)
    built.items = _skeleton(tree)
    built.facts, built.positions, built.where = [], [], {}
    for i, (node, children) in enumerate(tree):
        built.facts.append(_facts(node))
        built.positions.append((-1, i))
        built.where.setdefault(node.key, (-1, i))
        for j, child in enumerate(children):
            built.facts.append(_facts(child))
            built.positions.append((i, j))
            built.where.setdefault(child.key, (i, j))
    return built


def _facts(n: TreeNode) -> tuple[Any, ...]:
    return (n.kind, n.id, n.name, n.source_id, tuple(n.counts.items()), n.tooltip, n.error)


def source_error(tree: Tree, source_id: str) -> str | None:
    """Why the source's audio cannot be read (the session's one-line reason: missing file, not
    audio, unreadable), or None when it can (or the source is unknown). For any view of the
    controller's ``tree`` (the plot lanes: ``source_error(controller.tree, source_id)``)."""
    for node, _ in tree:
        if node.kind == "source" and node.id == source_id:
            return node.error
    return None


def _shape(tree: Tree) -> Shape:
    if isinstance(tree, BuiltTree):
        return tree.shape
    return [(n.key, [c.key for c in cs]) for n, cs in tree]


class SourceTreeModel(QStandardItemModel):
    """Two levels: sources (and orphans), and their tracks. The structure is a skeleton of
    :class:`QStandardItem` (so ``index``, ``parent``, ``rowCount``, ``hasChildren`` and
    ``flags``, asked for every node at each layout, are answered in C++); the data is the
    nodes', answered by :meth:`data` (asked only for the rows painted)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setColumnCount(1)
        self.invisibleRootItem().setFlags(Qt.ItemFlag.ItemIsDropEnabled)
        self._tree: Tree = []
        self._shape: Shape = []

    # -- feeding ----------------------------------------------------------------------------

    def set_tree(self, tree: Tree) -> bool:
        """Show ``tree``. The same nodes in the same order (the usual case: counts changed)
        are updated in place (``dataChanged`` for the nodes that differ: selection, expansion
        and scroll position stay); anything else resets the model. Returns True on a reset."""
        if tree is self._tree:
            return False
        shape = _shape(tree)
        if shape != self._shape:
            items = tree.items if isinstance(tree, BuiltTree) else None
            if isinstance(tree, BuiltTree):
                tree.items = None  # items belong to one model
            self.beginResetModel()
            # the skeleton is swapped while the views wait for the reset: no row signal
            # reaches them (nor the filter proxy: it would ask its Python filter per row)
            blocked = self.blockSignals(True)
            try:
                root = self.invisibleRootItem()
                root.removeRows(0, root.rowCount())
                root.appendRows(items if items is not None else _skeleton(tree))
            finally:
                self.blockSignals(blocked)
            self._tree = tree
            self._shape = shape
            self.endResetModel()
            return True
        old = self._tree
        self._tree = tree
        changed: list[tuple[int, int]] = []  # (parent row or -1, row)
        if isinstance(tree, BuiltTree) and isinstance(old, BuiltTree):
            if tree.facts == old.facts:
                return False
            changed = [
                at for at, a, b in zip(tree.positions, tree.facts, old.facts, strict=True) if a != b
            ]
        else:
            for i, ((n_new, c_new), (n_old, c_old)) in enumerate(zip(tree, old, strict=True)):
                if n_new != n_old:
                    changed.append((-1, i))
                changed.extend(
                    (i, j) for j, (a, b) in enumerate(zip(c_new, c_old, strict=True)) if a != b
                )
        if len(changed) > SINGLE_UPDATES_MAX:  # a broad change: one repaint of the view
            self._emit_ranges(changed)
            return False
        for parent_row, row in changed:
            # one index per signal: views repaint just that row (a range repaints them all)
            parent = self.index(parent_row, 0) if parent_row >= 0 else QModelIndex()
            idx = self.index(row, 0, parent)
            self.dataChanged.emit(idx, idx)
        return False

    def _emit_ranges(self, changed: list[tuple[int, int]]) -> None:
        by_parent: dict[int, list[int]] = {}
        for parent_row, row in changed:
            by_parent.setdefault(parent_row, []).append(row)
        for parent_row, rows in by_parent.items():
            parent = self.index(parent_row, 0) if parent_row >= 0 else QModelIndex()
            self.dataChanged.emit(self.index(rows[0], 0, parent), self.index(rows[-1], 0, parent))

    def node(self, index: Index) -> TreeNode | None:
        if not index.isValid() or index.model() is not self:
            return None
        parent = index.parent()
        row = index.row()
        if not parent.isValid():
            return self._tree[row][0] if row < len(self._tree) else None
        p = parent.row()
        if p >= len(self._tree):
            return None
        children = self._tree[p][1]
        return children[row] if row < len(children) else None

    def index_of(self, key: tuple[str, str]) -> QModelIndex:
        if isinstance(self._tree, BuiltTree):  # (a walk of 40,000 nodes: ~15 ms a lookup)
            try:
                at = self._tree.where.get(key)
            except TypeError:  # an unhashable key (not a node's key) names no node
                at = None
            if at is None:
                return QModelIndex()
            parent_row, row = at
            if parent_row < 0:
                return self.index(row, 0)
            return self.index(row, 0, self.index(parent_row, 0))
        for i, (n, cs) in enumerate(self._tree):
            if n.key == key:
                return self.index(i, 0)
            for j, c in enumerate(cs):
                if c.key == key:
                    return self.index(j, 0, self.index(i, 0))
        return QModelIndex()

    def nodes(self) -> list[TreeNode]:
        return [x for n, cs in self._tree for x in (n, *cs)]

    def source_error(self, source_id: str) -> str | None:
        """:func:`source_error` of the tree shown."""
        return source_error(self._tree, source_id)

    # -- the model interface ------------------------------------------------------------------

    def multiData(self, index: Index, roleDataSpan: Roles) -> None:
        multi_data(self, index, roleDataSpan)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self.node(index)
        if node is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return node.name
        if role == Qt.ItemDataRole.ToolTipRole:
            badges = node.badge_text() or "no rows"
            return f"{node.tooltip}<br>{badges}" + (
                f"<br><span style='color:#c62828'>⚠ {html.escape(node.error)}</span>"
                "<br><i>Right-click the source: Locate… points it at the file</i>"
                if node.error
                else ""
            )
        if role == Qt.ItemDataRole.DecorationRole:
            return warning_icon() if node.error else None
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{node.name}: {node.badge_text() or 'no rows'}"
        if role == KeyRole:
            return node.key
        if role == KindRole:
            return node.kind
        if role == CountsRole:
            return dict(node.counts)
        if role == NodeRole:
            return node
        if role == SortRole:
            return node.name.lower()
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and section == 0
        ):
            return "Sources and tracks"
        return None


class UnfilteredProxy(QIdentityProxyModel):
    """The tree as it is (no filter on): what the view shows then. Structure in C++; the data
    of the rows painted from the model, all roles in one call."""

    def multiData(self, index: Index, roleDataSpan: Roles) -> None:
        proxy_multi_data(self, index, roleDataSpan)


class SourceFilterProxy(QSortFilterProxyModel):
    """A text filter on source and track names, and an "issues only" switch."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._issues_only = False

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._text = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_issues_only(self, on: bool) -> None:
        self.beginFilterChange()
        self._issues_only = on
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def multiData(self, index: Index, roleDataSpan: Roles) -> None:
        proxy_multi_data(self, index, roleDataSpan)

    @property
    def filtering(self) -> bool:
        return bool(self._text) or self._issues_only

    def _node(self, row: int, parent: Index) -> TreeNode | None:
        model = self.sourceModel()
        assert isinstance(model, SourceTreeModel)
        return model.node(model.index(row, 0, parent))

    def _matches(self, node: TreeNode) -> bool:
        return not self._text or self._text in node.name.lower() or self._text in node.id.lower()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if not self._text and not self._issues_only:
            return True  # no filter: every node (a reset of 10,000 nodes asks for each)
        node = self._node(source_row, source_parent)
        if node is None:
            return False
        if self._issues_only and not node.issues:
            return False
        if node.kind == "track":
            parent = self._node(source_parent.row(), QModelIndex())
            return self._matches(node) or (parent is not None and self._matches(parent))
        if self._matches(node):
            return True
        model = self.sourceModel()
        me = model.index(source_row, 0, source_parent)
        for j in range(model.rowCount(me)):
            child = self._node(j, me)
            if (
                child is not None
                and self._matches(child)
                and (not self._issues_only or child.issues)
            ):
                return True
        return False
