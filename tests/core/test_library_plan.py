"""The drop's work as one value made off the GUI thread (``library.plan_audio``): scanned,
planned and the edited project made; a scan stops when asked; a drop's size is counted
cheaply, stopping past a limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics_app.core import edits, library
from diagnostics_app.core.project import load_project
from tests.core.project_factory import shared_source_project, write_tone


def _drops(root: Path) -> Path:
    for rel in ("a.wav", "b.wav", "sub/c.wav"):
        write_tone(root / "drops" / rel, 0.05)
    (root / "drops" / "notes.txt").write_text("not audio", encoding="utf-8")
    return root / "drops"


def test_plan_audio_equals_the_edit_made_by_hand(tmp_path: Path) -> None:
    project = load_project(shared_source_project(tmp_path))
    folder = _drops(tmp_path)
    planned = library.plan_audio(project, [str(folder)])
    assert planned.project is project
    assert [s.id for s in planned.addition.sources] == ["a", "b", "sub-c"]
    assert [s.line() for s in planned.addition.skipped] == [
        f"{folder}/notes.txt: not an audio file"
    ]
    by_hand = edits.add_sources(
        project, sources=planned.addition.sources, tracks=planned.addition.tracks
    )
    assert planned.edited is not None
    assert planned.edited.to_json() == by_hand.to_json()
    again = library.plan_audio(planned.edited, [str(folder)])
    assert again.edited is None and len(again.addition.present) == 3


def test_a_scan_stops_when_cancelled(tmp_path: Path) -> None:
    folder = _drops(tmp_path)
    asked: list[int] = []

    def after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(library.Cancelled):
        library.scan([folder], recursive=True, cancelled=after_two)
    assert len(asked) == 3  # stopped at the first question answered yes
    assert len(library.scan([folder], recursive=True, cancelled=lambda: False).found) == 3


def test_count_entries_stops_past_the_limit(tmp_path: Path) -> None:
    folder = _drops(tmp_path)
    (folder / ".hidden").write_text("x", encoding="utf-8")
    assert library.count_entries([folder], 100) == 6  # the folder, 4 files, sub (hidden left)
    assert library.count_entries([folder / "a.wav", folder / "b.wav"], 100) == 2
    assert library.count_entries([folder], 2) == 3  # just past the limit
