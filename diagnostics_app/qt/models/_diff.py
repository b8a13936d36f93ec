"""Keyed in-place updates of a flat list model: the one helper every table model uses; and
:func:`multi_data` / :func:`proxy_multi_data`, one Python call per painted cell."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractProxyModel,
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QPersistentModelIndex,
)

Roles = QModelRoleDataSpan | QModelRoleData  # what Qt hands multiData

T = TypeVar("T")


CELL_UPDATES_MAX = 24  # cells changed by one update: above, one range (one full repaint)


def update_rows(
    model: QAbstractItemModel,
    items: list[T],
    new: Sequence[T],
    key: Callable[[T], Hashable],
    columns: int,
    cells: Callable[[T], Sequence[Any]] | None = None,
) -> None:
    """Make ``items`` (the model's backing list) equal ``new`` by key: remove what went,
    change what stayed in place (dataChanged), append what came. Order of survivors is kept.

    ``cells(item)``: what each column shows. With it, a changed item announces only the cells
    whose content differs, one index per signal, so views repaint those cells alone (while an
    analysis runs, its progress cells) instead of the whole viewport a range would repaint;
    beyond :data:`CELL_UPDATES_MAX` cells, one range."""
    parent = QModelIndex()
    new_by_key = {key(x): x for x in new}
    # remove, bottom-up, in contiguous runs
    i = len(items) - 1
    while i >= 0:
        if key(items[i]) in new_by_key:
            i -= 1
            continue
        j = i
        while j - 1 >= 0 and key(items[j - 1]) not in new_by_key:
            j -= 1
        model.beginRemoveRows(parent, j, i)
        del items[j : i + 1]
        model.endRemoveRows()
        i = j - 1
    # change in place
    first = last = -1
    changed: list[tuple[int, int]] = []  # (row, column)
    for idx, old in enumerate(items):
        fresh = new_by_key[key(old)]
        if fresh != old:
            items[idx] = fresh
            first = idx if first < 0 else first
            last = idx
            if cells is not None and len(changed) <= CELL_UPDATES_MAX:
                before, after = cells(old), cells(fresh)
                changed.extend((idx, c) for c in range(columns) if before[c] != after[c])
    if first >= 0 and columns > 0:
        if cells is not None and len(changed) <= CELL_UPDATES_MAX:
            for row, column in changed:
                cell = model.index(row, column, parent)
                model.dataChanged.emit(cell, cell)
        else:
            model.dataChanged.emit(
                model.index(first, 0, parent), model.index(last, columns - 1, parent)
            )
    # append
    have = {key(x) for x in items}
    added = [x for x in new if key(x) not in have]
    if added:
        model.beginInsertRows(parent, len(items), len(items) + len(added) - 1)
        items.extend(added)
        model.endInsertRows()


def multi_data(
    model: QAbstractItemModel,
    index: QModelIndex | QPersistentModelIndex,
    roles: Roles,
) -> None:
    """``multiData`` of a Python model: every role a delegate asks for while painting a cell
    (display, decoration, font, colours, alignment...) in one call from Qt into Python, each
    answered by the model's own ``data()``. Qt's default makes one call into Python per role,
    and each such call has to take the GIL again: while analysis threads hold it, painting a
    table of Python-backed cells waited for it role by role."""
    items: Iterable[QModelRoleData] = (
        [roles] if isinstance(roles, QModelRoleData) else roles  # type: ignore[assignment]
    )
    for item in items:  # (Qt reuses the span: a role without a value must be cleared)
        value = model.data(index, item.role())
        if value is None:
            item.clearData()
        else:
            item.setData(value)


def proxy_multi_data(
    proxy: QAbstractProxyModel,
    index: QModelIndex | QPersistentModelIndex,
    roles: Roles,
) -> None:
    """``multiData`` of a proxy over a Python model: Qt's proxies do not pass it on."""
    source = proxy.sourceModel()
    if source is not None and index.isValid():
        source.multiData(proxy.mapToSource(index), roles)
