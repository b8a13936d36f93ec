"""Project edits as pure functions: each takes a Project and returns a new, validated one.

These are the operations both the GUI and scripts use; :mod:`core.history` makes them undoable
by keeping the previous value. Every edit re-validates through the same code as loading a file,
so an edit can never produce a project that would not load.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

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
    return remove_sources(project, (source_id,))  # one rule for what goes with a source


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
    taken = {t.id for t in tracks_removed_with(project, *source_ids)}  # checks the ids too
    if not source_ids:
        return project
    gone = set(source_ids)
    return _validated(
        replace(
            project,
            sources=tuple(s for s in project.sources if s.id not in gone),
            tracks=tuple(t for t in project.tracks if t.id not in taken),
        )
    )


# -- profiles by name: add, rename, delete (the Profiles dialog) ------------------------------

PROFILE_NAME_MAX = 64


def check_profile_name(name: str, existing: Collection[str] = ()) -> str:
    """``name`` if it can name a new profile, else a :class:`ProjectError` saying why. The
    name is typed on command lines (``--profile P``) and shown in every table, so it is kept
    to letters, digits, ``_``, ``-`` and ``.``, starting with a letter or digit."""
    shown = f"profile name {name!r}"
    if not name.strip():
        raise ProjectError("profile name: must not be empty")
    if len(name) > PROFILE_NAME_MAX:
        raise ProjectError(f"{shown}: longer than {PROFILE_NAME_MAX} characters")
    if not name[0].isalnum() or not all(ch.isalnum() or ch in "_-." for ch in name):
        raise ProjectError(
            f'{shown}: use letters, digits, "_", "-" and "." only, starting with a letter or digit'
        )
    if name in existing:
        raise ProjectError(f"{shown}: a profile of that name already exists")
    return name


def profile_users(project: Project, name: str) -> list[tuple[Track, Request]]:
    """Every request (with its track) that uses profile ``name``, in file order."""
    return [(t, r) for t in project.tracks for r in t.requests if r.profile == name]


def user_labels(project: Project, name: str) -> list[str]:
    """The requests using profile ``name`` as people name them: ``Mix / rms`` (track name /
    feature), in file order."""
    return [f"{t.name} / {r.feature}" for t, r in profile_users(project, name)]


def in_use_message(name: str, labels: Sequence[str], limit: int = 8) -> str:
    """Why profile ``name`` cannot simply be deleted: the requests that use it (at most
    ``limit`` named, then ``+N more``)."""
    shown = ", ".join(labels[:limit])
    if len(labels) > limit:
        shown += f" +{len(labels) - limit} more"
    n = len(labels)
    return (
        f"profile {name!r} is used by {n} request{'s' if n != 1 else ''} ({shown}): "
        f"move them to another profile first"
    )


def refuse_default(name: str, what: str) -> None:
    if name == DEFAULT_PROFILE:
        raise ProjectError(
            f'profile "{DEFAULT_PROFILE}" cannot be {what}: requests without a profile use it'
        )


def _known_profile(project: Project, name: str) -> None:
    if name not in project.profile_names():
        raise ProjectError(f"unknown profile {name!r}")


def add_profile(
    project: Project, name: str, values: Mapping[str, ParamValue] | None = None
) -> Project:
    check_profile_name(name, project.profile_names())
    return set_profile(project, name, values or {})


def _map_profiles(project: Project, old: str, new: str) -> tuple[Track, ...]:
    """The tracks with every request of profile ``old`` on ``new``; a request that becomes
    equal to one the track already has is dropped (it would be the same row)."""
    tracks = []
    for t in project.tracks:
        if not any(r.profile == old for r in t.requests):
            tracks.append(t)
            continue
        reqs: list[Request] = []
        for r in t.requests:
            moved = replace(r, profile=new) if r.profile == old else r
            if moved not in reqs:
                reqs.append(moved)
        tracks.append(replace(t, requests=tuple(reqs)))
    return tuple(tracks)


def rename_profile(project: Project, old: str, new: str) -> Project:
    """Profile ``old`` is called ``new``, and every request that used it follows."""
    _known_profile(project, old)
    refuse_default(old, "renamed")
    if new == old:
        return project
    check_profile_name(new, project.profile_names())
    # insertion order is the file's order: the renamed profile keeps its place
    profiles = {(new if n == old else n): v for n, v in project.profiles.items()}
    return _validated(
        replace(project, profiles=freeze(profiles), tracks=_map_profiles(project, old, new))
    )


def remove_profile(project: Project, name: str, move_to: str | None = None) -> Project:
    """Delete profile ``name``. While requests use it this is refused, naming them, unless
    ``move_to`` names the profile they move to."""
    _known_profile(project, name)
    refuse_default(name, "deleted")
    users = profile_users(project, name)
    tracks = project.tracks
    if users:
        if move_to is None:
            raise ProjectError(in_use_message(name, user_labels(project, name)))
        if move_to == name:
            raise ProjectError(f"profile {name!r}: cannot move its requests to itself")
        _known_profile(project, move_to)
        tracks = _map_profiles(project, name, move_to)
    profiles = {n: v for n, v in project.profiles.items() if n != name}
    return _validated(replace(project, profiles=freeze(profiles), tracks=tracks))


@dataclass(frozen=True)
class ProfileOp:
    """One step of the Profiles dialog: ``add`` ``name``; ``rename`` ``name`` to
    ``new_name``; ``delete`` ``name`` (its requests move to ``move_to`` when given)."""

    kind: Literal["add", "rename", "delete"]
    name: str
    new_name: str = ""
    move_to: str | None = None

    def apply(self, project: Project) -> Project:
        if self.kind == "add":
            return add_profile(project, self.name)
        if self.kind == "rename":
            return rename_profile(project, self.name, self.new_name)
        return remove_profile(project, self.name, self.move_to)

    def describe(self) -> str:
        if self.kind == "add":
            return f"Add profile {self.name}"
        if self.kind == "rename":
            return f"Rename profile {self.name} to {self.new_name}"
        return f"Delete profile {self.name}"


def edit_profiles(
    project: Project,
    ops: Sequence[ProfileOp],
    values: Mapping[str, Mapping[str, ParamValue]],
) -> Project:
    """The steps ``ops`` in order, then each profile's parameters set to ``values`` where they
    differ: all the Profiles dialog did, as one edit (one undo step)."""
    for op in ops:
        project = op.apply(project)
    for name, params in values.items():
        if dict(project.profile(name)) != dict(params):
            project = set_profile(project, name, params)
    return project


# -- sources: relink, and what removing one takes with it ------------------------------------


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


def tracks_removed_with(project: Project, *source_ids: str) -> tuple[Track, ...]:
    """The tracks :func:`remove_sources` removes with the sources: every track that reads one
    of them (a track reads exactly one source), in file order."""
    for sid in source_ids:
        project.source(sid)
    gone = set(source_ids)
    return tuple(t for t in project.tracks if t.source in gone)
