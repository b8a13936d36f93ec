"""Render the application icon (SVG) to the PNG sizes desktops want.

    python packaging/make_icons.py [SVG] [OUT_DIR]

defaults: ``resources/icons/diagnostics-app.svg`` → ``build/icons``. Writes
``OUT_DIR/diagnostics-app-<N>.png`` for N in 16, 32, 48, 64, 128, 256 and prints their paths.

Rendering uses QtSvg's :class:`QSvgRenderer` into a :class:`QImage`; neither needs a
``QGuiApplication`` nor a display, so this runs headless (and inside a test process without
interfering with pytest-qt's application).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SVG = ROOT / "resources" / "icons" / "diagnostics-app.svg"
DEFAULT_OUT = ROOT / "build" / "icons"
SIZES: tuple[int, ...] = (16, 32, 48, 64, 128, 256)
STEM = "diagnostics-app"


def png_name(size: int, stem: str = STEM) -> str:
    return f"{stem}-{size}.png"


def render_icons(
    svg: Path = DEFAULT_SVG, out_dir: Path = DEFAULT_OUT, sizes: Iterable[int] = SIZES
) -> list[Path]:
    """Render ``svg`` to one square PNG per size in ``out_dir``; returns the written paths."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    try:  # a clear message instead of Qt's warnings for a missing or malformed file
        root = ElementTree.parse(svg).getroot()
    except ElementTree.ParseError as exc:
        raise ValueError(f"{svg}: not XML ({exc})") from None
    if root.tag != "{http://www.w3.org/2000/svg}svg":
        raise ValueError(f"{svg}: not an SVG document (root element {root.tag})")
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not a valid SVG")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        path = out_dir / png_name(size, svg.stem)
        if not image.save(str(path), "PNG"):
            raise OSError(f"{path}: cannot write the PNG")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) > 2 or any(a.startswith("-") for a in argv):
        print("usage: python packaging/make_icons.py [SVG] [OUT_DIR]", file=sys.stderr)
        return 2
    svg = Path(argv[0]) if argv else DEFAULT_SVG
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    try:
        for path in render_icons(svg, out):
            print(path)
    except (OSError, ValueError) as exc:
        print(f"make_icons: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
