"""Project edits as pure functions: each takes a Project and returns a new, validated one.

These are the operations both the GUI and scripts use; :mod:`core.history` makes them undoable
by keeping the previous value. Every edit re-validates through the same code as loading a file,
so an edit can never produce a project that would not load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
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
    revalidated,
)
from diagnostics_app.core.tempo import TempoMap


def _validated(project: Project) -> Project:
    """Round-trip through the loader: one place for every rule."""
    checked = revalidated(project)  # refuses a new mistake, keeps the ones it had
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


# --- projects from folders (core/library.py plans them) ----------------------------------------


def add_sources(
    project: Project, sources: tuple[Source, ...], tracks: tuple[Track, ...] = ()
) -> Project:
    """Many sources, and tracks on them, as one edit validated once: adding 20,000 files one
    :func:`add_source` at a time would validate the whole project 20,000 times."""
    if not sources and not tracks:
        return project
    return _validated(
        replace(
            project,
            sources=(*project.sources, *sources),
            tracks=(*project.tracks, *tracks),
        )
    )


def remove_sources(project: Project, source_ids: tuple[str, ...]) -> Project:
    """Sources and every track that reads one of them (a track reads exactly one source, so
    it cannot outlive it), as one edit."""
    for sid in source_ids:
        project.source(sid)
    if not source_ids:
        return project
    gone = set(source_ids)
    return _validated(
        replace(
            project,
            sources=tuple(s for s in project.sources if s.id not in gone),
            tracks=tuple(t for t in project.tracks if t.source not in gone),
        )
    )
