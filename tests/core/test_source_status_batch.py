"""The first diagnosis of a large library (bench/library.py: 20,000 sources) reads each
source's facts once, resolves each folder once (not each file), and builds each audio path
once per project file; the facts are the same as one source at a time (a symbolic link is
still resolved to its target, so the digest cache key does not change)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core import audio
from diagnostics_app.core import session as session_module
from diagnostics_app.core.project import Project
from diagnostics_app.core.session import Session
from tests.core.project_factory import write_project, write_tone


def _library(folder: Path, folders: int = 3, per_folder: int = 4) -> Path:
    sources = []
    for f in range(folders):
        for i in range(per_folder):
            rel = f"lib/set_{f}/take_{i}.wav"
            write_tone(folder / rel, 0.05, 220.0 + 10 * i, seed=i)
            sources.append({"id": f"s{f}-{i}", "path": rel})
    tracks = [
        {"id": f"t-{s['id']}", "name": s["id"], "source": s["id"], "requests": [{"feature": "rms"}]}
        for s in sources
    ]
    return write_project(folder, {"name": "lib", "sources": sources, "tracks": tracks})


def _count(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    calls: list[Any] = []
    real = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def test_a_diagnosis_resolves_each_folder_once_and_reads_each_header_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _library(tmp_path)
    with Session.open(path) as session:
        realpaths = _count(monkeypatch, session_module.os.path, "realpath")
        headers = _count(monkeypatch, session_module, "read_info")
        first = session.diagnose()
        assert len(realpaths) == 3  # one per folder, not one per file (12)
        assert len(headers) == 12
        again = session.diagnose()
        assert len(headers) == 12  # unchanged files: their facts are remembered
        assert [r.state for r in again.rows] == [r.state for r in first.rows]


def test_batched_facts_equal_one_source_at_a_time(tmp_path: Path) -> None:
    path = _library(tmp_path)
    # one source a symbolic link to a file elsewhere: its digest key is the target's path
    target = write_tone(tmp_path / "elsewhere" / "real.wav", 0.05, 330.0)
    link = tmp_path / "lib" / "set_0" / "take_0.wav"
    link.unlink()
    link.symlink_to(target)
    cache = audio.MemoryDigestCache()
    with Session.open(path) as batched:
        statuses = batched.source_statuses(batched.project)
    for sid, status in statuses.items():
        with Session.open(path) as single:
            assert single.source_status(sid) == status
        file = Project.audio_path(batched.project, sid)
        assert status.facts is not None
        assert status.facts.digest == audio.content_digest(file, cache)
    key = str(target.resolve())
    assert key in {p for p, _ in cache._known}  # the link was resolved to its target


def test_audio_paths_are_built_once_per_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _library(tmp_path)
    with Session.open(path) as session:
        built = _count(monkeypatch, Project, "audio_path")
        session.diagnose()
        for s in session.project.sources:
            session.source_info(s.id)
            session.source_status(s.id)
        session.diagnose()
        assert len(built) == 12
        assert session.source_info("s1-2") is not None
        assert session.source_info("s1-2").path == os.fspath(tmp_path / "lib/set_1/take_2.wav")  # type: ignore[union-attr]


def test_a_large_projects_state_is_frozen_once_after_its_first_diagnosis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GC pauses of 200-560 ms at 20,000 sources: the long-lived heap is frozen out of the
    collector's reach once loaded and after the first diagnosis (again only if the project
    doubles); a large addition planned for the GUI is frozen too."""
    path = _library(tmp_path)
    frozen: list[int] = []
    monkeypatch.setattr(session_module, "freeze_long_lived", lambda: frozen.append(1))
    monkeypatch.setattr(session_module, "FREEZE_SOURCES", 100)
    with Session.open(path) as small:
        small.diagnose()
    assert frozen == []  # 12 sources: nothing to gain
    monkeypatch.setattr(session_module, "FREEZE_SOURCES", 10)
    with Session.open(path) as session:
        assert frozen == [1]  # the project loaded
        session.diagnose()
        assert frozen == [1, 1]  # what its first diagnosis built
        session.diagnose()
        assert frozen == [1, 1]


def test_a_large_addition_is_frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diagnostics_app.core import library
    from diagnostics_app.core.project import load_project

    _library(tmp_path)
    frozen: list[int] = []
    monkeypatch.setattr(library, "freeze_long_lived", lambda: frozen.append(1))
    (tmp_path / "empty").mkdir()
    empty = write_project(tmp_path / "empty", {"name": "e", "sources": [], "tracks": []})
    monkeypatch.setattr(library, "FREEZE_SOURCES", 13)
    library.plan_audio(load_project(empty), [str(tmp_path / "lib")])
    assert frozen == []  # 12 sources
    monkeypatch.setattr(library, "FREEZE_SOURCES", 12)
    assert (
        len(library.plan_audio(load_project(empty), [str(tmp_path / "lib")]).addition.sources) == 12
    )
    assert frozen == [1]
