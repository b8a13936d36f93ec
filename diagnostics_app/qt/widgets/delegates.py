"""Item delegates: state badges in the source tree, inline progress bars, a cancel button."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QWidget,
)

from diagnostics_app.qt.models.roles import CountsRole, KeyRole, ProgressRole, StateRole
from diagnostics_app.qt.theme import BADGE_ORDER, STATE_GLYPHS, state_color

Index = QModelIndex | QPersistentModelIndex


class BadgeDelegate(QStyledItemDelegate):
    """Paints the node's name, then one coloured pill per state with its count."""

    PAD = 4

    def _badges(self, index: Index) -> list[tuple[str, int]]:
        counts = index.data(CountsRole) or {}
        return [(s, int(counts[s])) for s in BADGE_ORDER if counts.get(s)]

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        badges = self._badges(index)
        fm = QFontMetrics(opt.font)
        pills = [(s, f"{STATE_GLYPHS.get(s, '')} {n}") for s, n in badges]
        widths = [fm.horizontalAdvance(text) + 2 * self.PAD for _, text in pills]
        total = sum(widths) + self.PAD * len(widths)
        text = opt.text
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, opt.widget)
        name_rect = QRect(rect)
        name_rect.setRight(max(rect.left() + 20, rect.right() - total - self.PAD))
        painter.save()
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        painter.setFont(opt.font)
        painter.drawText(
            name_rect,
            int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
            fm.elidedText(text, Qt.TextElideMode.ElideRight, name_rect.width()),
        )
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        x = rect.right() - total + self.PAD
        h = min(rect.height() - 4, fm.height() + 2)
        y = rect.top() + (rect.height() - h) // 2
        for (state, label), w in zip(pills, widths, strict=True):
            pill = QRect(x, y, w, h)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(state_color(state))
            painter.drawRoundedRect(pill, h / 2, h / 2)
            painter.setPen(QColor("white"))
            painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), label)
            x += w + self.PAD
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        size = super().sizeHint(option, index)
        fm = QFontMetrics(option.font)
        extra = sum(
            fm.horizontalAdvance(f"{STATE_GLYPHS.get(s, '')} {n}") + 3 * self.PAD
            for s, n in self._badges(index)
        )
        return QSize(size.width() + extra + 8, max(size.height(), fm.height() + 8))


class ProgressDelegate(QStyledItemDelegate):
    """In the state/progress column: a progress bar while the row's job runs."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        progress = index.data(ProgressRole)
        if index.data(StateRole) != "running" or progress is None:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        text = opt.text
        opt.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        bar = QStyleOptionProgressBar()
        bar.rect = opt.rect.adjusted(2, 3, -2, -3)
        bar.minimum = 0
        bar.maximum = 1000
        bar.progress = int(max(0.0, min(1.0, float(progress))) * 1000)
        bar.text = text
        bar.textVisible = True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        bar.palette = QPalette(opt.palette)
        bar.palette.setColor(QPalette.ColorRole.Highlight, state_color("running"))
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, opt.widget)


class ButtonDelegate(QStyledItemDelegate):
    """A push button painted in the cell; a click emits ``clicked`` with the row's key."""

    clicked = Signal(object)

    def __init__(self, text: str, enabled: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = text
        self._enabled = enabled  # callable(index) -> bool, or None for always

    def _is_enabled(self, index: Index) -> bool:
        return bool(self._enabled(index)) if callable(self._enabled) else True

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        btn = QStyleOptionButton()
        btn.rect = option.rect.adjusted(2, 2, -2, -2)
        btn.text = self._text
        btn.state = QStyle.StateFlag.State_Raised
        if self._is_enabled(index):
            btn.state |= QStyle.StateFlag.State_Enabled
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_PushButton, btn, painter, widget)

    def editorEvent(
        self, event: QEvent, model: Any, option: QStyleOptionViewItem, index: Index
    ) -> bool:
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and option.rect.contains(event.position().toPoint())
            and self._is_enabled(index)
        ):
            self.clicked.emit(index.data(KeyRole))
            return True
        return super().editorEvent(event, model, option, index)

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        fm = QFontMetrics(option.font)
        return QSize(fm.horizontalAdvance(self._text) + 24, fm.height() + 10)
