"""What the main window's mixins may use of the window, declared for the type checker.

:class:`~diagnostics_app.qt.main_window.MainWindow` is assembled from mixins (file
handling, edit dialogs, row actions, plots and playback), each in its own module. A mixin's
methods run on the window, so they use its widgets, its controller and a few of its methods;
:class:`WindowHost` names exactly those. For the type checker it is a ``QMainWindow``
subclass declaring them; at run time it is ``object``, so it adds nothing to the window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PySide6.QtCore import Signal
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QLabel, QMainWindow

    from diagnostics_app.core.diagnostics import Row
    from diagnostics_app.qt.controller import Controller
    from diagnostics_app.qt.playback import Player
    from diagnostics_app.qt.plots.plot_area import PlotArea
    from diagnostics_app.qt.settings import SettingsStore
    from diagnostics_app.qt.widgets.descriptor_table import DescriptorTable
    from diagnostics_app.qt.widgets.explain_panel import ExplainPanel
    from diagnostics_app.qt.widgets.source_tree import SourceTreePanel

    class WindowHost(QMainWindow):
        controller: Controller
        settings_store: SettingsStore | None
        player: Player
        table: DescriptorTable
        explain: ExplainPanel
        sources: SourceTreePanel
        plot_area: PlotArea
        playback_label: QLabel
        actionPlay: QAction
        actionPlaySelection: QAction
        actionLoopSelection: QAction
        actionClearSelection: QAction
        openRequested: Signal
        _selection: tuple[str, str] | None
        _plot_signature: tuple[Any, ...] | None
        _plot_source: str | None
        _seek_position: float

        def select(self, key: tuple[str, str] | None) -> bool: ...
        def selection_rows(self) -> list[Row]: ...
        def selected_source(self) -> str | None: ...
        def _update_actions(self) -> None: ...
        def _open_in_player(self, source: str | None) -> None: ...
        def _on_play_position(self, seconds: float) -> None: ...
        def _rebuild_channels_menu(self) -> None: ...
        def add_audio_paths(self, paths: list[str]) -> None: ...

else:
    WindowHost = object
