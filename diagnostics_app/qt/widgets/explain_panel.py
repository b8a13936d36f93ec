"""Why the current row has its state: the state and message, the reasons (old → new) and the
stored and current fingerprints side by side."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from diagnostics_app.core.compare_rules import Comparison
from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.core.explain import format_value
from diagnostics_app.core.states import ACTIVE_JOB
from diagnostics_app.qt.models.descriptors import profile_text, version_text
from diagnostics_app.qt.models.explain import (
    FingerprintModel,
    ReasonsModel,
    comparison_lines,
    ranges_lines,
)
from diagnostics_app.qt.theme import STATE_COLORS, STATE_HELP


def _table(model: ReasonsModel | FingerprintModel, parent: QWidget) -> QTableView:
    view = QTableView(parent)
    view.setModel(model)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    view.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setWordWrap(isinstance(model, ReasonsModel))
    return view


class ExplainPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("explainPanel")
        self.title = QLabel(self)
        self.title.setObjectName("explainTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_label = QLabel(self)
        self.state_label.setObjectName("explainState")
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # compare mode: the row compared with its previous version (shown while it is current)
        self.compare_label = QLabel(self)
        self.compare_label.setObjectName("explainCompare")
        self.compare_label.setWordWrap(True)
        self.compare_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.compare_label.hide()
        self._comparison: tuple[RowKey, Comparison] | None = None
        self.reasons_model = ReasonsModel(self)
        self.fingerprint_model = FingerprintModel(self)
        self.reasons_view = _table(self.reasons_model, self)
        self.reasons_view.setObjectName("explainReasons")
        self.fingerprint_view = _table(self.fingerprint_model, self)
        self.fingerprint_view.setObjectName("explainFingerprints")
        self.reasons_caption = QLabel("<b>What changed</b>", self)
        # where the audio changed (core.ranges): the changed time ranges, the frames touched
        self.ranges_label = QLabel(self)
        self.ranges_label.setObjectName("explainRanges")
        self.ranges_label.setWordWrap(True)
        self.ranges_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fp_caption = QLabel("<b>Fingerprints</b> (inputs of the cached data vs. now)", self)
        split = QSplitter(Qt.Orientation.Vertical, self)
        top = QWidget(split)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.reasons_caption)
        tl.addWidget(self.reasons_view)
        tl.addWidget(self.ranges_label)
        bottom = QWidget(split)
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.fp_caption)
        bl.addWidget(self.fingerprint_view)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.state_label)
        layout.addWidget(self.compare_label)
        layout.addWidget(split, 1)
        self.row: Row | None = None
        self._shown = False
        self.set_row(None)

    def set_row(self, row: Row | None) -> None:
        if self._shown and row == self.row:
            return  # the same row again (the table re-announces its current row on updates)
        self._shown = True
        self.row = row
        self._show_comparison()
        self.reasons_model.set_row(row)
        self.fingerprint_model.set_row(row)
        has_reasons = bool(row and row.reasons)
        lines = ranges_lines(row)
        self.ranges_label.setText("<br>".join(html.escape(line) for line in lines))
        self.ranges_label.setVisible(bool(lines))
        self.reasons_caption.setVisible(has_reasons)
        self.reasons_view.setVisible(has_reasons)
        if has_reasons:
            view = self.reasons_view
            view.resizeRowsToContents()
            rows_h = sum(view.rowHeight(r) for r in range(self.reasons_model.rowCount()))
            view.setMaximumHeight(
                view.horizontalHeader().height() + rows_h + 2 * view.frameWidth() + 2
            )
        if row is None:
            self.title.setText("<i>Select a row to see why it has its state</i>")
            self.state_label.setText("")
            return
        k = row.key
        self.title.setText(
            f"<b>{html.escape(k.source)} / {html.escape(k.feature)}</b> &nbsp; {html.escape(k.calculator or '—')} "
            f"{html.escape(version_text(row))}, profile {html.escape(profile_text(row))}"
        )
        color = STATE_COLORS.get(row.state, "#000")
        text = f"<span style='color:{color}; font-weight:bold'>{row.state.upper()}</span> — {html.escape(STATE_HELP.get(row.state, ''))}"
        if row.state == "running" and row.progress is not None:
            text += f" ({row.progress * 100:.0f}%)"
        if row.state == "stale" and row.reasons:
            n = len(row.reasons)
            text += f"<br>{n} input{'s' if n != 1 else ''} changed: {html.escape(', '.join(r.input for r in row.reasons))}"
        elif row.state in ACTIVE_JOB and row.message:
            text += f"<br>job: {html.escape(row.message)}"
        elif row.message:
            text += f"<br>{html.escape(row.message)}"
        if row.note:  # e.g. "regenerated — identical to the previous version"
            text += f"<br><i>{html.escape(row.note)}</i>"
        text += f"<br><small>tracks: {html.escape(', '.join(row.tracks) or 'none')}</small>"
        self.state_label.setText(text)

    def set_comparison(self, key: RowKey | None, comparison: Comparison | None = None) -> None:
        """The row ``key`` compared with its previous version (shown while it is the panel's
        row); None: no comparison."""
        self._comparison = None if key is None or comparison is None else (key, comparison)
        self._show_comparison()

    def _show_comparison(self) -> None:
        shown = self._comparison
        if shown is None or self.row is None or self.row.key != shown[0]:
            self.compare_label.hide()
            self.compare_label.setText("")
            return
        cells = "".join(
            f"<tr><td>{html.escape(name)}</td><td>&nbsp;<b>{html.escape(value)}</b></td></tr>"
            for name, value in comparison_lines(shown[1])
        )
        self.compare_label.setText(
            f"<b>Compared with the previous version</b><table>{cells}</table>"
        )
        self.compare_label.show()

    def text(self) -> str:
        """Everything the panel says, as plain text (for QA scripts and tests)."""
        parts = [self.title.text(), self.state_label.text()]
        if self.compare_label.isVisibleTo(self):
            parts.append(self.compare_label.text())
        parts += [
            f"{name} {format_value(old)} → {format_value(new)}"
            for name, old, new, _ in self.reasons_model.items()
        ]
        parts += ranges_lines(self.row)
        return "\n".join(parts)
