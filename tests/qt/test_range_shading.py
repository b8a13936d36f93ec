"""Where the audio changed, shaded on the lanes of stale rows (issue 13): a real WAV analysed,
one second of it rewritten; the lanes of the stale rows shade exactly the diagnosed ranges
(item geometry and pixels), and regenerating takes the shading away from the same lanes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QEvent, QPointF, QRectF
from PySide6.QtGui import QHelpEvent, QImage
from PySide6.QtWidgets import QApplication, QToolTip
from pytestqt.qtbot import QtBot

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.core.fingerprint import Reason
from diagnostics_app.core.session import Session
from diagnostics_app.qt.app import wait_until_idle
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.plots.lanes import Lane
from diagnostics_app.qt.plots.range_shading import (
    MAX_SPANS,
    MIN_SPAN_PX,
    Changed,
    drawn_spans,
    row_changes,
    span_tip,
)
from tests.core.project_factory import write_project

SR = 22050
SECONDS = 12.0
EDIT = (6.2, 7.2)  # seconds rewritten: inside the third 65536-frame block (5.944–8.916 s)

# the offscreen platform cannot raise the tooltip's window (it is shown all the same)
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)


# --- the rules, without a window ------------------------------------------------------------


def test_close_ranges_merge_and_far_ones_stay_apart() -> None:
    changes = [Changed(1.0, 1.5), Changed(1.5005, 2.0), Changed(5.0, 6.0)]
    # 10 s over 1000 px: 10 ms a pixel; the 0.5 ms gap is closed, the 3 s one is not
    spans = drawn_spans(changes, 0.0, 10.0, 1000.0)
    assert [(s.start, s.end) for s in spans] == [(1.0, 2.0), (5.0, 6.0)]
    assert spans[0].tip == "audio changed in 2 ranges, 0:01.000–0:02.000 (stale)"
    assert spans[1].tip == "audio changed 0:05.000–0:06.000 (stale)"
    # zoomed in to 1.4..1.6 s, 0.2 ms a pixel: the gap shows again
    assert len(drawn_spans(changes, 1.4, 1.6, 1000.0)) == 2


def test_many_small_ranges_are_bounded_and_a_one_sample_change_stays_visible() -> None:
    many = [Changed(i * 7.0, i * 7.0 + 0.01) for i in range(500)]  # 500 ranges over an hour
    spans = drawn_spans(many, 0.0, 3500.0, 1200.0)
    assert len(spans) <= MAX_SPANS
    assert spans[0].start == 0.0 and spans[-1].end == pytest.approx(499 * 7.0 + 0.01, abs=3.0)
    assert sum(int(s.tip.split(" in ")[1].split()[0]) for s in spans if " in " in s.tip) + sum(
        1 for s in spans if " in " not in s.tip
    ) == len(many)  # every range is in exactly one span's tooltip
    tiny = drawn_spans([Changed(100.0, 100.00002)], 0.0, 3600.0, 1000.0)
    (span,) = tiny
    assert span.end - span.start == pytest.approx(MIN_SPAN_PX * 3.6)  # two pixels wide


def test_a_range_to_the_end_is_clipped_near_the_view_and_far_ones_are_not_drawn() -> None:
    to_end = [Changed(3.0, 3600.0)]
    (span,) = drawn_spans(to_end, 10.0, 11.0, 800.0)  # zoomed in: a view's width either side
    assert (span.start, span.end) == (9.0, 12.0)
    assert "0:03.000–60:00.000" in span.tip  # the tooltip names the whole range
    assert drawn_spans([Changed(100.0, 101.0)], 10.0, 11.0, 800.0) == []


def test_every_reason_with_ranges_counts_while_the_row_is_stale() -> None:
    key = RowKey("a", "beat_rms", "core.beat_rms", "default", "{}")
    reasons = (
        Reason("audio.content", "b:1", "b:2", ranges=((4.0, 5.0),)),
        Reason("tempo_map", "x", "y", ranges=((1.0, 2.0),)),
        Reason("calculator.version", 1, 2),
    )
    row = Row(key, "stale", ("t",), reasons=reasons)
    assert row_changes(row) == (Changed(1.0, 2.0, "tempo_map"), Changed(4.0, 5.0, "audio"))
    assert span_tip(row_changes(row)) == (
        "audio, tempo_map changed in 2 ranges, 0:01.000–0:05.000 (stale)"
    )
    assert row_changes(Row(key, "queued", ("t",), reasons=reasons)) == ()
    assert row_changes(Row(key, "stale", ("t",), reasons=reasons[2:])) == ()


# --- in the window: a real WAV, one second rewritten ------------------------------------------


@pytest.fixture
def edited(tmp_path: Path) -> Path:
    """A 12 s WAV analysed (waveform peaks, rms, spectrogram), then one second of it
    rewritten in place (same length and format)."""
    t = np.arange(int(SR * SECONDS)) / SR
    rng = np.random.default_rng(3)
    y = 0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.01 * rng.standard_normal(t.size)
    audio = tmp_path / "audio" / "a.wav"
    audio.parent.mkdir()
    sf.write(audio, y[:, None], SR, "PCM_16")
    project = write_project(
        tmp_path,
        {
            "name": "Shading",
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [
                        {"feature": "peaks"},
                        {"feature": "rms"},
                        {"feature": "spectrogram"},
                    ],
                }
            ],
        },
    )
    with Session.open(project, Registry.builtin()) as session:
        session.enqueue(session.plan())
        assert all(r.status == "done" for r in session.runner.run_all())
    a, b = (int(v * SR) for v in EDIT)
    y[a:b] = 0.05 * np.sin(2 * np.pi * 880.0 * t[a:b])  # quieter and higher
    sf.write(audio, y[:, None], SR, "PCM_16")
    return project


def lane_of(window: MainWindow, feature: str) -> Lane:
    return next(lane for lane in window.plot_area.lanes() if lane.key[1:2] == (feature,))


def row_of(window: MainWindow, feature: str) -> Row:
    return next(r for r in window.controller.diagnosis.rows if r.key.feature == feature)


def shaded(window: MainWindow, lane: Lane) -> list[tuple[float, float]]:
    return [
        (item.rect().left(), item.rect().right())
        for item in window.plot_area.range_shading.items(lane)
    ]


def amber_share(image: QImage, window: MainWindow, lane: Lane, t0: float, t1: float) -> float:
    """The share of the lane's pixels between ``t0`` and ``t1`` (inner 80 % of its height)
    that are amber, however dark: green well below red, blue far below (no viridis colour,
    curve colour or grid line is)."""
    canvas = window.plot_area._canvas
    lo, hi = lane.y_range
    span = hi - lo
    top_left = canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(t0, hi - 0.1 * span)))
    bottom_right = canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(t1, lo + 0.1 * span)))
    amber = total = 0
    for x in range(top_left.x() + 2, bottom_right.x() - 1):
        for y in range(top_left.y(), bottom_right.y(), 2):
            c = image.pixelColor(x, y)
            total += 1
            r, g, b = c.red(), c.green(), c.blue()
            amber += r > 30 and 0.5 * r < g < 0.85 * r and b < 0.4 * r
    assert total > 50
    return amber / total


def test_changed_ranges_are_shaded_on_stale_lanes_until_regenerated(
    make_window: Callable[..., MainWindow], qtbot: QtBot, edited: Path
) -> None:
    window = make_window(edited)
    window.select(("source", "a"))
    assert wait_until_idle(window)
    rms, spec = lane_of(window, "rms"), lane_of(window, "spectrogram")
    waveform = window.plot_area.lanes()[0]
    assert waveform.key[0] == "waveform"
    for feature in ("peaks", "rms", "spectrogram"):
        row = row_of(window, feature)
        assert row.state == "stale"
        (reason,) = [r for r in row.reasons if r.ranges]
        assert reason.ranges == ((pytest.approx(65536 * 2 / SR), pytest.approx(65536 * 3 / SR)),)
    expected = [tuple(r) for r in row_of(window, "rms").reasons[0].ranges or ()]
    area = window.plot_area
    area.set_time_range(0.0, SECONDS)
    qtbot.waitUntil(lambda: not area.range_shading.refresh_pending)
    for lane in (waveform, rms, spec):
        assert shaded(window, lane) == [pytest.approx(r) for r in expected]  # the seconds
        (item,) = area.range_shading.items(lane)
        assert item.toolTip() == "audio changed 0:05.944–0:08.916 (stale)"
        assert item.rect().top() == pytest.approx(lane.vb.viewRange()[1][0])
        assert item.rect().bottom() == pytest.approx(lane.vb.viewRange()[1][1])
        assert item.hatched == (lane is spec)  # over the picture, hatched
        assert item.zValue() > (lane.image.zValue() if lane.image is not None else -100)
    # pixels: amber inside the range, none outside it, in the same lane
    for lane in (rms, spec):
        area.scroll_to_lane(lane)
        image = area._canvas.grab().toImage()
        inside = amber_share(image, window, lane, expected[0][0] + 0.3, expected[0][1] - 0.3)
        outside = amber_share(image, window, lane, 1.0, 5.0)
        assert inside > 0.05 and outside < 0.01, (lane.key, inside, outside)
    # the tooltip, where the mouse rests over the range (under the rms curve's lane)
    canvas = area._canvas
    y = sum(rms.y_range) / 2
    pos = canvas.mapFromScene(rms.vb.mapViewToScene(QPointF(sum(expected[0]) / 2, y)))
    viewport = canvas.viewport()
    QApplication.sendEvent(
        viewport, QHelpEvent(QEvent.Type.ToolTip, pos, viewport.mapToGlobal(pos))
    )
    qtbot.waitUntil(QToolTip.isVisible)
    assert QToolTip.text() == "audio changed 0:05.944–0:08.916 (stale)"
    QToolTip.hideText()

    kept = list(area.lanes())
    said: list[str] = []
    window.controller.message.connect(lambda text, _ms: said.append(text))
    window.controller.regenerate([row_of(window, f) for f in ("peaks", "rms", "spectrogram")])
    assert wait_until_idle(window)
    # only the frames the edit touches were recomputed, and the status bar says so
    assert any(t.startswith("a: partial: ") and t.endswith(" recomputed") for t in said), said
    assert {row_of(window, f).state for f in ("peaks", "rms", "spectrogram")} == {"ok"}
    assert list(area.lanes()) == kept  # the same lanes: only the shading went
    for lane in kept:
        assert area.range_shading.items(lane) == []
    image = area._canvas.grab().toImage()
    assert amber_share(image, window, rms, expected[0][0] + 0.3, expected[0][1] - 0.3) < 0.01


def test_zooming_merges_and_clips_on_the_same_lane(
    make_window: Callable[..., MainWindow], qtbot: QtBot, edited: Path
) -> None:
    """The drawn spans follow the view (rate-limited), on the lanes already shaded; handed
    no ranges, a lane loses its items."""
    window = make_window(edited)
    window.select(("source", "a"))
    assert wait_until_idle(window)
    area = window.plot_area
    rms = lane_of(window, "rms")
    shading = area.range_shading
    changes = [Changed(0.5, 0.6), Changed(0.6004, 0.7), Changed(8.0, 11.5)]
    shading.set_changes({rms.key[:2]: changes})
    area.set_time_range(0.0, SECONDS)
    qtbot.waitUntil(lambda: not shading.refresh_pending)
    assert shaded(window, rms) == [pytest.approx((0.5, 0.7)), pytest.approx((8.0, 11.5))]
    area.set_time_range(0.55, 0.65)  # 0.1 s over the lane: the 0.4 ms gap is a few pixels
    qtbot.waitUntil(lambda: not shading.refresh_pending)
    assert shaded(window, rms) == [pytest.approx((0.5, 0.6)), pytest.approx((0.6004, 0.7))]
    area.set_time_range(9.0, 10.0)
    qtbot.waitUntil(lambda: not shading.refresh_pending)
    assert shaded(window, rms) == [pytest.approx((8.0, 11.0))]  # clipped a view's width out
    (item,) = shading.items(rms)
    assert item.boundingRect().intersects(QRectF(9.0, -1e9, 1.0, 2e9))
    shading.set_changes({})
    assert shading.items(rms) == []
