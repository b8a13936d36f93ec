"""Item delegates: state badges in the source tree, inline progress bars, a cancel button."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QWidget,
)

from diagnostics_app.core.states import SEVERITY
from diagnostics_app.qt.models.roles import (
    CountsRole,
    KeyRole,
    NodeRole,
    ProgressRole,
    StateRole,
)
from diagnostics_app.qt.models.sources import warning_icon
from diagnostics_app.qt.theme import STATE_GLYPHS, state_color

Index = QModelIndex | QPersistentModelIndex


class BadgeDelegate(QStyledItemDelegate):
    """Paints the node's name, then one coloured pill per state with its count.

    The pills of a set of counts are drawn once into a pixmap (cached per counts, font and
    pixel ratio) and then only blitted: a repaint of the tree while an analysis runs costs a
    handful of painter calls per row instead of five per pill."""

    PAD = 4
    CACHE_SIZE = 512

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pills: OrderedDict[tuple[object, ...], QPixmap] = OrderedDict()

    def _badges(self, index: Index) -> tuple[tuple[str, int], ...]:
        counts = index.data(CountsRole) or {}
        return tuple((s, int(counts[s])) for s in SEVERITY if counts.get(s))

    def _pill_strip(
        self, badges: tuple[tuple[str, int], ...], font: QFont, ratio: float
    ) -> QPixmap:
        """All pills of ``badges`` side by side, PAD apart, on a transparent pixmap."""
        key = (badges, font.key(), ratio)
        strip = self._pills.get(key)
        if strip is not None:
            self._pills.move_to_end(key)
            return strip
        fm = QFontMetrics(font)
        labels = [(state, f"{STATE_GLYPHS.get(state, '')} {n}") for state, n in badges]
        widths = [fm.horizontalAdvance(text) + 2 * self.PAD for _, text in labels]
        h = fm.height() + 2
        width = sum(widths) + self.PAD * max(0, len(widths) - 1)
        strip = QPixmap(max(1, math.ceil(width * ratio)), max(1, math.ceil(h * ratio)))
        strip.setDevicePixelRatio(ratio)
        strip.fill(Qt.GlobalColor.transparent)
        painter = QPainter(strip)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(font)
        x = 0
        for (state, label), w in zip(labels, widths, strict=True):
            pill = QRect(x, 0, w, h)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(state_color(state))
            painter.drawRoundedRect(pill, h / 2, h / 2)
            painter.setPen(QColor("white"))
            painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), label)
            x += w + self.PAD
        painter.end()
        self._pills[key] = strip
        if len(self._pills) > self.CACHE_SIZE:
            self._pills.popitem(last=False)
        return strip

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        # one question to the model (the node: name and counts), not one per role: a repaint
        # of the tree while analysis threads hold the GIL waited for it role by role
        node = index.data(NodeRole)
        if node is None:
            super().paint(painter, option, index)
            return
        if node.error:  # a source whose audio cannot be read: a warning icon before the name
            option = self._paint_warning(painter, option)
        badges = tuple((s, int(node.counts[s])) for s in SEVERITY if node.counts.get(s))
        ratio = _ratio(painter)
        strip = self._pill_strip(badges, option.font, ratio) if badges else None
        total = (strip.deviceIndependentSize().width() + self.PAD) if strip is not None else 0.0
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        # the item's background (selection, hover) only: the text and pills are drawn here
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        opt = QStyleOptionViewItem(option)
        opt.features |= QStyleOptionViewItem.ViewItemFeature.HasDisplay
        rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
        name_rect = QRect(rect)
        name_rect.setRight(max(rect.left() + 20, rect.right() - int(total) - self.PAD))
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(option.palette.color(role))
        painter.setFont(option.font)
        painter.drawText(
            name_rect,
            int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
            option.fontMetrics.elidedText(
                node.name, Qt.TextElideMode.ElideRight, name_rect.width()
            ),
        )
        if strip is not None:
            size = strip.deviceIndependentSize()
            x = rect.right() - int(total) + self.PAD
            y = rect.top() + (rect.height() - int(size.height())) // 2
            painter.drawPixmap(QPointF(x, y), strip)

    def _paint_warning(
        self, painter: QPainter, option: QStyleOptionViewItem
    ) -> QStyleOptionViewItem:
        """Paint the warning icon (on the row's background) at the left of ``option.rect``;
        returns the option for the rest of the row, right of it."""
        size = option.decorationSize.height() or 16
        r = option.rect
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        painter.save()  # the icon's strip gets the row's background (selection, hover) too
        painter.setClipRect(QRect(r.left(), r.top(), size + 4, r.height()))
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        painter.restore()
        warning_icon().paint(painter, QRect(r.left() + 2, r.top(), size, r.height()))
        rest = QStyleOptionViewItem(option)
        rest.rect = r.adjusted(size + 4, 0, 0, 0)
        return rest

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        size = super().sizeHint(option, index)
        fm = QFontMetrics(option.font)
        extra = sum(
            fm.horizontalAdvance(f"{STATE_GLYPHS.get(s, '')} {n}") + 3 * self.PAD
            for s, n in self._badges(index)
        )
        return QSize(size.width() + extra + 8, max(size.height(), fm.height() + 8))


class _PixmapCache:
    """Rendered cell decorations by what they depend on (size, pixel ratio, value, palette):
    a repaint blits them instead of asking the style to draw them again. While analysis
    threads hold the GIL, every painter or style call made from Python may wait for it, so a
    cell that is one ``drawPixmap`` repaints far faster than one drawn call by call."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[object, ...], QPixmap] = OrderedDict()

    def get(
        self, key: tuple[object, ...], width: int, height: int, ratio: float, draw: Any
    ) -> QPixmap:
        pixmap = self._items.get(key)
        if pixmap is not None:
            self._items.move_to_end(key)
            return pixmap
        pixmap = QPixmap(max(1, math.ceil(width * ratio)), max(1, math.ceil(height * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        draw(painter, QRect(0, 0, width, height))
        painter.end()
        self._items[key] = pixmap
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return pixmap


def _ratio(painter: QPainter) -> float:
    device = painter.device()
    return device.devicePixelRatioF() if device is not None else 1.0


def is_elided(delegate: QStyledItemDelegate, option: QStyleOptionViewItem, index: Index) -> bool:
    """Whether ``delegate`` cuts the cell's text in ``option.rect``."""
    opt = QStyleOptionViewItem(option)
    delegate.initStyleOption(opt, index)
    text = opt.text
    if not text:
        return False
    widget = opt.widget
    style = widget.style() if widget is not None else QApplication.style()
    rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
    # the style keeps a margin inside the text rect on each side
    return QFontMetrics(opt.font).horizontalAdvance(text) > rect.width() - 4


def elided_tooltip(
    delegate: QStyledItemDelegate, option: QStyleOptionViewItem, index: Index
) -> str | None:
    """A cell's tooltip: its full text when the cell cuts it, above the model's own tooltip
    (which often says more); else the model's tooltip."""
    own = index.data(Qt.ItemDataRole.ToolTipRole)
    own = str(own) if own else None
    if not is_elided(delegate, option, index):
        return own
    text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
    if own is None:
        return text
    return own if text in own else f"{text}\n{own}"


class LeftElidingDelegate(QStyledItemDelegate):
    """Cuts text on the left: for dotted ids, whose last part tells them apart. (Only where
    needed: a Python delegate costs a Python call per painted cell.)"""

    def initStyleOption(self, option: QStyleOptionViewItem, index: Index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideLeft


class ProgressDelegate(QStyledItemDelegate):
    """In the state/progress column: a progress bar while the row's job runs (rendered once
    per size, per mille and text, then blitted)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bars = _PixmapCache()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        progress = index.data(ProgressRole)
        if progress is None or index.data(StateRole) != "running":
            super().paint(painter, option, index)
            return
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        permille = int(max(0.0, min(1.0, float(progress))) * 1000)
        rect = option.rect.adjusted(2, 3, -2, -3)

        def draw(p: QPainter, area: QRect) -> None:
            bar = QStyleOptionProgressBar()
            bar.rect = area
            bar.minimum = 0
            bar.maximum = 1000
            bar.progress = permille
            bar.text = text
            bar.textVisible = True
            bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
            bar.palette = QPalette(option.palette)
            bar.palette.setColor(QPalette.ColorRole.Highlight, state_color("running"))
            bar.fontMetrics = option.fontMetrics
            p.setFont(option.font)
            style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, p, widget)

        ratio = _ratio(painter)
        key = (rect.width(), rect.height(), ratio, permille, text, option.palette.cacheKey())
        pixmap = self._bars.get(key, rect.width(), rect.height(), ratio, draw)
        painter.drawPixmap(rect.topLeft(), pixmap)


class ButtonDelegate(QStyledItemDelegate):
    """A push button painted in the cell (rendered once per size and enabled state, then
    blitted); a click emits ``clicked`` with the row's key."""

    clicked = Signal(object)

    def __init__(self, text: str, enabled: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = text
        self._enabled = enabled  # callable(index) -> bool, or None for always
        self._buttons = _PixmapCache(16)

    def _is_enabled(self, index: Index) -> bool:
        return bool(self._enabled(index)) if callable(self._enabled) else True

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        enabled = self._is_enabled(index)
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        rect = option.rect.adjusted(2, 2, -2, -2)

        def draw(p: QPainter, area: QRect) -> None:
            btn = QStyleOptionButton()
            btn.rect = area
            btn.text = self._text
            btn.state = QStyle.StateFlag.State_Raised
            if enabled:
                btn.state |= QStyle.StateFlag.State_Enabled
            p.setFont(option.font)
            style.drawControl(QStyle.ControlElement.CE_PushButton, btn, p, widget)

        ratio = _ratio(painter)
        key = (rect.width(), rect.height(), ratio, enabled, self._text)
        painter.drawPixmap(
            rect.topLeft(), self._buttons.get(key, rect.width(), rect.height(), ratio, draw)
        )

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
