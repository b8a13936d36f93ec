"""The Why panel lists where the audio changed (core.ranges) for a stale row."""

from __future__ import annotations

from typing import Any

from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.core.fingerprint import Reason
from diagnostics_app.qt.models.explain import RANGES_SHOWN, ranges_lines
from diagnostics_app.qt.widgets.explain_panel import ExplainPanel


def _row(**reason: Any) -> Row:
    return Row(
        RowKey("a", "rms", "core.rms", "default", "{}"),
        "stale",
        ("t",),
        reasons=(Reason("audio.content", "b2:old", "b2:new", **reason),),
        message="audio.content changed",
    )


def test_changed_ranges_and_frames_are_listed(qtbot: Any) -> None:
    panel = ExplainPanel()
    qtbot.addWidget(panel)
    panel.set_row(_row(ranges=((62.3, 63.1), (120.0, 121.5)), affected_frames=((10, 20),)))
    assert panel.ranges_label.isVisibleTo(panel)
    text = panel.ranges_label.text()
    assert "changed 1:02.300–1:03.100" in text and "changed 2:00.000–2:01.500" in text
    assert "affects frames 10–20" in text
    assert "changed 1:02.300–1:03.100" in panel.text()
    panel.set_row(_row())  # no ranges known: nothing listed
    assert not panel.ranges_label.isVisibleTo(panel)


def test_unbounded_reach_and_many_ranges() -> None:
    many = tuple((float(i), i + 0.5) for i in range(RANGES_SHOWN + 5))
    lines = ranges_lines(_row(ranges=many, affected_frames="all"))
    assert lines[RANGES_SHOWN] == "+5 more"
    assert lines[-1].startswith("affects every frame")
    assert ranges_lines(_row(ranges=(), affected_frames=())) == (
        "no decoded sample changed (only the file's bytes)",
    )
    assert ranges_lines(None) == ()


def test_the_table_reason_names_the_changed_range() -> None:
    from diagnostics_app.qt.models.descriptors import reason_text

    row = _row(ranges=((62.3, 63.1),), affected_frames=((1, 2),))
    assert reason_text(row) == "audio.content: changed 1:02.300–1:03.100"
    assert reason_text(_row()) == "audio.content changed"
