"""View updates spread over turns of the event loop (qt/turns.py, issue 8): a snapshot's table
is painted before the job panel is updated, and the job panel before the lanes, so no turn
of the GUI thread updates and paints every view at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from diagnostics_app.qt.app import wait_until_idle
from diagnostics_app.qt.turns import Turns
from tests.qt.test_gui_stalls import PaintLog


def _logged(log: list[str], name: str, widget: QWidget) -> Callable[[], None]:
    def update() -> None:
        log.append(name)
        widget.update()  # what a view update does: the widget is painted after the turn

    return update


def test_updates_run_one_per_turn_each_painted_before_the_next(qtbot: QtBot) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.resize(80, 40)
    widget.show()
    qtbot.waitExposed(widget)
    log: list[str] = []
    spy = PaintLog(log)
    widget.installEventFilter(spy)
    turns = Turns(widget)
    turns.queue("a", _logged(log, "a-old", widget))
    turns.queue("b", _logged(log, "b", widget))
    turns.queue("a", _logged(log, "a", widget))  # the newest function, in the first place
    assert turns.pending and log == []  # nothing runs in the turn that queued them
    qtbot.waitUntil(lambda: not turns.pending and log[-1] == "paint", timeout=2000)
    runs = [entry for entry in log if entry != "paint"]
    assert runs == ["a", "b"]
    assert "paint" in log[log.index("a") : log.index("b")]


def test_flush_runs_every_update_now_and_clear_drops_them(qtbot: QtBot) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    log: list[str] = []
    turns = Turns(widget)
    turns.queue("a", lambda: log.append("a"))
    turns.queue("b", lambda: log.append("b"))
    turns.flush()
    assert log == ["a", "b"] and not turns.pending
    turns.queue("c", lambda: log.append("c"))
    turns.clear()
    qtbot.wait(20)  # (turns that would have run the dropped update)
    assert log == ["a", "b"] and not turns.pending


def test_a_snapshot_paints_the_table_before_the_jobs_and_the_jobs_before_the_lanes(
    make_window: Callable[..., Any], qtbot: QtBot
) -> None:
    window = make_window()
    assert wait_until_idle(window)  # the first plot load done: none in flight at teardown
    log: list[str] = []
    table = window.table.viewport()
    real_table = window._update_table

    def update_table() -> None:
        log.append("table")
        real_table()
        table.update()

    stand_ins = {
        "_update_table": update_table,
        "_on_jobs": lambda: log.append("jobs"),
        "_update_plots": lambda force=False: log.append("plots"),
    }
    spy = PaintLog(log)
    table.installEventFilter(spy)
    for name, stand_in in stand_ins.items():
        setattr(window, name, stand_in)
    try:
        window._on_diagnosis()
        assert log == ["table"]  # the job panel and the lanes wait for later turns
        qtbot.waitUntil(lambda: "plots" in log, timeout=2000)
    finally:
        # removed before the window's teardown: a closure left on it (update_table holds the
        # window's own method) keeps it alive, with its lanes' parentless menus
        for name in stand_ins:
            delattr(window, name)
        table.removeEventFilter(spy)
    steps = [entry for entry in log if entry != "paint"]
    assert steps == ["table", "jobs", "plots"]
    assert "paint" in log[: log.index("jobs")]


def test_an_update_that_raises_leaves_the_others_to_their_turns(qtbot: QtBot) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    turns = Turns(widget)
    ran: list[str] = []

    def broken() -> None:
        ran.append("jobs")
        raise RuntimeError("a bug in one view's update")

    turns.queue("jobs", broken)
    turns.queue("plots", lambda: ran.append("plots"))
    with qtbot.capture_exceptions() as raised:  # (Qt reports a slot's exception and goes on)
        qtbot.waitUntil(lambda: "plots" in ran, timeout=2000)
    assert ran == ["jobs", "plots"] and not turns.pending
    assert len(raised) == 1
    turns.queue("a", broken)
    turns.queue("b", lambda: ran.append("b"))
    with qtbot.capture_exceptions(), pytest.raises(RuntimeError):
        turns.flush()  # raises the update's error, and leaves "b" to the next turn
    assert turns.pending
    with qtbot.capture_exceptions():
        qtbot.waitUntil(lambda: "b" in ran, timeout=2000)  # the rest in the next turns
