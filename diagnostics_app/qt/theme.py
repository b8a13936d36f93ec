"""State colours and icons: the one place that decides how a descriptor state looks.

Only the looks: the states, their sets and their order (the badges list states most severe
first) are :mod:`diagnostics_app.core.states`'.

Icons are painted at run time (a filled disc with a glyph), so they follow the palette's
device pixel ratio and need no resource compilation.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap

from diagnostics_app.core.states import STATES

STATE_COLORS: dict[str, str] = {
    "ok": "#2e7d32",
    "missing": "#757575",
    "stale": "#e65100",
    "extraneous": "#6a1b9a",
    "queued": "#0277bd",
    "running": "#1565c0",
    "failed": "#c62828",
    "invalid": "#ad1457",
}

# a glyph per state so that colour is never the only cue
STATE_GLYPHS: dict[str, str] = {
    "ok": "✓",
    "missing": "∅",
    "stale": "!",
    "extraneous": "×",
    "queued": "…",
    "running": "▶",
    "failed": "✗",
    "invalid": "?",
}

STATE_HELP: dict[str, str] = {
    "ok": "cached, and its stored fingerprint equals the current one",
    "missing": "requested, nothing cached",
    "stale": "cached, but some input changed",
    "extraneous": "cached for this source, requested by no track",
    "queued": "a job that will produce it is waiting",
    "running": "a job producing it is running",
    "failed": "the last attempt failed",
    "invalid": "the request cannot be served",
}

assert set(STATE_COLORS) == set(STATE_GLYPHS) == set(STATE_HELP) == set(STATES)


def state_color(state: str) -> QColor:
    return QColor(STATE_COLORS.get(state, "#000000"))


@cache
def state_icon(state: str, size: int = 16) -> QIcon:
    pix = QPixmap(size * 2, size * 2)  # drawn at 2x, scaled down crisply on low-dpi screens
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(state_color(state))
    p.drawEllipse(QRectF(2, 2, size * 2 - 4, size * 2 - 4))
    p.setPen(QPen(QColor("white")))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 1.2))
    p.setFont(font)
    p.drawText(
        QRectF(0, 0, size * 2, size * 2), Qt.AlignmentFlag.AlignCenter, STATE_GLYPHS.get(state, "")
    )
    p.end()
    return QIcon(pix)


@cache
def resource_path(relative: str) -> Path | None:
    """A file of ``resources/``: beside the package in a source checkout, or in the bundle."""
    roots = [Path(getattr(sys, "_MEIPASS", "")) / "resources"] if hasattr(sys, "_MEIPASS") else []
    roots.append(Path(__file__).resolve().parents[2] / "resources")
    for root in roots:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    return None


def app_icon() -> QIcon:
    """The application icon, ``resources/icons/diagnostics-app.svg``; where that file is not
    installed (a plain wheel), a painted waveform-in-a-rounded-square stands in."""
    svg = resource_path("icons/diagnostics-app.svg")
    if svg is not None:
        icon = QIcon(str(svg))
        if not icon.isNull():
            return icon
    icon = QIcon()
    for size in (16, 32, 64, 128):
        pix = QPixmap(size, size)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#263238"))
        p.drawRoundedRect(QRectF(0, 0, size, size), size * 0.2, size * 0.2)
        pen = QPen(QColor("#4fc3f7"))
        pen.setWidthF(max(1.0, size / 16))
        p.setPen(pen)
        heights = (0.2, 0.5, 0.8, 0.35, 0.6, 0.25)
        step = size / (len(heights) + 1)
        for i, h in enumerate(heights):
            x = step * (i + 1)
            p.drawLine(QPointF(x, size * (0.5 - h / 2.5)), QPointF(x, size * (0.5 + h / 2.5)))
        p.setBrush(QColor("#ffb300"))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QRectF(size * 0.62, size * 0.62, size * 0.3, size * 0.3))
        p.end()
        icon.addPixmap(pix)
    return icon


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
