"""Compare mode in the window (issue 11): a calculator plugin whose version 2 changes its
output in one time range; after the regeneration "Compare with Previous" overlays the
previous version (a grey ghost curve; for images Current / Previous / Difference in a
diverging map), marks the range on the ruler, says the statistics in the Why panel, and
"Play Differences" plays the range from a pre-roll on a real (ALSA null) stream."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from diagnostics_app.cli import main as cli_main
from diagnostics_app.core.calculators.registry import PLUGIN_PATH_ENV
from diagnostics_app.core.compare import clock
from diagnostics_app.qt.compare_mode import signed_pool
from diagnostics_app.qt.diff_playback import PRE_ROLL_S, play_spans
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.plots.compare_overlay import DIFFERENCE, PREVIOUS
from diagnostics_app.qt.plots.lane_style import LaneStyle, book
from diagnostics_app.qt.plots.lanes import Lane
from tests.core.project_factory import SR, write_project, write_tone
from tests.qt.test_playback import WAIT_MS, alsa_null

__all__ = ["alsa_null"]  # the fixture, used by name

HOP = 256
CHANGED = (0.8, 1.0)  # seconds: version 2 changes the frames whose time falls here
BINS = 8

PLUGIN = """
import numpy as np
from diagnostics_app.core.calculators import (
    Calculator, CalculatorRun, FeatureSpec, as_frames, uniform_meta,
)

LEVEL = FeatureSpec("level", unit="FS", description="mean absolute value per frame")
GRID = FeatureSpec("grid", kind="image", unit="dB", bin_unit="Hz", description="bands")


class Level(Calculator):
    id = "qa.level"
    version = {version}
    features = (LEVEL, GRID)
    params = ("window_size", "hop_size", "channel_mode")
    description = "mean absolute value of centred frames, and a band picture"

    def start(self, ctx):
        return _Run(ctx)


class _Run(CalculatorRun):
    def __init__(self, ctx):
        self.ctx = ctx

    def process(self, block):
        n = self.ctx.params.get_int("window_size")
        level = np.abs(block.frames(n, -(n // 2))).mean(axis=-1)  # (channels, frames)
        hop, sr = self.ctx.hop, self.ctx.sample_rate
        times = (block.frame_start + np.arange(level.shape[1])) * hop / sr
        lo, hi = {changed}
        inside = (times >= lo) & (times < hi)
        grid = 20 * np.log10(level[..., None] + 1e-3) - np.arange({bins})  # (ch, frames, bins)
        # version 2: the level scaled, the low bands louder and the high ones quieter
        level = np.where(inside, level * {factor}, level)
        sign = np.where(np.arange({bins}) < {bins} // 2, 1.0, -1.0)
        grid = grid + np.where(inside[None, :, None], {db} * sign, 0.0)
        return {{"level": as_frames(level), "grid": as_frames(grid)}}

    def outputs(self):
        bins = [100.0 * (i + 1) for i in range({bins})]
        return {{
            "level": uniform_meta(self.ctx, LEVEL, 1),
            "grid": uniform_meta(self.ctx, GRID, {bins}, bins=bins),
        }}
"""


def install(folder: Path, version: int, factor: float, db: float) -> Path:
    target = folder / f"v{version}"
    target.mkdir(parents=True, exist_ok=True)
    code = PLUGIN.format(version=version, changed=CHANGED, factor=factor, db=db, bins=BINS)
    (target / "level_plugin.py").write_text(textwrap.dedent(code))
    return target


def expected_range() -> tuple[float, float]:
    step = HOP / SR
    first = math.ceil(CHANGED[0] / step - 1e-9)
    after = math.ceil(CHANGED[1] / step - 1e-9)
    return first * step, after * step


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Analysed with version 1, then regenerated with version 2 (through the CLI)."""
    write_tone(tmp_path / "proj" / "audio" / "a.wav", 1.5, 330.0)
    path = write_project(
        tmp_path / "proj",
        {
            "name": "Compare",
            "profiles": {"default": {"window_size": 1024, "hop_size": HOP}},
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [
                        {"feature": "level"},
                        {"feature": "grid"},
                        {"feature": "rms"},
                    ],
                }
            ],
        },
    )
    plugins = tmp_path / "plugins"
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(install(plugins, 1, 1.0, 0.0)))
    assert cli_main(["analyze", str(path)]) == 0
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(install(plugins, 2, 1.5, 6.0)))
    assert cli_main(["analyze", str(path)]) == 0
    return path


def open_compared(
    make_window: Callable[..., MainWindow], qtbot: QtBot, project: Path, feature: str
) -> MainWindow:
    """The window on ``project``, its source selected, the ``feature`` row compared."""
    window = make_window(project)
    window.select(("source", "a"))
    qtbot.waitUntil(lambda: len(lanes_of(window, feature)) > 0, timeout=WAIT_MS)
    select_row(window, feature)
    action = window.actionCompareWithPrevious
    assert action.isEnabled()
    action.trigger()
    qtbot.waitUntil(lambda: window.compare_result is not None, timeout=WAIT_MS)
    return window


def row_of(window: MainWindow, feature: str) -> Any:
    return next(r for r in window.selection_rows() if r.key.feature == feature)


def select_row(window: MainWindow, feature: str) -> None:
    assert window.table.select_key(row_of(window, feature).key)
    window._update_actions()


def lanes_of(window: MainWindow, feature: str) -> list[Lane]:
    return [ln for ln in window.plot_area.lanes() if len(ln.key) > 1 and ln.key[1] == feature]


def previous_level(window: MainWindow) -> np.ndarray:
    store = window.controller.session.store
    key = row_of(window, "level").key
    version = store.previous(key.entry_key, "level")
    assert version is not None
    return np.asarray(store.load_previous(version).data)[:, 0, 0]


def test_compare_with_previous_on_a_line_lane(
    make_window: Callable[..., MainWindow], qtbot: QtBot, project: Path
) -> None:
    window = open_compared(make_window, qtbot, project, "level")
    lo, hi = expected_range()
    result = window.compare_result
    assert result is not None and result.comparison.verdict == "differs"
    assert len(result.comparison.ranges) == 1
    start, end = result.comparison.ranges[0]
    assert start == pytest.approx(lo) and end == pytest.approx(hi)
    # the ghost: the previous version's values, grey, under the current curve
    (lane,) = lanes_of(window, "level")
    ghosts = window.compare_overlay.ghosts(lane)
    assert len(ghosts) == 1
    ghost_y = ghosts[0].getData()[1]
    old = previous_level(window)
    assert np.allclose(ghost_y, old)
    current_y = lane.curves[0].getData()[1]
    inside = (ghosts[0].getData()[0] >= lo) & (ghosts[0].getData()[0] < hi)
    assert np.allclose(current_y[inside], old[inside] * 1.5)
    assert np.array_equal(current_y[~inside], old[~inside])
    assert ghosts[0].zValue() < lane.curves[0].zValue()
    assert window.compare_overlay.shade(lane) is not None
    # the ruler: a red band exactly over the range
    ruler = window.plot_area.ruler
    assert ruler.marks == ((start, end),)
    window.plot_area.set_time_range(0.0, 1.5)
    window.plot_area._update_ruler()
    (span,) = ruler.mark_spans()
    x0, x1 = ruler.x_of(start), ruler.x_of(end)
    assert x0 is not None and x1 is not None
    assert span == pytest.approx((x0, x1))
    picture = ruler.grab().toImage()
    y = ruler.height() * 3 // 4
    inside_px = QColor(picture.pixel(int((x0 + x1) / 2), y))
    outside_px = QColor(picture.pixel(int(x0) - 20, y))
    assert inside_px.red() > 150 and inside_px.green() < 100
    assert outside_px.red() < 80
    # the Why panel: the verdict and the range, in m:ss.mmm
    text = window.explain.text()
    assert "differs" in text
    assert f"{clock(start)}–{clock(end)}" in text
    assert "regenerated — differs from the previous version" in text
    # leaving compare mode gives the lane back
    window.actionCompareWithPrevious.trigger()
    assert window.compare_result is None
    assert window.compare_overlay.ghosts(lane) == []
    assert not [i for i in lane.vb.addedItems if i in ghosts]
    assert ruler.marks == ()
    assert "Compared with the previous version" not in window.explain.text()


def test_rows_without_previous_cannot_be_compared(
    make_window: Callable[..., MainWindow], qtbot: QtBot, project: Path
) -> None:
    window = make_window(project)
    window.select(("source", "a"))
    select_row(window, "rms")  # computed once: nothing was replaced
    assert not window.actionCompareWithPrevious.isEnabled()
    assert not window.actionPlayDifferences.isEnabled()
    select_row(window, "level")
    assert window.actionCompareWithPrevious.isEnabled()


def lane_pixel(window: MainWindow, lane: Lane, t: float, y: float) -> QColor:
    """The colour the canvas shows at time ``t`` and view ``y`` of ``lane``."""
    canvas = window.plot_area._canvas
    point = canvas.mapFromScene(lane.vb.mapViewToScene(QPointF(t, y)))
    image = canvas.grab().toImage()
    return QColor(image.pixel(point.x(), point.y()))


def test_image_lane_toggles_current_previous_and_difference(
    make_window: Callable[..., MainWindow], qtbot: QtBot, project: Path
) -> None:
    window = open_compared(make_window, qtbot, project, "grid")
    result = window.compare_result
    assert result is not None and result.comparison.verdict == "differs"
    (lane,) = lanes_of(window, "grid")
    assert lane.image is not None
    current = np.array(lane.image.image)
    window.plot_area.set_time_range(0.0, 1.5)
    window.plot_area.scroll_to_lane(lane)
    window.set_compare_image_mode(PREVIOUS)
    previous = np.array(lane.image.image)
    assert previous.shape == current.shape and not np.array_equal(previous, current)
    assert window.actionComparePrevious.isChecked()
    window.actionCompareDifference.trigger()
    assert window.compare_overlay.image_mode == DIFFERENCE
    assert lane.image.cmap_name == "CET-D1"
    lo, hi = (float(v) for v in lane.image.levels)
    assert lo == pytest.approx(-hi) and hi > 0  # symmetric: 0 is the middle colour
    y_low, y_high = lane.y_range[0], lane.y_range[1]
    low = y_low + 0.1 * (y_high - y_low)  # the low bands (louder in version 2)
    high = y_low + 0.9 * (y_high - y_low)  # the high bands (quieter)
    mid_t = sum(expected_range()) / 2
    equal = lane_pixel(window, lane, 0.4, low)
    assert min(equal.red(), equal.green(), equal.blue()) > 215  # white: no difference
    louder = lane_pixel(window, lane, mid_t, low)
    assert louder.red() > 150 and louder.blue() < 100  # red: new > old
    quieter = lane_pixel(window, lane, mid_t, high)
    assert quieter.blue() > 150 and quieter.red() < 120  # blue: new < old
    assert "difference" in window.compare_overlay.label_text(lane)
    # leaving compare mode: the current picture again
    window.leave_compare()
    assert np.array_equal(np.array(lane.image.image), current)
    assert lane.image.cmap_name != "CET-D1"


def test_play_spans_add_the_pre_roll_and_merge() -> None:
    assert play_spans([(2.0, 3.0), (0.2, 0.4)]) == [(0.0, 0.4), (1.5, 3.0)]
    assert play_spans([(1.0, 2.0), (2.3, 2.6)]) == [(0.5, 2.6)]  # 2.3 - 0.5 overlaps
    assert play_spans([(1.0, 2.0)], end=1.5) == [(0.5, 1.5)]


def test_play_differences_plays_each_range_from_its_pre_roll(
    alsa_null: None, make_window: Callable[..., MainWindow], qtbot: QtBot, project: Path
) -> None:
    window = open_compared(make_window, qtbot, project, "level")
    player = window.player
    qtbot.waitUntil(lambda: player.duration() > 0, timeout=WAIT_MS)
    window._update_compare_actions()
    assert window.actionPlayDifferences.isEnabled()
    lo, hi = expected_range()
    seen: list[float] = []
    player.positionChanged.connect(seen.append)
    with qtbot.waitSignal(window.diff_playback.finished, timeout=WAIT_MS):
        window.actionPlayDifferences.trigger()
        assert seen[0] == pytest.approx(lo - PRE_ROLL_S, abs=1.0 / SR)
        assert window.plot_area.playhead() == seen[0]  # the playhead follows
    assert not player.is_playing()
    assert seen[-1] == pytest.approx(hi, abs=1.0 / SR)  # stopped at the range's end
    assert all(lo - PRE_ROLL_S - 1.0 / SR <= p <= hi + 1.0 / SR for p in seen)


def test_an_identical_regeneration_is_said_in_the_why_panel(
    make_window: Callable[..., MainWindow],
    qtbot: QtBot,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugins = project.parent.parent / "plugins"
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(install(plugins, 3, 1.5, 6.0)))  # = version 2
    assert cli_main(["analyze", str(project)]) == 0
    window = make_window(project)
    window.select(("source", "a"))
    select_row(window, "level")
    window.explain.set_row(window.table.current_row())
    assert "regenerated — identical to the previous version" in window.explain.text()
    window.actionCompareWithPrevious.trigger()
    qtbot.waitUntil(lambda: window.compare_result is not None, timeout=WAIT_MS)
    assert window.compare_result is not None
    assert window.compare_result.comparison.verdict == "identical"
    assert window.plot_area.ruler.marks == ()
    assert not window.actionPlayDifferences.isEnabled()  # nothing differs: nothing to play


def test_the_image_lane_menu_offers_the_three_views_while_comparing(
    make_window: Callable[..., MainWindow], qtbot: QtBot, project: Path
) -> None:
    window = open_compared(make_window, qtbot, project, "grid")
    (lane,) = lanes_of(window, "grid")
    assert lane.view_box.menu_for is not None
    menu = lane.view_box.menu_for()
    assert menu is not None
    names = {a.objectName(): a for a in menu.actions()}
    assert names["laneCompareCurrent"].isChecked()
    assert "Log frequency" in {a.text() for a in menu.actions()}  # the lane's own entries
    names["laneCompareDifference"].trigger()
    assert window.compare_overlay.image_mode == DIFFERENCE
    assert lane.image is not None and lane.image.cmap_name == "CET-D1"
    menu.deleteLater()
    window.leave_compare()
    after = lane.view_box.menu_for()
    assert after is not None  # the lane's own menu (scale, colours) again, without the views
    assert not [a for a in after.actions() if a.objectName().startswith("laneCompare")]
    assert "Log frequency" in {a.text() for a in after.actions()}
    after.deleteLater()


def test_signed_pool_keeps_the_largest_change_with_its_sign() -> None:
    values = np.zeros((10, 2), np.float32)
    values[1, 0], values[2, 0] = 0.5, -2.0  # pool 0: the decrease is the larger
    values[6, 1] = 3.0
    pooled, k = signed_pool(values, max_columns=2)
    assert k == 5
    assert pooled.tolist() == [[-2.0, 0.0], [0.0, 3.0]]


def test_another_style_while_comparing_prepares_the_views_again(
    make_window: Callable[..., MainWindow], qtbot: QtBot, project: Path
) -> None:
    window = open_compared(make_window, qtbot, project, "grid")
    (lane,) = lanes_of(window, "grid")
    window.set_compare_image_mode(PREVIOUS)
    first = window.compare_result
    assert lane.image is not None and lane.image.scale == "log"
    book().set(lane.style_key, LaneStyle(scale="linear"))  # the lane menu's "Linear frequency"
    qtbot.waitUntil(lambda: window.compare_result is not first, timeout=WAIT_MS)
    assert window.compare_overlay.image_mode == PREVIOUS  # the view chosen is kept
    assert lane.image.scale == "linear"
    result = window.compare_result
    assert result is not None
    view = result.previous[lane.key].image
    assert view is not None and np.array_equal(np.array(lane.image.image), view.image)
    assert "previous" in window.compare_overlay.label_text(lane)
