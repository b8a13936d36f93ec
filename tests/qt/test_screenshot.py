"""Rendering: regions of the window, never exact pixels; and the ``screenshot`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QColor, QImage

from diagnostics_app.qt.app import wait_until_idle
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.plots.lanes import HIGHLIGHT_COLOR
from diagnostics_app.qt.theme import STATE_COLORS


def _colours(image: QImage, rect: QRect, step: int = 3) -> set[int]:
    out = set()
    for y in range(rect.top(), rect.bottom(), step):
        for x in range(rect.left(), rect.right(), step):
            out.add(image.pixel(x, y) & 0xFFFFFF)
    return out


def _has_colour(image: QImage, rect: QRect, colour: str, tolerance: int = 24) -> bool:
    target = QColor(colour)
    for y in range(rect.top(), rect.bottom()):
        for x in range(rect.left(), rect.right()):
            c = QColor(image.pixel(x, y))
            if (
                abs(c.red() - target.red())
                + abs(c.green() - target.green())
                + abs(c.blue() - target.blue())
                <= tolerance
            ):
                return True
    return False


def _rect_of(window: MainWindow, widget: Any) -> QRect:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return QRect(top_left, widget.size())


def test_window_regions(make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    window.select(("source", "drums"))
    assert window.show_first_issue()
    assert wait_until_idle(window)
    image = window.grab().toImage()
    assert not image.isNull()
    plot = _rect_of(window, window.plot_area)
    assert len(_colours(image, plot)) > 40, "the plot area is blank"
    table = _rect_of(window, window.table.viewport())
    for state in ("stale", "ok", "extraneous"):
        assert _has_colour(image, table, STATE_COLORS[state]), f"no {state} colour in the table"
    tree = _rect_of(window, window.sources.view.viewport())
    assert _has_colour(image, tree, STATE_COLORS["stale"]), "no stale badge in the source tree"
    explain = _rect_of(window, window.explain)
    assert len(_colours(image, explain)) > 5, "the explain panel is blank"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "diagnostics_app", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_screenshot(demo_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "shots" / "main.png"
    result = _run_cli(
        "screenshot",
        str(demo_project),
        "-o",
        str(out),
        "--select",
        "drums/kick",
        "--size",
        "1200x800",
        "--time-selection",
        "4.5:9.25",
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1200, 800)
    assert len(_colours(image, image.rect(), step=7)) > 100, "the screenshot is blank"


def test_cli_screenshot_bad_select(demo_project: Path, tmp_path: Path) -> None:
    result = _run_cli(
        "screenshot", str(demo_project), "-o", str(tmp_path / "x.png"), "--select", "drums/bass"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "drums" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_cli_screenshot_bad_time_selection(demo_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    result = _run_cli("screenshot", str(demo_project), "-o", str(out), "--time-selection", "5:3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--time-selection" in lines[0]
    assert not out.exists()


def _framed_rows(image: QImage) -> set[int]:
    """The pixel rows holding the marked lane's frame colour."""
    frame = QColor(*HIGHLIGHT_COLOR)
    return {
        y
        for y in range(0, image.height(), 2)
        for x in range(0, image.width(), 4)
        if QColor(image.pixel(x, y)) == frame
    }


def test_cli_screenshot_row_marks_its_lane(demo_project: Path, tmp_path: Path) -> None:
    framed = {}
    for feature in ("spectrogram", "rms"):
        out = tmp_path / f"{feature}.png"
        args = ("screenshot", str(demo_project), "-o", str(out), "--select", "drums")
        result = _run_cli(*args, "--row", feature)
        assert result.returncode == 0, result.stderr
        framed[feature] = _framed_rows(QImage(str(out)))
        assert len(framed[feature]) > 10, f"the {feature} row's lane is not framed"
    assert framed["spectrogram"] != framed["rms"]  # each its own lane, not the first issue's
    bad_png = tmp_path / "bad.png"
    bad = _run_cli("screenshot", str(demo_project), "-o", str(bad_png), "--row", "nosuch")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["diagnostics-app: --row nosuch: no such row in view"]
    assert not bad_png.exists()


def test_cli_screenshot_row_with_a_newline_is_one_line(demo_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    bad = _run_cli("screenshot", str(demo_project), "-o", str(out), "--row", "rm\ns")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["diagnostics-app: --row rm\\ns: no such row in view"]
    assert not out.exists()
