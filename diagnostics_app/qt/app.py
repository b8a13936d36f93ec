"""Entry points of the desktop app: :func:`run_gui` and :func:`screenshot` (called by the CLI).

:class:`Shell` owns the one visible top-level window: the welcome screen, or a
:class:`~diagnostics_app.qt.main_window.MainWindow` on a project. Opening another project makes
a new window (with its own session) and closes the old one, so a window never has to be
rewired to a different session.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject, Qt, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget

from diagnostics_app import APP_NAME, __version__
from diagnostics_app.core._gc import freeze_long_lived
from diagnostics_app.core.errors import DiagnosticsError, escaped
from diagnostics_app.core.session import Session
from diagnostics_app.qt.controller import Controller
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.settings import AppSettings, SettingsStore
from diagnostics_app.qt.theme import app_icon
from diagnostics_app.qt.widgets.welcome import WelcomeWindow, open_error_box

EXIT_BAD_INPUT = 2
GIL_SWITCH_INTERVAL = 0.0005  # seconds (CPython's default: 0.005); see ensure_app


def ensure_app() -> QApplication:
    """The QApplication (created once), named so QSettings and window managers know us.

    Creating it also freezes the heap built so far (``gc.freeze()``): the ~120,000 objects
    of the imported modules (Qt, pyqtgraph, numpy) live as long as the process, yet every
    full collection of the cyclic garbage collector traversed them all again: ~100 ms during
    which no thread runs, often in the middle of an analysis. Frozen, they are skipped; what
    the application builds afterwards is collected as usual.

    It also shortens the interpreter's thread switch interval (:data:`GIL_SWITCH_INTERVAL`):
    while the GUI thread processes events, every call Qt makes into Python (item models,
    delegates, pyqtgraph's paint methods: dozens per frame) must take the GIL back from the
    worker thread holding it, which CPython forces only after the switch interval. At the
    default 5 ms a frame painted while two analysis threads run waited up to ~60 ms for it;
    at 0.5 ms, under 40 ms, with no measurable cost to the analysis itself."""
    app = QApplication.instance()
    if app is None:
        freeze_long_lived()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(sys.argv[:1])
        app.setApplicationName(APP_NAME)
        app.setApplicationVersion(__version__)
        app.setOrganizationName("diagnostics-app")
        app.setDesktopFileName("io.github.diagnostics_app")  # = packaging/*.desktop
        app.setWindowIcon(app_icon())
    assert isinstance(app, QApplication)
    return app


def demo_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("diagnostics-app", appauthor=False)) / "demo"


class Shell(QObject):
    """Holds the current top-level window and switches between projects."""

    def __init__(self, settings_store: SettingsStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings_store = settings_store
        self.settings = settings_store.load()
        self.window: MainWindow | None = None
        self.welcome: WelcomeWindow | None = None
        self.opened = False  # a project window was opened (run_gui's exit code)
        self.error_box: QMessageBox | None = None  # the last "cannot open" message

    def start(self, path: str | None) -> None:
        """Open ``path`` (or the last project) or show the welcome screen; a project that
        cannot be opened is said on stderr (one line) and in a message over the welcome
        screen, which stays."""
        if (
            path is None
            and self.settings.last_project
            and Path(self.settings.last_project).is_file()
        ):
            path = self.settings.last_project
        if path is None:
            self.show_welcome()
            return
        try:
            session = Session.open(path)
        except DiagnosticsError as exc:
            message = str(exc).splitlines()[0] if str(exc) else "cannot open"
            print(f"diagnostics-app: {message}", file=sys.stderr)
            self.show_welcome()
            self._show_error(path, message)
            return
        self._show_window(path, session)

    def show_welcome(self) -> None:
        if self.welcome is None:
            self.welcome = WelcomeWindow(self.settings.recent_projects)
            self.welcome.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.welcome.openRequested.connect(self.open)
            self.welcome.browseRequested.connect(self.browse)
            self.welcome.demoRequested.connect(self.open_demo)
            self.welcome.destroyed.connect(self._welcome_gone)
        self.welcome.show()

    @Slot()
    def _welcome_gone(self) -> None:
        self.welcome = None

    def _parent(self) -> QWidget | None:
        return self.window or self.welcome

    @Slot()
    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._parent(), "Open project", str(Path.home()), "Projects (*.json);;All files (*)"
        )
        if path:
            self.open(path)

    @Slot()
    def open_demo(self) -> None:
        from diagnostics_app.core.demo import write_demo

        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            path = write_demo(demo_folder())
        except (DiagnosticsError, OSError) as exc:
            QMessageBox.critical(self._parent(), "Cannot write the demo", str(exc))
            return
        finally:
            QGuiApplication.restoreOverrideCursor()
        self.open(str(path))

    def _show_error(self, path: str, message: str) -> None:
        self.error_box = open_error_box(self._parent(), path, message)

    @Slot(str)
    def open(self, path: str) -> bool:
        try:
            session = Session.open(path)
        except DiagnosticsError as exc:
            self._show_error(path, str(exc).splitlines()[0] if str(exc) else "cannot open")
            return False
        return self._show_window(path, session)

    def _show_window(self, path: str, session: Session) -> bool:
        """A window on ``session`` replaces the current one (unless that one refuses to
        close)."""
        old = self.window
        if old is not None and not old.close():
            session.close()
            return False
        controller = Controller(session, self.settings)
        window = MainWindow(controller, self.settings_store)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.restore_window_state(self.settings)
        window.openRequested.connect(self.open)
        window.demoRequested.connect(self.open_demo)
        for problem in session.registry.problems:
            window.statusBar().showMessage(str(problem), 10000)
        self.window = window
        self.settings = self.settings.with_recent(path)
        self.settings_store.save(self.settings)
        window.show()
        window.show_first_issue()
        self.opened = True
        if self.welcome is not None:
            self.welcome.close()
        return True


def run_gui(project_path: str | None) -> int:
    """Open the GUI on ``project_path``, the last project, or the welcome screen. Exit code 2
    when ``project_path`` could not be opened and no project was opened afterwards (the
    failure was said on stderr and over the welcome screen)."""
    app = ensure_app()
    shell = Shell(SettingsStore())
    shell.start(project_path)
    code = int(app.exec())
    if project_path is not None and not shell.opened:
        return EXIT_BAD_INPUT
    return code


# --- screenshot (QA) ---------------------------------------------------------------------------


def wait_until_idle(window: MainWindow, timeout: float = 60.0) -> bool:
    """Process events until every worker pool is idle, no re-derivation (diagnosis worker)
    or plot load is pending and the plots hold their data, several passes in a row (a
    finished load may schedule the next step)."""
    app = ensure_app()
    controller = window.controller
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if window.plot_area.refresh_pending:
            window.plot_area.refresh()  # do the rate-limited update now rather than wait
        if window.turns.pending:
            window.turns.flush()
        if window.plot_area.updates_pending:
            window.plot_area.flush_updates()
        busy = not controller.is_idle()
        if busy:
            quiet = 0
            controller.pool.waitForDone(20)
            controller.plot_pool.waitForDone(20)
            controller.diagnosis_pool.waitForDone(20)
            continue
        quiet += 1
        if quiet >= 3:
            return True
    return False


def _parse_select(session: Session, select: str | None) -> tuple[str, str] | None:
    if not select:
        return None
    source, _, track = select.partition("/")
    project = session.project
    sources = [s.id for s in project.sources]
    if source not in sources:
        raise ValueError(f"unknown source {source!r} (known: {', '.join(sources) or 'none'})")
    if not track:
        return ("source", source)
    tracks = [t.id for t in project.tracks_of(source)]
    if track not in tracks:
        raise ValueError(
            f"source {source!r} has no track {track!r} (its tracks: {', '.join(tracks) or 'none'})"
        )
    return ("track", track)


def _parse_time_selection(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    start, end = (float(v) for v in text.split(":"))
    if not 0 <= start < end < float("inf"):
        raise ValueError(text)
    return start, end


def screenshot(
    project_path: str,
    out_png: Path,
    select: str | None,
    size: tuple[int, int],
    time_selection: str | None = None,
    row: str | None = None,
) -> int:
    """Render the main window offscreen, after the diagnostics and plots are shown (with the
    time range ``time_selection``, "START:END" in seconds, selected in the plots, and the row
    of feature ``row`` selected, its lane marked)."""
    try:
        selection = _parse_time_selection(time_selection)
    except ValueError:
        print(
            f"diagnostics-app: --time-selection {time_selection!r}: expected START:END in "
            "seconds, 0 <= START < END",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    app = ensure_app()
    try:
        session = Session.open(project_path)
    except DiagnosticsError as exc:
        print(f"diagnostics-app: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        key = _parse_select(session, select)
    except ValueError as exc:
        session.close()
        print(f"diagnostics-app: --select {select}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    controller = Controller(session, AppSettings(workers=1, auto_analyse=False))
    window = MainWindow(controller)
    window.force_close = True
    window.resize(*size)
    window.show()
    if key is not None:
        window.select(key)
    window.show_first_issue()
    wait_until_idle(window)
    if row is not None:
        rows = [r for r in controller.diagnosis.rows if r.key.feature == row]
        if not any(window.table.select_key(r.key) for r in rows):  # the first in the table
            window.close()
            print(f"diagnostics-app: --row {escaped(row)}: no such row in view", file=sys.stderr)
            return EXIT_BAD_INPUT
        wait_until_idle(window)
    if selection is not None:
        window.plot_area.set_selection(selection)
        wait_until_idle(window)
    image = window.grab()
    window.close()
    window.deleteLater()
    app.processEvents()
    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"diagnostics-app: {out_png}: cannot create the folder ({exc.strerror})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if not image.save(str(out_png), "PNG"):
        print(f"diagnostics-app: {out_png}: cannot write the PNG", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
