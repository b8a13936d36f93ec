"""What keeps the GUI thread's turns short while sources are analysed (issue 8), asserted on
what is called, not on time: a state change retitles a lane without a new layout of the
canvas, a reload's lanes take their data one per turn of the event loop, each repainted
before the next, jobs moving on are re-derived less often than changes made here, and a
restyle reuses the pooled image."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QGraphicsView
from pytestqt.qtbot import QtBot

from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.qt.diagnosis_scheduler import (
    JOB_REFRESH_DELAY_MS,
    REFRESH_DELAY_MS,
    DiagnosisScheduler,
)
from diagnostics_app.qt.plots import PlotArea, images
from diagnostics_app.qt.plots import plot_area as plot_area_module
from diagnostics_app.qt.plots.features import STALE_COLOR, pending_plot
from diagnostics_app.qt.plots.images import prepare_image
from diagnostics_app.qt.plots.lane_style import LaneStyle
from diagnostics_app.qt.window_plots import PLOT_UPDATE_BUDGET_MS
from tests.qt.test_plots import STEP, area, line_item, spectrogram_item, synthetic_peaks

__all__ = ["area"]  # the fixture, used by name

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_state_change_retitles_without_relayout(area: PlotArea) -> None:
    """The title follows the row's state (queued, running, stale) with the text alone: the
    title label never asks for a new geometry, which relayouts every lane of the canvas."""
    peaks = synthetic_peaks(30.0)
    queued = [pending_plot("rms", "rms", "line", "FS", state="queued")]
    area.show_plot("x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), queued)
    rms = area.lanes()[-1]
    label = rms.plot.titleLabel
    asked: list[int] = []
    label.updateGeometry = lambda: asked.append(1)  # what LabelItem.setText ends with
    area.set_lane_marks({rms.key: (False, "running")})
    assert rms.title.endswith("running") and label.item.toPlainText().endswith("running")
    running = [dataclasses.replace(q, state="running") for q in queued]
    area.show_plot("x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), running)  # same title
    area.set_lane_marks({rms.key: (True, "stale")})
    assert rms.title.endswith("STALE") and label.item.toPlainText() == rms.title
    assert STALE_COLOR in label.item.toHtml().lower() and label.text == rms.title
    assert asked == []


class PaintLog(QObject):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.log.append("paint")
        return False


def test_reload_updates_one_lane_per_turn_each_painted(
    qtbot: QtBot, area: PlotArea, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The main window's budget hands kept lanes their new data one lane per turn of the
    event loop, and the canvas paints in between: no turn updates and paints every lane."""
    peaks = synthetic_peaks(30.0)
    names = ("rms", "centroid", "flux")
    area.show_plot("x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), [line_item(n) for n in names])
    qtbot.waitUntil(lambda: not area.updates_pending, timeout=2000)
    log: list[str] = []
    real = plot_area_module.update_lane

    def logged(lane: Any, data: Any) -> bool:
        log.append(f"update {lane.key[0]}")
        return real(lane, data)

    monkeypatch.setattr(plot_area_module, "update_lane", logged)
    spy = PaintLog(log)
    canvas = area.findChild(QGraphicsView, "plotCanvas")
    assert canvas is not None
    canvas.viewport().installEventFilter(spy)
    fresh = [dataclasses.replace(line_item(n), data=line_item(n).data * 2) for n in names]
    area.show_plot(
        "x", 30.0, peaks, STEP, ["L", "R"], TempoMap(), fresh, budget_ms=PLOT_UPDATE_BUDGET_MS
    )
    assert log == ["update rms"] and area.updates_pending
    qtbot.waitUntil(lambda: not area.updates_pending and log[-1] == "paint", timeout=2000)
    updates = [i for i, entry in enumerate(log) if entry.startswith("update")]
    assert [log[i] for i in updates] == [f"update {n}" for n in names]
    assert all("paint" in log[a:b] for a, b in itertools.pairwise(updates))


def test_job_state_changes_coalesce_longer_than_changes_made_here(qtbot: QtBot) -> None:
    """Jobs moving on (queued, running, done) are re-derived after the longer delay, so an
    analysis is re-derived about half as often; a change made here does not wait for it."""
    scheduler = DiagnosisScheduler(lambda generation: pytest.fail("not run"), lambda s: True)
    timer = scheduler._timer  # no event loop turn below: it cannot fire
    scheduler.schedule()
    assert timer.isActive() and timer.interval() == JOB_REFRESH_DELAY_MS > REFRESH_DELAY_MS
    scheduler.schedule()  # a burst: still one wait
    assert timer.interval() == JOB_REFRESH_DELAY_MS
    scheduler.schedule(required=True)  # an edit, a prune: the short delay
    assert timer.interval() == REFRESH_DELAY_MS  # restarted, with the short delay
    scheduler.schedule()  # jobs meanwhile do not push it back
    assert timer.interval() == REFRESH_DELAY_MS
    scheduler.close()
    assert not timer.isActive()


def test_restyle_reuses_the_pooled_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lane's restyle prepares its image again from the same data: the pooling is not done
    again, and the picture is the one a fresh preparation gives; data with NaN is not kept."""
    item = spectrogram_item(5000)  # more frames than columns: max-pooled
    prepare_image(item, 0)
    pooled: list[int] = []
    real = images.pool_columns
    monkeypatch.setattr(images, "pool_columns", lambda *a, **k: pooled.append(1) or real(*a, **k))
    linear = prepare_image(item, 0, style=LaneStyle("linear", floor=-60.0))
    assert pooled == []
    copy = dataclasses.replace(item, data=item.data.copy())  # new data: pooled again
    fresh = prepare_image(copy, 0, style=LaneStyle("linear", floor=-60.0))
    assert pooled == [1] and linear.levels == fresh.levels == (-60.0, 0.0)
    assert linear.rgb is not None and fresh.rgb is not None
    assert np.array_equal(linear.image, fresh.image) and np.array_equal(linear.rgb, fresh.rgb)
    holes = item.data.copy()
    holes[10, 0, 5] = np.nan
    with_nan = dataclasses.replace(item, data=holes)
    prepare_image(with_nan, 0)
    prepare_image(with_nan, 0)
    assert pooled == [1, 1, 1]
