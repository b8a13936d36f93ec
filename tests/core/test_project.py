"""The project document: validation with field paths, unknown fields kept, schema versions,
atomic saves, and the undoable edit operations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diagnostics_app.core import edits
from diagnostics_app.core.errors import ProjectError
from diagnostics_app.core.project import load_project, project_from_json, save_project
from tests.core.project_factory import shared_source_project, write_project


def _doc(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "P",
        "sources": [{"id": "drums", "path": "a.wav"}],
        "tracks": [
            {"id": "kick", "name": "Kick", "source": "drums", "requests": [{"feature": "rms"}]}
        ],
    }
    base.update(over)
    return base


def test_interface_example_loads(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "name": "Demo mix",
            "tempo_map": [{"time": 0.0, "bpm": 120.0}, {"time": 30.0, "bpm": 90.0}],
            "profiles": {
                "default": {"window_size": 2048, "hop_size": 512},
                "fine": {"window_size": 1024, "hop_size": 256},
            },
            "sources": [{"id": "drums", "path": "audio/drums.wav"}],
            "tracks": [
                {
                    "id": "kick",
                    "name": "Kick",
                    "source": "drums",
                    "requests": [
                        {"feature": "spectrogram"},
                        {"feature": "rms", "profile": "fine"},
                        {"feature": "pitch", "calculator": "core.pitch", "params": {"fmin": 80.0}},
                    ],
                }
            ],
            "cache_dir": ".featurecache",
        },
    )
    p = load_project(path)
    assert p.name == "Demo mix"
    assert [s.bpm for s in p.tempo_map.segments] == [120.0, 90.0]
    assert p.tracks[0].requests[2].params == {"fmin": 80.0}
    assert p.tracks[0].requests[1].profile == "fine"
    assert p.audio_path("drums") == tmp_path.resolve() / "audio" / "drums.wav"
    assert p.cache_path() == tmp_path.resolve() / ".featurecache"


# Mistakes in a request or a profile do not refuse the file: test_project_mistakes.py.
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"tracks": [{"id": "k", "source": "nope", "requests": []}]},
            'tracks[0].source: unknown source "nope"',
        ),
        (
            {"sources": [{"id": "a", "path": "x.wav"}, {"id": "a", "path": "y.wav"}]},
            "sources[1].id: duplicate source id",
        ),
        ({"sources": [{"id": "drums"}]}, "sources[0].path"),
        ({"tempo_map": [{"time": 5.0, "bpm": 120}]}, "tempo_map[0].time"),
        ({"tempo_map": [{"time": 0.0, "bpm": 0}]}, "tempo_map[0].bpm"),
        ({"schema_version": 99}, "schema_version: 99 is newer"),
        ({"format": "something-else"}, "format:"),
        ({"tracks": "nope"}, "tracks: expected a list"),
    ],
)
def test_validation_names_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ProjectError) as err:
        project_from_json(_doc(**change))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"{nope", "not valid JSON (line 1"),
        (b"\xff\xfe\x00bad", "not a text file"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_files_give_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(content)
    with pytest.raises(ProjectError) as err:
        load_project(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="project file not found"):
        load_project(tmp_path / "none.json")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)


def test_unknown_fields_survive_a_save(tmp_path: Path) -> None:
    doc = _doc(
        color="teal",
        sources=[{"id": "drums", "path": "a.wav", "gain": 0.5}],
        tracks=[
            {
                "id": "kick",
                "source": "drums",
                "muted": True,
                "requests": [{"feature": "rms", "note": "x"}],
            }
        ],
    )
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    project = load_project(path)
    save_project(edits.add_request(project, "kick", "peaks"), path)
    saved = json.loads(path.read_text())
    assert saved["color"] == "teal"
    assert saved["sources"][0]["gain"] == 0.5
    assert saved["tracks"][0]["muted"] is True
    assert saved["tracks"][0]["requests"][0]["note"] == "x"
    assert saved["tracks"][0]["requests"][1] == {"feature": "peaks"}
    assert "tempo_map" not in saved  # absent stays absent


def test_save_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    project = load_project(path)
    save_project(project, path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["project.json"]
    assert load_project(path) == project


def test_save_to_unwritable_place_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    project = load_project(shared_source_project(tmp_path))
    with pytest.raises(ProjectError, match="cannot save"):
        save_project(project, blocker / "p.json")


def test_edits_are_validated_and_pure(tmp_path: Path) -> None:
    project = load_project(shared_source_project(tmp_path))
    p2 = edits.add_source(project, "audio/new.wav")
    assert [s.id for s in p2.sources] == ["drums", "bass", "new"]
    assert [s.id for s in project.sources] == ["drums", "bass"]  # the original is unchanged
    p3 = edits.add_track(p2, "new", "New")
    assert p3.track("new").source == "new"
    p4 = edits.repoint_track(p3, "new", "drums")
    assert p4.track("new").source == "drums"
    with pytest.raises(ProjectError, match="unknown profile"):
        edits.add_request(project, "kick", "rms", profile="nope")
    with pytest.raises(ProjectError, match="unknown source"):
        edits.repoint_track(project, "kick", "nope")
    p5 = edits.remove_source(project, "drums")
    assert [t.id for t in p5.tracks] == ["bass"]
    p6 = edits.set_profile_param(project, "fine", "hop_size", 128)
    assert p6.profile("fine")["hop_size"] == 128
    with pytest.raises(ProjectError, match="hop_size"):
        edits.set_profile_param(project, "fine", "hop_size", 0)
