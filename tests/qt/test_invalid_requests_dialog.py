"""A request the project file got wrong is an `invalid` row, not a refused project; the
Requests dialog shows it as such and keeps it as written unless it is changed there."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QDialogButtonBox

from diagnostics_app.core.project import Request
from diagnostics_app.qt.main_window import MainWindow


def _with_mistake(demo_project: Path) -> Path:
    data = json.loads(demo_project.read_text())
    bass = next(t for t in data["tracks"] if t["id"] == "bass")
    bass["requests"].append({"feture": "rms"})  # a misspelt key
    demo_project.write_text(json.dumps(data))
    return demo_project


def _invalid(window: MainWindow) -> list[str]:
    return [r.message or "" for r in window.controller.diagnosis.rows if r.state == "invalid"]


def test_an_invalid_request_survives_an_edit_of_its_track(
    make_window: Callable[..., MainWindow], demo_project: Path, settle: Callable[..., None]
) -> None:
    window = make_window(_with_mistake(demo_project))
    [message] = _invalid(window)
    assert "feture" in message and 'did you mean "feature"' in message
    window.select(("track", "bass"))
    dialog = window.requests_dialog()
    assert dialog is not None
    n = dialog.table.rowCount()
    bad_row = n - 1
    assert "feture" in dialog.table.item(bad_row, 3).toolTip()  # the row says why
    dialog.add_row(Request("onset"))  # an edit of the track's other requests
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    requests = window.controller.project.track("bass").requests
    assert len(requests) == n + 1
    assert requests[bad_row].raw == {"feture": "rms"}  # kept as written, not rebuilt as "?"
    settle(window)
    assert ["feture" in m for m in _invalid(window)] == [True]


def test_fixing_an_invalid_request_in_the_dialog_makes_it_valid(
    make_window: Callable[..., MainWindow], demo_project: Path, settle: Callable[..., None]
) -> None:
    window = make_window(_with_mistake(demo_project))
    window.select(("track", "bass"))
    dialog = window.requests_dialog()
    assert dialog is not None
    bad_row = dialog.table.rowCount() - 1
    feature = dialog.table.cellWidget(bad_row, 0)
    assert isinstance(feature, QComboBox)
    feature.setCurrentText("centroid")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    fixed = window.controller.project.track("bass").requests[bad_row]
    assert (fixed.feature, fixed.problem) == ("centroid", None)
    settle(window)
    assert _invalid(window) == []


def test_unknown_keys_outside_requests_are_warnings_in_the_status_bar(
    make_window: Callable[..., MainWindow], demo_project: Path
) -> None:
    data = json.loads(demo_project.read_text())
    data["sources"][0]["gain"] = 2  # not a key of a source: changes nothing, said
    demo_project.write_text(json.dumps(data))
    window = make_window(demo_project)
    assert window.warnings_label.text() == "⚠ 1 warning"
    assert "gain" in window.warnings_label.toolTip()
    assert _invalid(window) == []  # the project works
