"""Custom item data roles shared by models and delegates."""

from PySide6.QtCore import Qt

_U = Qt.ItemDataRole.UserRole.value

KeyRole = _U + 1  # the item's identity (RowKey, ("source", id), job id...)
SortRole = _U + 2  # a value that sorts naturally (numbers as numbers)
StateRole = _U + 3  # a descriptor or job state string
ProgressRole = _U + 4  # 0..1 or None
CountsRole = _U + 5  # dict state -> count (source tree badges)
KindRole = _U + 6  # "source" | "track" | "orphan"
RowRole = _U + 7  # the core Row / JobRecord behind the item
NodeRole = _U + 8  # the TreeNode behind a source tree item (its name and counts at once)
