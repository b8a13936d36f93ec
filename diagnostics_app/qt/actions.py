"""The main window's actions, as a table: what each one is called, says, does and when it is
enabled, and where it is listed (menu bar, toolbar, the table's context menu).

:class:`~diagnostics_app.qt.main_window.MainWindow` builds its ``QAction`` s and menus from
:data:`ACTIONS` in one loop and re-evaluates the enablement rules from one
:class:`ActionContext`. The table is separate from the window so the whole command surface
(object names and shortcuts are part of the public interface, §6) can be read and reviewed in
one place, and so an enablement rule is a named function rather than a line among many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.states import OUTDATED, REGENERABLE, is_extraneous
from diagnostics_app.qt.theme import state_icon

SP = QStyle.StandardPixmap
KEY = QKeySequence.StandardKey

# the menu-bar menus, left to right
FILE, EDIT, ANALYSIS, VIEW, PLAYBACK, HELP = (
    "&File",
    "&Edit",
    "&Analysis",
    "&View",
    "&Playback",
    "&Help",
)
MENUS = (FILE, EDIT, ANALYSIS, VIEW, PLAYBACK, HELP)


@dataclass(frozen=True)
class ActionContext:
    """What the enablement rules read, taken from the window at one moment."""

    states: frozenset[str]  # the states that have rows in the diagnosis
    selected: tuple[Row, ...]  # the rows selected in the table
    current: Row | None  # the table's current row
    busy: bool  # this window has passes queued or running
    track_selected: bool  # a track (not a source) is selected in the tree
    has_previous: bool = False  # the current row keeps a previous version (compare mode)


Predicate = Callable[[ActionContext], bool]


# -- enablement rules -------------------------------------------------------------------------


def selection_regenerable(c: ActionContext) -> bool:
    return any(r.state in REGENERABLE for r in c.selected)


def any_stale_or_failed(c: ActionContext) -> bool:
    return bool(c.states & OUTDATED)


def any_missing(c: ActionContext) -> bool:
    return "missing" in c.states


def any_extraneous(c: ActionContext) -> bool:
    return "extraneous" in c.states


def selection_extraneous(c: ActionContext) -> bool:
    return any(map(is_extraneous, c.selected))


def busy(c: ActionContext) -> bool:
    return c.busy


def current_row(c: ActionContext) -> bool:
    return c.current is not None


def current_row_ok(c: ActionContext) -> bool:
    return c.current is not None and c.current.state == "ok"


def rows_selected(c: ActionContext) -> bool:
    return bool(c.selected)


def track_selected(c: ActionContext) -> bool:
    return c.track_selected


def current_has_previous(c: ActionContext) -> bool:
    return c.current is not None and c.has_previous


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionSpec:
    """One action. Actions without an enablement rule are always enabled, unless the window
    manages them itself (undo and redo follow the history, play the audio output)."""

    name: str  # object name (interface §6), also the window attribute holding the QAction
    text: str
    handler: str  # what triggering calls: an attribute path on the window ("controller.undo")
    menu: str | None = None  # the menu-bar menu listing it (in table order)
    shortcut: KEY | str | None = None
    tip: str = ""  # status tip and tool tip
    icon: SP | str | None = None  # a standard pixmap, or a descriptor state's badge
    enabled: Predicate | None = None
    separator: bool = False  # a separator above it in its menu
    table_only: bool = False  # added to the descriptor table: its shortcut works there only
    plot_only: bool = False  # added to the plot area: its shortcut works there only
    checkable: bool = False


# fmt: off
ACTIONS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("actionOpen", "&Open…", "_open", FILE, shortcut=KEY.Open,
               icon=SP.SP_DialogOpenButton, tip="Open a project file"),
    ActionSpec("actionOpenDemo", "Open &Demo", "demoRequested.emit", FILE,
               tip="Write a demo project with generated audio and open it"),
    ActionSpec("actionSave", "&Save", "_save", FILE, shortcut=KEY.Save,
               icon=SP.SP_DialogSaveButton, tip="Save the project file"),
    ActionSpec("actionSaveAs", "Save &As…", "_save_as", FILE, shortcut=KEY.SaveAs),
    ActionSpec("actionAddAudio", "&Add Audio…", "_add_audio", FILE, shortcut="Ctrl+Shift+A",
               tip="Add audio files: a source and a track each", separator=True),
    ActionSpec("actionExport", "E&xport…", "_export", FILE, enabled=current_row_ok,
               tip="Export the row's data with its provenance"),
    ActionSpec("actionQuit", "&Quit", "close", FILE, shortcut=KEY.Quit, separator=True),
    # Edit
    ActionSpec("actionUndo", "&Undo", "controller.undo", EDIT, shortcut="Ctrl+Z",
               icon=SP.SP_ArrowBack, tip="Undo the last edit or prune"),
    ActionSpec("actionRedo", "&Redo", "controller.redo", EDIT, shortcut="Ctrl+Shift+Z",
               icon=SP.SP_ArrowForward, tip="Redo"),
    ActionSpec("actionEditRequests", "Track &Requests…", "_edit_requests", EDIT,
               enabled=track_selected, tip="Edit what the selected track requests",
               separator=True),
    ActionSpec("actionEditTempoMap", "&Tempo Map…", "_edit_tempo_map", EDIT,
               tip="Edit the project's tempo map"),
    ActionSpec("actionEditProfiles", "&Profiles…", "_edit_profiles", EDIT,
               tip="Edit the analysis profiles"),
    ActionSpec("actionCopyJson", "Copy as &JSON", "_copy_json", EDIT, shortcut=KEY.Copy,
               enabled=rows_selected, separator=True, table_only=True),
    ActionSpec("actionSettings", "Se&ttings…", "_edit_settings", EDIT, shortcut=KEY.Preferences),
    # Analysis
    ActionSpec("actionRegenerateSelected", "Regenerate &Selected", "_regenerate_selected",
               ANALYSIS, shortcut="F5", icon="running", enabled=selection_regenerable,
               tip="Recompute the selected rows, first in the queue (F5)"),
    ActionSpec("actionRegenerateStale", "Regenerate S&tale", "controller.regenerate_stale",
               ANALYSIS, icon="stale", enabled=any_stale_or_failed,
               tip="Recompute every stale or failed row"),
    ActionSpec("actionCalculateMissing", "Calculate &Missing", "controller.calculate_missing",
               ANALYSIS, icon="missing", enabled=any_missing, tip="Compute every missing row"),
    ActionSpec("actionPruneExtraneous", "&Prune Extraneous…", "_prune_extraneous", ANALYSIS,
               icon="extraneous", enabled=any_extraneous, separator=True,
               tip="Delete cached data no track requests (undoable)"),
    ActionSpec("actionPruneSelected", "Prune Selected", "_prune_selected", ANALYSIS,
               enabled=selection_extraneous, tip="Delete the selected extraneous rows (undoable)"),
    ActionSpec("actionCancelAll", "&Cancel All Jobs", "controller.cancel_all", ANALYSIS,
               icon=SP.SP_BrowserStop, enabled=busy, separator=True,
               tip="Cancel every queued and running job of this window"),
    ActionSpec("actionCompareWithPrevious", "Compare with &Previous", "_toggle_compare",
               ANALYSIS, enabled=current_has_previous, separator=True, checkable=True,
               tip="Overlay the row's previous version on its lanes and mark what differs"),
    # Playback (the window enables these itself: they follow the player and the selection)
    ActionSpec("actionPlay", "&Play / Pause", "_toggle_play", PLAYBACK, shortcut="Space",
               icon=SP.SP_MediaPlay, tip="Play the selected source from the playhead"),
    ActionSpec("actionGoToStart", "Go to &Start", "_go_to_start", PLAYBACK, shortcut="Home",
               plot_only=True, tip="Move the playhead to the start (Home, in the plots)"),
    ActionSpec("actionGoToEnd", "Go to &End", "_go_to_end", PLAYBACK, shortcut="End",
               plot_only=True, tip="Move the playhead to the end (End, in the plots)"),
    ActionSpec("actionPlaySelection", "Play Se&lection", "_play_selection", PLAYBACK,
               shortcut="Shift+Space", separator=True,
               tip="Play the selected time range once (Shift+drag on the plots selects)"),
    ActionSpec("actionLoopSelection", "L&oop Selection", "_loop_selection", PLAYBACK,
               shortcut="L", plot_only=True, checkable=True,
               tip="Loop the selected time range while playing"),
    ActionSpec("actionClearSelection", "&Clear Selection", "_clear_selection", PLAYBACK,
               shortcut="Escape", plot_only=True, tip="Clear the time-range selection"),
    ActionSpec("actionPlayDifferences", "Play &Differences", "_play_differences", PLAYBACK,
               separator=True, tip="Compare mode: play each range that differs from the "
               "previous version, with a short pre-roll"),
    # Help, and the table's context menu only
    ActionSpec("actionAbout", "&About", "_about", HELP),
    ActionSpec("actionExplain", "&Explain", "_explain_current", None, enabled=current_row,
               tip="Show why the row has its state"),
)
# fmt: on

# the toolbar and the table's context menu: action names, None for a separator
TOOLBAR: tuple[str | None, ...] = (
    "actionOpen",
    "actionSave",
    None,
    "actionUndo",
    "actionRedo",
    None,
    "actionRegenerateSelected",
    "actionRegenerateStale",
    "actionCalculateMissing",
    "actionPruneExtraneous",
    "actionCancelAll",
    None,
    "actionPlay",
)
TABLE_MENU: tuple[str | None, ...] = (
    "actionRegenerateSelected",
    "actionExplain",
    "actionCompareWithPrevious",
    "actionExport",
    "actionPruneSelected",
    None,
    "actionCopyJson",
)


def make_action(spec: ActionSpec, parent: QWidget) -> QAction:
    """The ``QAction`` of ``spec``: named, with its text, shortcut, icon and tips; the caller
    connects it and adds it where it belongs."""
    action = QAction(spec.text, parent)
    action.setObjectName(spec.name)
    if spec.shortcut is not None:
        action.setShortcut(QKeySequence(spec.shortcut))
    action.setCheckable(spec.checkable)
    if isinstance(spec.icon, QStyle.StandardPixmap):
        action.setIcon(parent.style().standardIcon(spec.icon))
    elif spec.icon is not None:
        action.setIcon(state_icon(spec.icon))
    if spec.tip:
        action.setStatusTip(spec.tip)
        action.setToolTip(spec.tip)
    return action
