"""Crowding: the descriptor table's columns fit at 1,400 px, cut text has its tooltip, the
profile cell is short; the job panel's default and remembered size; labelled counts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QHelpEvent, QTextDocumentFragment
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem, QToolTip

from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.core.states import SEVERITY
from diagnostics_app.core.store import JobRecord
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.models.descriptors import (
    COL_CALC,
    COL_FEATURE,
    COL_PROFILE,
    COL_REASON,
    COL_SIZE,
    COL_TRACKS,
    COL_UPDATED,
    DescriptorTableModel,
    updated_text,
)
from diagnostics_app.qt.settings import SettingsStore
from diagnostics_app.qt.widgets.descriptor_table import REASON_MIN, DescriptorTable

WindowFactory = Callable[..., MainWindow]


def _row(feature: str = "pitch", profile: str = "default", **kw: Any) -> Row:
    key = RowKey("song", feature, f"core.{feature}", profile, "{}")
    return Row(key, kw.pop("state", "ok"), **kw)


def test_profile_cell_is_short_and_its_tooltip_has_every_parameter(qtbot: Any) -> None:
    model = DescriptorTableModel()
    model.set_rows(
        [
            _row(params={"fmax": 800.0, "fmin": 80.0}),
            _row("rms", "fine", params={"window_size": 4096}),
            _row("mel", "trough_thresholds_strict"),
        ]
    )
    cell = [model.index(r, COL_PROFILE) for r in range(3)]
    assert [c.data() for c in cell] == [
        "default +2 params",
        "fine +1 param",
        "trough_thresholds_strict",
    ]
    tip = cell[0].data(Qt.ItemDataRole.ToolTipRole)
    assert "profile default" in tip
    assert "fmax = 800.0" in tip and "fmin = 80.0" in tip
    assert cell[2].data(Qt.ItemDataRole.ToolTipRole) == "profile trough_thresholds_strict"


def test_updated_is_short_with_the_full_time_in_the_tooltip() -> None:
    now = time.mktime((2026, 11, 30, 15, 0, 0, 0, 0, -1))
    today = _row(updated=time.mktime((2026, 11, 30, 9, 5, 0, 0, 0, -1)))
    earlier = _row(updated=time.mktime((2026, 3, 2, 9, 5, 0, 0, 0, -1)))
    last_year = _row(updated=time.mktime((2025, 3, 2, 9, 5, 0, 0, 0, -1)))
    assert updated_text(today, now) == "09:05"
    assert updated_text(earlier, now) == "02 Mar 09:05"
    assert updated_text(last_year, now) == "2025-03-02"
    model = DescriptorTableModel()
    model.set_rows([last_year])
    assert model.index(0, COL_UPDATED).data(Qt.ItemDataRole.ToolTipRole) == "2025-03-02 09:05:00"


def _right_edge(table: DescriptorTable, col: int) -> int:
    header = table.horizontalHeader()
    return header.sectionViewportPosition(col) + header.sectionSize(col)


def test_columns_fit_at_1400_px(make_window: WindowFactory, qtbot: Any) -> None:
    window = make_window()
    assert window.width() == 1400
    window.select(("source", "drums"))
    table = window.table
    assert table.table_model.rowCount() > 5
    qtbot.waitUntil(lambda: table.viewport().width() > 500)
    width = table.viewport().width()
    for col in (COL_REASON, COL_UPDATED, COL_SIZE):
        assert table.horizontalHeader().sectionViewportPosition(col) >= 0
        assert _right_edge(table, col) <= width, f"column {col} is past the viewport"
    assert table.horizontalHeader().sectionSize(COL_REASON) >= REASON_MIN
    assert table.horizontalScrollBar().maximum() == 0


# the offscreen platform cannot raise the tooltip's window; the tooltip is still set
@pytest.mark.qt_log_ignore("This plugin does not support raise")
def test_long_names_give_way_and_keep_their_text_in_a_tooltip(qtbot: Any) -> None:
    table = DescriptorTable()
    qtbot.addWidget(table)
    table.resize(760, 300)
    table.show()
    qtbot.waitExposed(table)
    long_tracks = tuple(f"track_number_{i}" for i in range(12))
    table.set_rows(
        [
            _row("spectrogram", "a_very_long_profile_name_indeed", tracks=long_tracks),
            _row("rms", message="x" * 200, state="invalid"),
        ]
    )
    table.fit_columns()
    assert _right_edge(table, COL_SIZE) <= table.viewport().width()
    assert table.horizontalHeader().sectionSize(COL_REASON) >= REASON_MIN
    proxy = table.model()
    (r,) = [r for r in range(2) if proxy.index(r, COL_FEATURE).data() == "spectrogram"]
    assert table.cell_tooltip(proxy.index(r, COL_TRACKS)) == ", ".join(long_tracks)
    # hovering shows it
    centre = table.visualRect(proxy.index(r, COL_TRACKS)).center()
    event = QHelpEvent(QEvent.Type.ToolTip, centre, table.viewport().mapToGlobal(centre))
    QApplication.sendEvent(table.viewport(), event)
    assert QToolTip.text() == ", ".join(long_tracks)
    QToolTip.hideText()
    # a cell that fits gives only the model's tooltip (none for the feature)
    assert table.cell_tooltip(proxy.index(r, COL_FEATURE)) is None
    # the profile is cut: its name and the tooltip's full parameters both show
    profile_tip = table.cell_tooltip(proxy.index(r, COL_PROFILE))
    assert profile_tip == "profile a_very_long_profile_name_indeed"
    # the calculator id gives way on the left: its last part tells calculators apart
    calc = proxy.index(r, COL_CALC)
    option = QStyleOptionViewItem()
    option.initFrom(table)
    table.itemDelegateForColumn(COL_CALC).initStyleOption(option, calc)
    assert option.textElideMode == Qt.TextElideMode.ElideLeft


def test_window_resize_refits(make_window: WindowFactory, qtbot: Any) -> None:
    window = make_window()
    window.select(("source", "drums"))
    window.resize(1100, 900)
    table = window.table
    qtbot.waitUntil(lambda: _right_edge(table, COL_SIZE) <= table.viewport().width())


def _jobs(running: int, queued: int) -> list[JobRecord]:
    return [
        JobRecord.new("drums", ["core.rms"], features=["rms"], state="running", label="")
        for _ in range(running)
    ] + [JobRecord.new("bass", ["core.mel"], features=["mel"]) for _ in range(queued)]


def test_job_panel_shows_six_jobs_and_its_size_is_remembered(
    make_window: WindowFactory, qtbot: Any, settings_path: Path
) -> None:
    window = make_window()
    view = window.jobs.view
    window.jobs.set_jobs(_jobs(1, 7))
    row = view.rowHeight(0)
    assert row > 0
    assert view.viewport().height() >= 6 * row, "the job panel shows fewer than six jobs"
    # the user makes it taller and drags the table/plots splitter: both come back
    window.resizeDocks([window.jobs_dock], [340], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: abs(window.jobs_dock.height() - 340) <= 2)
    tall = window.jobs_dock.height()
    total = sum(window.centre_splitter.sizes())
    window.centre_splitter.setSizes([total - 140, 140])  # room for the table's minimum
    sizes = window.centre_splitter.sizes()
    assert sizes == [total - 140, 140]
    window.settings_store = SettingsStore()
    window.save_window_state()
    saved = SettingsStore().load()
    assert saved.table_splitter and saved.centre_splitter and saved.window_state
    again = make_window()
    assert again.jobs_dock.height() < tall  # the default first
    # (the offscreen platform keeps no frame geometry: the size stays the test's 1400x900)
    again.restore_window_state(dataclasses.replace(saved, window_geometry=b""))
    qtbot.waitUntil(lambda: abs(again.jobs_dock.height() - tall) <= 2)
    qtbot.waitUntil(lambda: again.centre_splitter.sizes() == sizes)
    assert settings_path.exists()


def test_status_bar_counts_say_what_they_count(
    make_window: WindowFactory, settle: Callable[[Any], None]
) -> None:
    window = make_window()
    rows = window.controller.diagnosis.rows
    counts = {s: sum(1 for r in rows if r.state == s) for s in SEVERITY}
    assert counts["stale"] and counts["ok"]
    text = QTextDocumentFragment.fromHtml(window.summary_label.text()).toPlainText()
    expected = " · ".join(f"{n} {s}" for s, n in counts.items() if n)
    assert text == f"Rows: {expected}"
    assert window.jobs_label.text() == "Jobs: none"
    # two jobs running and three queued, whatever the rows say: each label counts its own
    window.jobs.set_jobs(_jobs(2, 3))
    assert window.jobs_label.text() == "Jobs: 2 running · 3 queued"
    assert window.jobs.summary.text() == "Jobs: 2 running · 3 queued"
    assert "running" not in text  # no row is running: the rows label did not take the jobs'
    window.jobs.set_jobs([])
    assert window.jobs_label.text() == "Jobs: none"
