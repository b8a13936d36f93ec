"""Profiles by name: add, rename and delete, as the Profiles dialog drives them."""

from __future__ import annotations

from typing import Any

import pytest

from diagnostics_app.core import edits
from diagnostics_app.core.edits import ProfileOp
from diagnostics_app.core.errors import ProjectError
from diagnostics_app.core.project import Project, project_from_json


def _project() -> Project:
    doc: dict[str, Any] = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "P",
        "profiles": {"fine": {"hop_size": 128}, "coarse": {"hop_size": 1024}},
        "sources": [{"id": "s", "path": "a.wav"}],
        "tracks": [
            {
                "id": "t",
                "name": "Mix",
                "source": "s",
                "requests": [
                    {"feature": "rms", "profile": "fine"},
                    {"feature": "rms"},
                    {"feature": "pitch", "profile": "fine", "params": {"fmax": 800.0}},
                ],
            },
            {"id": "u", "name": "Bass", "source": "s", "requests": [{"feature": "peaks"}]},
        ],
    }
    return project_from_json(doc)


def _profiles_of(project: Project) -> list[str]:
    return [r.profile for t in project.tracks for r in t.requests]


def test_add_profile_and_bad_names() -> None:
    p = edits.add_profile(_project(), "trough_thresholds_strict", {"trough_threshold": 0.05})
    assert dict(p.profile("trough_thresholds_strict")) == {"trough_threshold": 0.05}
    for bad, words in [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("has space", "letters, digits"),
        ("-lead", "starting with a letter"),
        ("x" * 65, "longer than 64"),
        ("fine", "already exists"),
        ("default", "already exists"),
    ]:
        with pytest.raises(ProjectError, match=words):
            edits.add_profile(p, bad)


def test_rename_moves_every_request_and_keeps_the_order() -> None:
    p = edits.rename_profile(_project(), "fine", "fine2")
    assert list(p.profiles) == ["fine2", "coarse"]
    assert dict(p.profile("fine2")) == {"hop_size": 128}
    assert _profiles_of(p) == ["fine2", "default", "fine2", "default"]
    with pytest.raises(ProjectError, match="unknown profile 'fine'"):
        p.profile("fine")
    with pytest.raises(ProjectError, match="cannot be renamed"):
        edits.rename_profile(p, "default", "base")
    with pytest.raises(ProjectError, match="already exists"):
        edits.rename_profile(p, "fine2", "coarse")
    with pytest.raises(ProjectError, match="unknown profile 'nope'"):
        edits.rename_profile(p, "nope", "x")


def test_delete_of_a_used_profile_names_its_requests() -> None:
    p = _project()
    with pytest.raises(ProjectError, match=r"used by 2 requests \(Mix / rms, Mix / pitch\)"):
        edits.remove_profile(p, "fine")
    unused = edits.remove_profile(p, "coarse")
    assert list(unused.profiles) == ["fine"]
    moved = edits.remove_profile(p, "fine", move_to="default")
    assert "fine" not in moved.profiles
    # Mix's plain rms was already on default: the moved one is the same row, so it goes
    assert [(r.feature, r.profile) for r in moved.tracks[0].requests] == [
        ("rms", "default"),
        ("pitch", "default"),
    ]
    with pytest.raises(ProjectError, match="cannot be deleted"):
        edits.remove_profile(p, "default")


def test_edit_profiles_replays_the_steps_then_sets_values() -> None:
    ops = [
        ProfileOp("add", "new"),
        ProfileOp("rename", "fine", "finer"),
        ProfileOp("delete", "coarse"),
    ]
    values = {"default": {}, "finer": {"hop_size": 64}, "new": {"n_mels": 64}}
    p = edits.edit_profiles(_project(), ops, values)
    assert list(p.profiles) == ["finer", "new"]
    assert dict(p.profile("finer")) == {"hop_size": 64}
    assert dict(p.profile("new")) == {"n_mels": 64}
    assert _profiles_of(p).count("finer") == 2
    assert [op.describe() for op in ops][1] == "Rename profile fine to finer"
