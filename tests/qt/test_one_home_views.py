"""The GUI asks the core for its rules (issue 8, one home per rule): the explain panel's field
differences and value texts are ``core.explain``'s (the CLI's too), the table and the tree
order states by ``core.states.SEVERITY``, and the waveform computed from the audio is the
peaks calculator's, with the channel names stored data has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.core.engine import audio_peaks
from diagnostics_app.core.explain import ABSENT, compare
from diagnostics_app.core.states import SEVERITY, STATES
from diagnostics_app.qt.models import FingerprintModel
from diagnostics_app.qt.models.descriptors import COL_STATE, DescriptorTableModel
from diagnostics_app.qt.models.roles import SortRole
from diagnostics_app.qt.models.sources import TreeNode
from diagnostics_app.qt.theme import STATE_COLORS, STATE_GLYPHS, STATE_HELP
from diagnostics_app.qt.workers import PlotLoadWorker, PlotRequest
from tests.core.project_factory import SR, write_tone

STORED = {"audio.channels": 2, "calculator.version": 1, "profile.hop_size": 512}
CURRENT = {"audio.channels": 2, "calculator.version": 1, "profile.hop_size": 512.0}


def _row(stored: dict[str, object] | None, current: dict[str, object] | None) -> Row:
    return Row(
        RowKey("s", "rms", "core.rms", "default", "{}"), "ok", stored=stored, current=current
    )


def test_fingerprint_model_shows_an_absent_field_as_differing(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    model = FingerprintModel()
    row = _row(STORED, {**CURRENT, "profile.fmin": None})
    model.set_row(row)
    qtmodeltester.check(model)
    # the very comparison the CLI's explain prints
    assert model.items() == [
        (f.input, f.stored, f.current, f.differs) for f in compare(row.stored, row.current)
    ]
    assert [name for name, _, _, differs in model.items() if differs] == ["profile.fmin"]
    i = next(i for i, item in enumerate(model.items()) if item[0] == "profile.fmin")
    assert model.index(i, 1).data() == "absent"
    assert model.index(i, 2).data() == "null"
    assert model.index(i, 0).data(Qt.ItemDataRole.BackgroundRole) is not None

    model.set_row(_row(None, CURRENT))  # nothing cached: one side only, nothing differs
    assert all(item[1] is ABSENT and not item[3] for item in model.items())
    assert model.index(0, 1).data() == "absent"


def test_states_are_ordered_by_severity_in_the_table_and_the_tree() -> None:
    assert set(STATE_COLORS) == set(STATE_GLYPHS) == set(STATE_HELP) == set(STATES)
    table = DescriptorTableModel()
    table.set_rows(
        [Row(RowKey("s", f"f{i}", "c", "default", "{}"), state) for i, state in enumerate(STATES)]
    )
    ranks = {
        table.index(i, COL_STATE).data(Qt.ItemDataRole.DisplayRole): table.index(i, COL_STATE).data(
            SortRole
        )
        for i in range(table.rowCount())
    }
    assert sorted(ranks, key=ranks.__getitem__) == list(SEVERITY)
    node = TreeNode("source", "s", "s", "s", {s: 1 for s in STATES})
    assert node.badge_text() == ", ".join(f"1 {s}" for s in SEVERITY)
    assert node.issues == len(STATES) - 1


def test_waveform_from_audio_is_the_peaks_calculators(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "stereo.wav", 0.5, 220.0, channels=2, seed=5)
    request = PlotRequest(1, "s", "s", path, ())
    worker = PlotLoadWorker(request, lambda row: None, lambda generation: True)
    result = worker._work(request)
    assert result.errors == []
    expected = audio_peaks(path)
    assert result.peaks is not None
    np.testing.assert_array_equal(result.peaks, expected.data)
    assert result.peaks_step == expected.meta.frame_step == 64 / SR
    assert result.channel_names == expected.meta.channel_names == ("ch1", "ch2")
