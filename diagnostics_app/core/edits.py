"""Project edits as pure functions: each takes a Project and returns a new, validated one.

These are the operations both the GUI and scripts use; :mod:`core.history` makes them undoable
by keeping the previous value. Every edit re-validates through the same code as loading a file,
so an edit can never produce a project that would not load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from diagnostics_app.core.errors import ProjectError
from diagnostics_app.core.params import ParamValue
from diagnostics_app.core.project import (
    DEFAULT_PROFILE,
    Project,
    Request,
    Source,
    Track,
    freeze,
    project_from_json,
)
from diagnostics_app.core.tempo import TempoMap


def _validated(project: Project) -> Project:
    """Round-trip through the loader: one place for every rule."""
    checked = project_from_json(project.to_json(), project.path)
    return replace(checked, tempo_map_given=project.tempo_map_given or checked.tempo_map_given)


def unique_id(existing: set[str], base: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in base).strip("_") or "item"
    candidate, n = stem, 2
    while candidate in existing:
        candidate, n = f"{stem}_{n}", n + 1
    return candidate


def add_source(project: Project, path: str, source_id: str | None = None) -> Project:
    sid = source_id or unique_id(
        {s.id for s in project.sources}, path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    )
    if any(s.id == sid for s in project.sources):
        raise ProjectError(f"source id {sid!r} already exists")
    return _validated(replace(project, sources=(*project.sources, Source(sid, path))))


def remove_source(project: Project, source_id: str) -> Project:
    project.source(source_id)
    return _validated(
        replace(
            project,
            sources=tuple(s for s in project.sources if s.id != source_id),
            tracks=tuple(t for t in project.tracks if t.source != source_id),
        )
    )


def add_track(
    project: Project,
    source_id: str,
    name: str,
    requests: tuple[Request, ...] = (),
    track_id: str | None = None,
) -> Project:
    project.source(source_id)
    tid = track_id or unique_id({t.id for t in project.tracks}, name.lower())
    if any(t.id == tid for t in project.tracks):
        raise ProjectError(f"track id {tid!r} already exists")
    return _validated(
        replace(project, tracks=(*project.tracks, Track(tid, name, source_id, requests)))
    )


def remove_track(project: Project, track_id: str) -> Project:
    project.track(track_id)
    return _validated(replace(project, tracks=tuple(t for t in project.tracks if t.id != track_id)))


def _with_track(project: Project, track_id: str, track: Track) -> Project:
    return _validated(
        replace(project, tracks=tuple(track if t.id == track_id else t for t in project.tracks))
    )


def add_request(
    project: Project,
    track_id: str,
    feature: str,
    calculator: str | None = None,
    profile: str = DEFAULT_PROFILE,
    params: Mapping[str, ParamValue] | None = None,
) -> Project:
    track = project.track(track_id)
    req = Request(feature, calculator, profile, freeze(params))
    if req in track.requests:
        return project
    return _with_track(project, track_id, replace(track, requests=(*track.requests, req)))


def remove_request(project: Project, track_id: str, index: int) -> Project:
    track = project.track(track_id)
    if not 0 <= index < len(track.requests):
        raise ProjectError(f"track {track_id!r} has no request #{index}")
    reqs = track.requests[:index] + track.requests[index + 1 :]
    return _with_track(project, track_id, replace(track, requests=reqs))


def set_requests(project: Project, track_id: str, requests: tuple[Request, ...]) -> Project:
    track = project.track(track_id)
    return _with_track(project, track_id, replace(track, requests=requests))


def repoint_track(project: Project, track_id: str, source_id: str) -> Project:
    track = project.track(track_id)
    project.source(source_id)
    return _with_track(project, track_id, replace(track, source=source_id))


def set_tempo_map(project: Project, segments: list[dict[str, Any]] | TempoMap) -> Project:
    tempo = segments if isinstance(segments, TempoMap) else TempoMap.from_json(segments)
    return _validated(replace(project, tempo_map=tempo, tempo_map_given=True))


def set_profile(project: Project, name: str, values: Mapping[str, ParamValue]) -> Project:
    profiles = dict(project.profiles)
    profiles[name] = freeze(values)
    return _validated(replace(project, profiles=freeze(profiles)))


def set_profile_param(project: Project, name: str, key: str, value: ParamValue) -> Project:
    values = dict(project.profiles.get(name, {}))
    values[key] = value
    return set_profile(project, name, values)


# -- sources: relink, and what removing one takes with it ------------------------------------


def source_path_for(project: Project, path: str | os.PathLike[str]) -> str:
    """How the project file names an audio file: relative to the project's folder when the
    file is inside it (the project can move with its audio), absolute otherwise."""
    p = Path(path).resolve()
    try:
        return p.relative_to(project.folder.resolve()).as_posix()
    except ValueError:
        return str(p)


def relink_source(project: Project, source_id: str, path: str) -> Project:
    """Point a source at another file (moved, renamed, found again). Its tracks follow: they
    name the source by id."""
    src = project.source(source_id)
    if src.path == path:
        return project
    return _validated(
        replace(
            project,
            sources=tuple(
                replace(s, path=path) if s.id == source_id else s for s in project.sources
            ),
        )
    )


def tracks_removed_with(project: Project, source_id: str) -> tuple[Track, ...]:
    """The tracks :func:`remove_source` removes with the source: every track that uses it."""
    project.source(source_id)
    return project.tracks_of(source_id)
