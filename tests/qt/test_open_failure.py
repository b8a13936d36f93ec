"""`open` of something that is not a project (a missing file, a folder, not JSON) says why on
stderr (one line) and in a message over the welcome screen, which stays: someone who started
the app from a file manager sees no terminal."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from diagnostics_app.qt.app import Shell
from diagnostics_app.qt.settings import SettingsStore
from diagnostics_app.qt.widgets.welcome import WelcomeWindow

# the offscreen platform (tests) cannot size a message box's platform window as its layout
# asks; real platforms can
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def closing(qapp: QApplication) -> Iterator[None]:
    """Close whatever top-level window a test left open."""
    before = {id(w) for w in QApplication.topLevelWidgets()}
    yield
    for w in QApplication.topLevelWidgets():
        if id(w) not in before and w.isVisible():
            w.close()
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


def bad_paths(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    not_json = tmp_path / "notes.json"
    not_json.write_text("{ not a project", encoding="utf-8")
    return {
        "missing": (tmp_path / "nope.json", "project file not found"),
        "folder": (tmp_path, "is a folder"),
        "not a project": (not_json, "not valid JSON"),
    }


@pytest.mark.parametrize("case", ["missing", "folder", "not a project"])
def test_open_failure_shows_a_message_over_the_welcome_screen(
    tmp_path: Path, case: str, closing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path, needle = bad_paths(tmp_path)[case]
    shell = Shell(SettingsStore())
    shell.start(str(path))
    assert shell.window is None
    assert shell.welcome is not None and shell.welcome.isVisible()
    box = shell.error_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert box.parent() is shell.welcome  # over the welcome screen, not somewhere alone
    assert needle in box.informativeText() and str(path) in box.informativeText()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("diagnostics-app: ") and needle in err[0]
    box.close()
    assert shell.welcome.isVisible()  # the app stays on the welcome screen


def test_cli_open_of_a_missing_file_prints_the_line_and_shows_the_message(
    tmp_path: Path,
    closing: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diagnostics_app.cli import main

    monkeypatch.setattr(QApplication, "exec", staticmethod(lambda: 0))  # no event loop
    missing = tmp_path / "nope.json"
    assert main(["open", str(missing)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"diagnostics-app: {missing}: project file not found"]
    [welcome] = [
        w for w in QApplication.topLevelWidgets() if isinstance(w, WelcomeWindow) and w.isVisible()
    ]
    [box] = [b for b in welcome.findChildren(QMessageBox) if b.isVisible()]
    assert "project file not found" in box.informativeText()
