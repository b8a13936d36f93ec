"""Models of the explain panel: the reasons (old → new) and both fingerprints, field by field.

Which fields differ and how a value reads are :mod:`diagnostics_app.core.explain`'s, the same
as ``diagnostics-app explain``'s."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from diagnostics_app.core.compare_rules import Comparison, clock
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.explain import compare, format_value
from diagnostics_app.core.fingerprint import frames_text
from diagnostics_app.core.timefmt import format_time

Index = QModelIndex | QPersistentModelIndex
_DIFF_BG = QColor(255, 224, 178)  # light orange: a field that differs


class _Table(QAbstractTableModel):
    HEADERS: tuple[str, ...] = ()
    LIMIT = 60  # characters shown in a cell (the tooltip has the full value)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[
            tuple[str, Any, Any, bool]
        ] = []  # (input, stored/old, current/new, differs)

    def _set(self, items: list[tuple[str, Any, Any, bool]]) -> None:
        self.beginResetModel()
        self._items = items
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (
            not index.isValid()
            or not 0 <= index.row() < len(self._items)
            or not 0 <= index.column() < len(self.HEADERS)
        ):
            return None
        name, old, new, differs = self._items[index.row()]
        col = index.column()
        value = (name, old, new)[col]
        if role == Qt.ItemDataRole.DisplayRole:
            return value if col == 0 else format_value(value, self.LIMIT)
        if role == Qt.ItemDataRole.ToolTipRole and col > 0:
            return format_value(value, 2000)
        if role == Qt.ItemDataRole.BackgroundRole and differs:
            return _DIFF_BG
        if role == Qt.ItemDataRole.ForegroundRole and differs:
            return QColor("#000000")
        if role == Qt.ItemDataRole.FontRole and differs:
            font = QFont()
            font.setBold(True)
            return font
        return None

    def items(self) -> list[tuple[str, Any, Any, bool]]:
        return list(self._items)


class ReasonsModel(_Table):
    """Why a row is stale: one line per input that changed, old → new."""

    HEADERS = ("Input", "Old (stored)", "New (current)")
    LIMIT = 240  # wrapped: reasons are the point of the panel

    def set_row(self, row: Row | None) -> None:
        self._set([(r.input, r.old, r.new, True) for r in (row.reasons if row else ())])


class FingerprintModel(_Table):
    """The full stored and current fingerprints side by side; differing fields highlighted."""

    HEADERS = ("Input", "Stored fingerprint", "Current fingerprint")

    def set_row(self, row: Row | None) -> None:
        fields = compare(row.stored, row.current) if row is not None else ()
        self._set([(f.input, f.stored, f.current, f.differs) for f in fields])


RANGES_SHOWN = 20  # ranges the panel lists (the JSON has them all)


def ranges_lines(row: Row | None) -> tuple[str, ...]:
    """Where the audio changed, for the panel: one line per changed time range of the row's
    ``audio.content`` reason, then the frames they affect; none when no range is known (or a
    whole-file change: another sample rate or channel count)."""
    reason = next((r for r in (row.reasons if row else ()) if r.ranges is not None), None)
    if reason is None or reason.ranges is None:
        return ()
    if not reason.ranges:
        return ("no decoded sample changed (only the file's bytes)",)
    lines = [f"changed {format_time(a)}–{format_time(b)}" for a, b in reason.ranges[:RANGES_SHOWN]]
    if len(reason.ranges) > RANGES_SHOWN:
        lines.append(f"+{len(reason.ranges) - RANGES_SHOWN} more")
    frames = reason.affected_frames
    if frames == "all":
        lines.append("affects every frame (this calculator's reach is unbounded)")
    elif isinstance(frames, tuple):
        lines.append(frames_text(frames))
    return tuple(lines)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def comparison_lines(c: Comparison) -> list[tuple[str, str]]:
    """The statistics of a comparison with the previous version, as (name, value) lines for
    the Why panel: the verdict, what was compared, the differences and where they are."""
    lines = [
        ("verdict", c.verdict),
        ("frames compared", str(c.frames_compared)),
        ("max abs diff", _number(c.max_abs_diff)),
        ("RMS abs diff", _number(c.rms_abs_diff)),
    ]
    if c.max_rel_diff is not None:
        lines.append(("max rel diff", _number(c.max_rel_diff)))
    if c.correlation is not None:
        lines.append(("correlation", f"{c.correlation:.6f}"))
    lines.append(
        ("beyond tolerance", f"{c.frames_beyond} frames ({c.share_beyond:.1%}), {c.tolerance}")
    )
    if c.first_diff_s is not None:
        lines.append(("first differs at", clock(c.first_diff_s)))
    if c.worst_diff_s is not None:
        lines.append(("worst at", clock(c.worst_diff_s)))
    if c.ranges:
        shown = [f"{clock(a)}–{clock(b)}" for a, b in c.ranges[:RANGES_SHOWN]]
        more = c.ranges_total - len(shown)
        text = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
        lines.append((f"ranges ({c.ranges_total})", text))
    if c.nonfinite_mismatches:
        lines.append(("NaN/inf on one side", str(c.nonfinite_mismatches)))
    if c.note:
        lines.append(("note", c.note))
    return lines
