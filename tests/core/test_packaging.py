"""Cheap checks of packaging/ that need no bundle build (that is ``make bundle`` + ``make smoke``):
the PyInstaller spec and its hooks parse and point at files that exist, the desktop entry and
the AppStream metainfo carry what desktops need, the icon SVG is sound, and make_icons.py
renders it to every PNG size."""

from __future__ import annotations

import ast
import configparser
import importlib.util
import os
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
APP_ID = "io.github.diagnostics_app"
SVG = ROOT / "resources" / "icons" / "diagnostics-app.svg"
SVG_NS = "{http://www.w3.org/2000/svg}"
ICON_SIZES = (16, 32, 48, 64, 128, 256)


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _strings(path: Path) -> set[str]:
    """Every string literal in a Python file (which also proves the file parses)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


# --- the PyInstaller spec ------------------------------------------------------------------------


def test_spec_parses_and_references_existing_files() -> None:
    spec = PACKAGING / "diagnostics-app.spec"
    strings = _strings(spec)
    text = spec.read_text(encoding="utf-8")
    # the entry point is the package's __main__ (= diagnostics_app.cli:main)
    assert '"diagnostics_app" / "__main__.py"' in text
    main = (ROOT / "diagnostics_app" / "__main__.py").read_text(encoding="utf-8")
    assert "from diagnostics_app.cli import main" in main and "sys.exit(main())" in main
    assert _pyproject()["project"]["scripts"]["diagnostics-app"] == "diagnostics_app.cli:main"
    # what it reads: resources/, the icon SVG, make_icons.py, the hooks folder
    for rel in ("resources", "resources/icons/diagnostics-app.svg", "packaging/make_icons.py"):
        assert (ROOT / rel).exists(), rel
    assert '"packaging" / "hooks"' in text and '"packaging" / "make_icons.py"' in text
    assert {"resources", "resources/icons", "diagnostics-app"} <= strings
    assert "copy_metadata" in text and "collect_submodules" in text
    for hook in ("hook-PySide6.QtGui.py", "hook-sounddevice.py"):
        _strings(PACKAGING / "hooks" / hook)  # parses


def test_spec_excludes_dev_tools_and_unused_qt() -> None:
    strings = _strings(PACKAGING / "diagnostics-app.spec")
    dev = {"tests", "bench", "pytest", "hypothesis", "mypy", "librosa", "numba", "llvmlite"}
    assert dev <= strings, dev - strings
    qt = {
        "QtWebEngineCore",
        "QtWebEngineWidgets",
        "Qt3DCore",
        "QtQuick",
        "QtQml",
        "QtMultimedia",
        "QtNetwork",
        "QtPdf",
        "QtCharts",
        "QtDataVisualization",
        "QtBluetooth",
    }
    assert qt <= strings, qt - strings
    # ...but never what the app or pyqtgraph import (pyqtgraph.util.cprint needs colorama)
    for used in (
        "QtCore",
        "QtGui",
        "QtWidgets",
        "QtSvg",
        "QtOpenGL",
        "QtOpenGLWidgets",
        "colorama",
    ):
        assert used not in strings, used


def test_build_and_smoke_scripts() -> None:
    for script in ("build.sh", "smoke-test", "install.sh"):
        path = PACKAGING / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        subprocess.run(["bash", "-n", str(path)], check=True)  # syntax only
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "bash packaging/build.sh" in makefile and "bash packaging/smoke-test" in makefile
    assert any(
        "pyinstaller" in d.lower()
        for d in _pyproject()["project"]["optional-dependencies"]["bundle"]
    )


# --- desktop entry and AppStream metainfo --------------------------------------------------------


def test_desktop_entry() -> None:
    path = PACKAGING / f"{APP_ID}.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    entry = parser["Desktop Entry"]
    for key in ("Type", "Name", "Comment", "Exec", "Icon", "Categories", "Terminal"):
        assert entry.get(key), f"{path.name}: {key} missing"
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] in _pyproject()["project"]["scripts"]
    assert entry["Icon"] == APP_ID
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")


def test_metainfo() -> None:
    root = ET.parse(PACKAGING / f"{APP_ID}.metainfo.xml").getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    for tag in ("id", "name", "summary", "metadata_license", "project_license"):
        element = root.find(tag)
        assert element is not None and (element.text or "").strip(), tag
    assert root.findtext("id") == APP_ID
    description = root.find("description")
    assert description is not None and description.find("p") is not None
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == f"{APP_ID}.desktop"
    assert (PACKAGING / launchable.text).is_file()
    assert root.findtext("provides/binary") == "diagnostics-app"
    release = root.find("releases/release")
    assert release is not None and release.get("version") == _pyproject()["project"]["version"]


# --- the icon ------------------------------------------------------------------------------------


def test_icon_svg() -> None:
    root = ET.parse(SVG).getroot()
    assert root.tag == f"{SVG_NS}svg"
    view_box = [float(v) for v in root.get("viewBox", "").replace(",", " ").split()]
    assert len(view_box) == 4 and view_box[2] == view_box[3] > 0, "a square viewBox"


def _make_icons() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_icons", PACKAGING / "make_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rgba(path: Path, size: int) -> np.ndarray:
    from PySide6.QtGui import QImage

    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGBA8888)
    assert (image.width(), image.height()) == (size, size), path.name
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return data.reshape(size, image.bytesPerLine())[:, : size * 4].reshape(size, size, 4).copy()


def test_make_icons_renders_every_size(tmp_path: Path) -> None:
    make_icons = _make_icons()
    assert tuple(make_icons.SIZES) == ICON_SIZES
    written = make_icons.render_icons(SVG, tmp_path)
    assert [p.name for p in written] == [f"diagnostics-app-{n}.png" for n in ICON_SIZES]
    for size, path in zip(ICON_SIZES, written, strict=True):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rgba = _rgba(path, size)
        alpha = rgba[..., 3]
        opaque = alpha == 255
        # the tile covers most of the square, its rounded corners stay transparent
        assert 0.7 < opaque.mean() < 0.99, (size, opaque.mean())
        assert alpha[0, 0] == 0 and alpha[-1, -1] == 0, size
        # not a flat tile: the waveform and the badge add colours
        colours = {tuple(px) for px in rgba[opaque][:, :3]}
        assert len(colours) >= 4, (size, len(colours))


@pytest.mark.parametrize("bad", ["missing.svg", "not-svg.svg"])
def test_make_icons_reports_a_bad_svg(tmp_path: Path, bad: str) -> None:
    if bad == "not-svg.svg":
        (tmp_path / bad).write_text("this is not XML", encoding="utf-8")
    make_icons = _make_icons()
    assert make_icons.main([str(tmp_path / bad), str(tmp_path / "out")]) == 1


@pytest.mark.parametrize(
    ("tool", "args", "name"),
    [
        ("desktop-file-validate", [], f"{APP_ID}.desktop"),
        ("appstreamcli", ["validate", "--no-net", "--pedantic"], f"{APP_ID}.metainfo.xml"),
    ],
)
def test_desktop_files_validate(tool: str, args: list[str], name: str) -> None:
    """The distributions' own validators, where installed (desktop-file-utils, appstream)."""
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed")
    out = subprocess.run([exe, *args, str(PACKAGING / name)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
