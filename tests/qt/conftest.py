"""Fixtures of the GUI tests: an isolated settings file, a cached demo project copied per test,
and a main-window factory that fails at teardown on leaked windows or a busy thread pool."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication, QWidget

from diagnostics_app.qt.settings import SETTINGS_ENV, AppSettings

POOL_TIMEOUT_MS = 20000


@pytest.fixture(autouse=True)
def settings_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the user's settings."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    return path


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, written (and analysed) once per test process: ~2 s."""
    from diagnostics_app.core.demo import write_demo

    return write_demo(tmp_path_factory.mktemp("demo-template") / "demo")


@pytest.fixture
def demo_project(demo_template: Path, tmp_path: Path) -> Path:
    """A private copy of the demo project for one test."""
    target = tmp_path / "demo"
    shutil.copytree(demo_template.parent, target)
    return target / demo_template.name


def _top_levels() -> set[int]:
    return {id(w) for w in QApplication.topLevelWidgets()}


def _flush_deletes() -> None:
    gc.collect()  # pyqtgraph's context menus have no Qt parent: they go with their Python owner
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        QCoreApplication.processEvents()


WindowFactory = Callable[..., "MainWindow"]  # noqa: F821
DIAGNOSIS_TIMEOUT_MS = 20000


def wait_for_diagnosis(qtbot: Any, window: Any) -> None:
    """Wait until the window shows a diagnosis reflecting every change made so far (it is
    derived in a worker thread and applied when it arrives; the job panel and the lanes take
    it in the next turns of the event loop)."""
    c = window.controller
    qtbot.waitUntil(
        lambda: c.diagnosis_current and not c.diagnosis_pending and not window.turns.pending,
        timeout=DIAGNOSIS_TIMEOUT_MS,
    )


@pytest.fixture
def settle(qtbot: Any) -> Callable[[Any], None]:
    """``settle(window)``: :func:`wait_for_diagnosis` (after an edit, undo, prune...)."""
    return lambda window: wait_for_diagnosis(qtbot, window)


@pytest.fixture
def make_window(qtbot: object, demo_project: Path) -> Iterator[Callable[..., object]]:
    """Build a main window on a project (the demo copy by default); at teardown close it and
    fail if its pools do not finish or any top-level widget was leaked."""
    from diagnostics_app.core.session import Session
    from diagnostics_app.qt.controller import Controller
    from diagnostics_app.qt.main_window import MainWindow

    _flush_deletes()
    before = _top_levels()
    windows: list[MainWindow] = []

    def factory(
        project: Path | None = None,
        settings: AppSettings | None = None,
        show: bool = True,
        wait: bool = True,
    ) -> MainWindow:
        session = Session.open(project or demo_project)
        controller = Controller(session, settings or AppSettings(workers=2))
        window = MainWindow(controller)
        window.force_close = True
        windows.append(window)
        if show:
            window.resize(1400, 900)
            window.show()
        if wait:
            wait_for_diagnosis(qtbot, window)  # a window "made" shows its rows
        return window

    yield factory

    for window in windows:
        controller = window.controller
        window.close()  # cancels jobs, waits for the pools, closes the session
        assert controller.pool.waitForDone(POOL_TIMEOUT_MS), "analysis pool still busy at teardown"
        assert controller.plot_pool.waitForDone(POOL_TIMEOUT_MS), "plot pool still busy at teardown"
        window.deleteLater()
    windows.clear()  # drop the Python side too: pyqtgraph's parentless menus go with it
    del window, controller
    _flush_deletes()
    leaked = [
        w for w in QApplication.topLevelWidgets() if id(w) not in before and isinstance(w, QWidget)
    ]
    assert not leaked, (
        f"leaked top-level widgets: {[type(w).__name__ + ':' + w.objectName() for w in leaked]}"
    )
