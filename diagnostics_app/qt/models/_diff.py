"""Keyed in-place updates of a flat list model: the one helper every table model uses."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from PySide6.QtCore import QAbstractItemModel, QModelIndex

T = TypeVar("T")


def update_rows(
    model: QAbstractItemModel,
    items: list[T],
    new: Sequence[T],
    key: Callable[[T], Hashable],
    columns: int,
) -> None:
    """Make ``items`` (the model's backing list) equal ``new`` by key: remove what went,
    change what stayed in place (dataChanged), append what came. Order of survivors is kept."""
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
    for idx, old in enumerate(items):
        fresh = new_by_key[key(old)]
        if fresh != old:
            items[idx] = fresh
            first = idx if first < 0 else first
            last = idx
    if first >= 0 and columns > 0:
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


def json_short(value: Any, limit: int = 60) -> str:
    import json

    if value is None:
        return "—"
    if _is_tempo_map(value):
        text = "; ".join(f"{seg['time']:g} s: {seg['bpm']:g} BPM" for seg in value)
    else:
        text = (
            value
            if isinstance(value, str)
            else json.dumps(value, ensure_ascii=False, sort_keys=True)
        )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_tempo_map(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and set(v) == {"time", "bpm"} for v in value)
    )
