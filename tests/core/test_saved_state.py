"""The saved state: the history's clean index (undo back to the saved state is clean), the
project file as last read or written (an outside edit is noticed by its bytes, and Save
refuses to overwrite it unless told to), and the source edits relink and remove."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from diagnostics_app.core import edits, library
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.history import History, Target
from diagnostics_app.core.session import SaveConflict, Session
from tests.core.project_factory import shared_source_project


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session.open(shared_source_project(tmp_path), Registry.builtin())
    yield s
    s.close()


# --- the clean index ----------------------------------------------------------------------------


@dataclass
class Step:
    """A command that does nothing but say whether it changes the project."""

    text: str
    changes_project: bool = True

    def apply(self, target: Target) -> None:
        pass

    def revert(self, target: Target) -> None:
        pass


NO_TARGET: Target = None  # type: ignore[assignment]  # the steps above never touch it


def test_undo_and_redo_back_to_the_saved_state_are_clean() -> None:
    h = History()
    assert h.clean
    h.push(Step("a"))
    assert not h.clean
    h.undo(NO_TARGET)
    assert h.clean  # undone back to the loaded state
    h.redo(NO_TARGET)
    assert not h.clean
    h.set_clean()  # saved here
    h.push(Step("b"))
    h.undo(NO_TARGET)
    assert h.clean
    h.undo(NO_TARGET)  # away from the saved state, backwards
    assert not h.clean
    h.redo(NO_TARGET)
    assert h.clean


def test_a_new_step_after_undoing_past_the_saved_state_makes_it_unreachable() -> None:
    h = History()
    h.push(Step("a"))
    h.set_clean()
    h.undo(NO_TARGET)
    h.push(Step("b"))  # "a" (the way back to the saved state) is discarded
    assert not h.clean
    h.undo(NO_TARGET)
    assert not h.clean  # the state before "a" is not the saved one


def test_steps_that_leave_the_project_unchanged_are_transparent() -> None:
    h = History()
    h.push(Step("prune", changes_project=False))
    assert h.clean  # a prune changes the store, not the project file
    h.push(Step("edit"))
    assert not h.clean
    h.undo(NO_TARGET)
    assert h.clean
    h.undo(NO_TARGET)
    h.set_clean()
    h.redo(NO_TARGET)
    assert h.clean
    h.undo(NO_TARGET)  # before the prune, which is not the saved point but the same project
    h.push(Step("other prune", changes_project=False))
    assert h.clean


def test_the_saved_state_dropped_by_the_limit_is_unreachable() -> None:
    h = History(limit=2)
    h.push(Step("a"))
    h.push(Step("b"))
    h.push(Step("c"))  # the loaded state is no longer in reach
    for _ in range(3):
        h.undo(NO_TARGET)
    assert not h.clean


def test_session_edit_undo_save_follow_the_clean_index(session: Session) -> None:
    tempo = [{"time": 0.0, "bpm": 99.0}]
    session.edit("tempo", lambda p: edits.set_tempo_map(p, tempo))
    assert session.dirty
    session.undo()
    assert not session.dirty
    session.redo()
    session.save()
    assert not session.dirty
    session.edit("profile", lambda p: edits.set_profile_param(p, "default", "fmax", 900.0))
    assert session.dirty
    session.undo()
    assert not session.dirty


# --- the project file on disk -------------------------------------------------------------------


def rename_on_disk(path: Path, name: str) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["name"] = name
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_save_refuses_to_overwrite_an_outside_edit_unless_told(session: Session) -> None:
    path = session.project.path
    assert path is not None
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 99.0}]))
    rename_on_disk(path, "Elsewhere")
    assert session.outside_change() is not None
    with pytest.raises(SaveConflict, match="changed on disk by another program"):
        session.save()
    assert json.loads(path.read_text(encoding="utf-8"))["name"] == "Elsewhere"  # untouched
    assert session.dirty
    session.save(overwrite=True)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["name"] != "Elsewhere" and doc["tempo_map"][0]["bpm"] == 99.0
    assert session.outside_change() is None and not session.dirty
    session.save()  # what was written here is no outside change


def test_a_touched_or_same_bytes_file_is_no_outside_change(session: Session) -> None:
    path = session.project.path
    assert path is not None
    data = path.read_bytes()
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert session.outside_change() is None
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    tmp.replace(path)  # an atomic rewrite with the same bytes (a new inode)
    assert session.outside_change() is None
    session.save()


def test_reload_from_disk_drops_unsaved_edits(session: Session) -> None:
    path = session.project.path
    assert path is not None
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 99.0}]))
    rename_on_disk(path, "Elsewhere")
    assert session.reload_from_disk()
    assert session.project.name == "Elsewhere" and session.project.path == path
    assert not session.dirty and session.history.undo_text is None
    assert session.outside_change() is None
    assert not session.reload_from_disk()  # nothing new: nothing replaced


def test_save_as_elsewhere_is_no_conflict(session: Session, tmp_path: Path) -> None:
    path = session.project.path
    assert path is not None
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 99.0}]))
    rename_on_disk(path, "Elsewhere")
    copy = session.save(tmp_path / "mine.json")
    assert json.loads(copy.read_text(encoding="utf-8"))["tempo_map"][0]["bpm"] == 99.0
    assert json.loads(path.read_text(encoding="utf-8"))["name"] == "Elsewhere"


# --- relink and remove ------------------------------------------------------------------------


def test_relink_moves_every_track_of_the_source(session: Session, tmp_path: Path) -> None:
    project = session.project
    src = project.source("drums")
    tracks = project.tracks_of(src.id)
    assert len(tracks) == 2
    moved = tmp_path / "moved" / "x.wav"
    moved.parent.mkdir()
    project.audio_path(src).rename(moved)
    assert session.source_status(src.id).error is not None
    rel = library.project_path(project, str(moved))
    assert rel == "moved/x.wav"  # inside the project's folder: relative
    session.edit("relink", lambda p: edits.relink_source(p, src.id, rel))
    assert session.project.audio_path(src.id).resolve() == moved.resolve()
    assert session.project.tracks_of(src.id) == tracks  # they name the source by id
    assert session.source_status(src.id).error is None
    session.undo()
    assert session.project.source(src.id).path == src.path


def test_source_path_for_is_relative_inside_the_project_folder(session: Session) -> None:
    project = session.project
    inside = project.folder / "audio" / "a.wav"
    assert library.project_path(project, str(inside)) == "audio/a.wav"
    assert library.project_path(project, "/elsewhere/b.wav") == "/elsewhere/b.wav"


def test_remove_source_names_the_tracks_it_takes(session: Session) -> None:
    project = session.project
    sid = next(s.id for s in project.sources if len(project.tracks_of(s.id)) > 1)
    gone = edits.tracks_removed_with(project, sid)
    assert gone == project.tracks_of(sid) and len(gone) > 1
    session.edit("remove", lambda p: edits.remove_source(p, sid))
    assert sid not in {s.id for s in session.project.sources}
    assert not {t.id for t in gone} & {t.id for t in session.project.tracks}
    session.undo()
    assert session.project == project
