"""The project document (``schema_version`` 1): sources, tracks and their requests, profiles,
the tempo map and where the feature store lives.

Values are immutable: an edit makes a new :class:`Project` (see :mod:`core.edits`), which makes
undo a matter of keeping the previous value. Unknown fields anywhere in the file are kept in
``extra`` and written back on save. Validation errors name the field's path in the file, e.g.
``tracks[2].requests[0].profile: unknown profile "fien"``.

Which mistakes refuse the file and which only mark what they touch (README, "States"):

- a file that is not a project (not JSON, not an object, another ``format``, a newer
  ``schema_version``) or whose structure is meaningless (``profiles`` not an object, ``sources``
  or ``tracks`` not lists, a source or track without a usable id, path or known source, a bad
  tempo map or ``cache_dir``) is refused with a :class:`ProjectError`;
- a request with an unknown key, a missing or malformed field, an unknown profile or a bad
  parameter loads as an *invalid request* (:attr:`Request.problem`, one row ``invalid``), and is
  written back exactly as it was read;
- a profile with a bad parameter loads as an *invalid profile*
  (:attr:`Project.profile_problems`): every request using it is ``invalid``;
- an unknown key at the top level, in a source or in a track cannot change any result: it is
  kept and reported in :attr:`Project.warnings`. Keys starting with ``_`` are notes, never
  reported.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from diagnostics_app.core import files
from diagnostics_app.core._gc import gc_paused
from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.errors import ParamError, ProjectError
from diagnostics_app.core.params import ParamValue, check_overrides, resolve_params
from diagnostics_app.core.suggest import did_you_mean, unknown_keys
from diagnostics_app.core.tempo import TempoMap

FORMAT = "diagnostics-app/project"
SCHEMA_VERSION = 1
DEFAULT_PROFILE = "default"
DEFAULT_CACHE_DIR = ".featurecache"

JsonObject = Mapping[str, Any]
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Request:
    """A track's request for a feature; ``params`` override the profile for this request only."""

    feature: str
    calculator: str | None = None
    profile: str = DEFAULT_PROFILE
    params: Mapping[str, ParamValue] = field(default_factory=lambda: _EMPTY)
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    # Why this request cannot be served, naming the field's path; its row is ``invalid``. The
    # fields above then hold what could be read ("?" for an unreadable feature) and ``raw``
    # the request as written, which is what a save writes back.
    problem: str | None = None
    raw: Any = None

    @cached_property
    def params_key(self) -> str:
        return canonical_json(dict(self.params))

    def to_json(self) -> Any:
        if self.problem is not None:
            return json.loads(json.dumps(self.raw))  # a copy: the value stays immutable
        out: dict[str, Any] = dict(self.extra)
        out["feature"] = self.feature
        if self.calculator is not None:
            out["calculator"] = self.calculator
        if self.profile != DEFAULT_PROFILE:
            out["profile"] = self.profile
        if self.params:
            out["params"] = dict(self.params)
        return out


@dataclass(frozen=True)
class Track:
    id: str
    name: str
    source: str
    requests: tuple[Request, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(id=self.id, name=self.name, source=self.source)
        out["requests"] = [r.to_json() for r in self.requests]
        return out


@dataclass(frozen=True)
class Source:
    id: str
    path: str  # as written in the file: relative to the project folder, or absolute
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(id=self.id, path=self.path)
        return out


@dataclass(frozen=True)
class Project:
    name: str = "Untitled"
    tempo_map: TempoMap = field(default_factory=TempoMap)
    profiles: Mapping[str, Mapping[str, ParamValue]] = field(default_factory=lambda: _EMPTY)
    sources: tuple[Source, ...] = ()
    tracks: tuple[Track, ...] = ()
    cache_dir: str = DEFAULT_CACHE_DIR
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tempo_map_given: bool = False  # whether the file had a tempo_map (kept absent on save)
    path: Path | None = None  # where it was loaded from / will be saved; not part of the file
    # profile name -> why it cannot be used (its requests are invalid); such a profile's
    # values in ``profiles`` are as written
    profile_problems: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    warnings: tuple[str, ...] = ()  # unknown keys that change nothing (kept on save)

    # -- lookups ----------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    @cached_property
    def _sources_by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}

    @cached_property
    def _tracks_by_id(self) -> dict[str, Track]:
        return {t.id: t for t in self.tracks}

    @cached_property
    def _tracks_by_source(self) -> dict[str, tuple[Track, ...]]:
        index: dict[str, list[Track]] = {}
        for t in self.tracks:
            index.setdefault(t.source, []).append(t)
        return {k: tuple(v) for k, v in index.items()}

    def source(self, source_id: str) -> Source:
        try:
            return self._sources_by_id[source_id]
        except KeyError:
            raise ProjectError(f"unknown source {source_id!r}") from None

    def track(self, track_id: str) -> Track:
        try:
            return self._tracks_by_id[track_id]
        except KeyError:
            raise ProjectError(f"unknown track {track_id!r}") from None

    def tracks_of(self, source_id: str) -> tuple[Track, ...]:
        return self._tracks_by_source.get(source_id, ())

    def audio_path(self, source: Source | str) -> Path:
        src = self.source(source) if isinstance(source, str) else source
        p = _expand_user(src.path)
        return p if p.is_absolute() else self.folder / p

    def cache_path(self) -> Path:
        p = _expand_user(self.cache_dir)
        return p if p.is_absolute() else self.folder / p

    def profile_names(self) -> list[str]:
        names = list(self.profiles)
        return names if DEFAULT_PROFILE in names else [DEFAULT_PROFILE, *names]

    def profile(self, name: str) -> Mapping[str, ParamValue]:
        """A profile's values; those of an invalid profile as written (if an object)."""
        if name in self.profiles:
            values = self.profiles[name]
            return values if isinstance(values, Mapping) else _EMPTY
        if name == DEFAULT_PROFILE:
            return _EMPTY
        raise ProjectError(f"unknown profile {name!r}")

    # -- serialisation ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT, "schema_version": SCHEMA_VERSION}
        out.update({k: v for k, v in self.extra.items() if k not in ("format", "schema_version")})
        out["name"] = self.name
        if self.tempo_map_given or self.tempo_map != TempoMap():
            out["tempo_map"] = self.tempo_map.to_json()
        out["profiles"] = {
            name: dict(values) if isinstance(values, Mapping) else values
            for name, values in self.profiles.items()
        }
        out["sources"] = [s.to_json() for s in self.sources]
        out["tracks"] = [t.to_json() for t in self.tracks]
        out["cache_dir"] = self.cache_dir
        return out


def _expand_user(path: str) -> Path:
    """``~`` and ``~user`` expanded; a user (or a home) that does not exist leaves the path as
    written (then "file not found" names it) instead of raising RuntimeError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


# --- loading and validation ------------------------------------------------------------------

# Migrations from older schema versions: {from_version: function(old_json) -> json of +1}.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ProjectError(f"{where}: expected {what}, got {json.dumps(value)[:60]}")
    return value


def _identifier(value: Any, where: str) -> str:
    text = _expect(value, str, where, "a non-empty string id")
    if not text.strip():
        raise ProjectError(f"{where}: expected a non-empty string id")
    _plain_text(text, where)
    return str(text)


def _plain_text(text: str, where: str) -> None:
    """Ids and paths go to the OS, the index and every output: a null byte (which no path can
    hold, and C strings end at) or a lone surrogate (not Unicode) is refused here, by name."""
    if "\x00" in text:
        raise ProjectError(f"{where}: contains a null byte")
    _refuse_surrogate_in(text, where)


def _path_field(value: Any, where: str, what: str) -> str:
    text = _expect(value, str, where, what)
    _plain_text(text, where)
    return str(text)


def _known(obj: Mapping[str, Any], known: Sequence[str]) -> Mapping[str, Any]:
    return freeze({k: v for k, v in obj.items() if k not in known})


def project_from_json(data: Any, path: Path | None = None) -> Project:
    """Validate and build a Project; every error names the field path."""
    with gc_paused():
        return _project_from_json(data, path)


def _project_from_json(data: Any, path: Path | None) -> Project:
    data = _expect(data, dict, "project", "a JSON object")
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise ProjectError(
            f"format: expected {FORMAT!r}, got {fmt!r} (not a diagnostics-app project)"
        )
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProjectError(f"schema_version: expected a whole number >= 1, got {version!r}")
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"schema_version: {version} is newer than this version of diagnostics-app understands "
            f"({SCHEMA_VERSION}); upgrade diagnostics-app to open this project"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](dict(data))
        version += 1

    name = _expect(data.get("name", "Untitled"), str, "name", "a string")
    tempo = TempoMap.from_json(data.get("tempo_map"), "tempo_map")

    profiles_raw = _expect(
        data.get("profiles", {}), dict, "profiles", "an object of named profiles"
    )
    profiles: dict[str, Mapping[str, ParamValue]] = {}
    profile_problems: dict[str, str] = {}
    for pname, values in profiles_raw.items():
        where = f"profiles.{pname}"
        _plain_text(pname, f"profiles[{pname!r}]")
        try:
            _expect(values, dict, where, "an object of parameters")
            checked = check_overrides(values, where=f"{where}.")
            resolve_params(checked, where=f"{where}.")
        except (ParamError, ProjectError) as exc:
            # kept as written, so that a save changes nothing; its requests are invalid
            profile_problems[pname] = str(exc)
            profiles[pname] = freeze(values) if isinstance(values, dict) else values
            continue
        profiles[pname] = freeze(checked)

    warnings = unknown_keys(data, _TOP_KEYS, "")
    sources: list[Source] = []
    seen_sources: set[str] = set()
    for i, item in enumerate(_expect(data.get("sources", []), list, "sources", "a list")):
        where = f"sources[{i}]"
        _expect(item, dict, where, "an object with id and path")
        warnings += unknown_keys(item, _SOURCE_KEYS, where)
        sid = _identifier(item.get("id"), f"{where}.id")
        if sid in seen_sources:
            raise ProjectError(f"{where}.id: duplicate source id {sid!r}")
        seen_sources.add(sid)
        spath = _path_field(item.get("path"), f"{where}.path", "a file path")
        sources.append(Source(sid, spath, _known(item, _SOURCE_KEYS)))

    tracks: list[Track] = []
    seen_tracks: set[str] = set()
    profile_names = set(profiles) | {DEFAULT_PROFILE}
    for i, item in enumerate(_expect(data.get("tracks", []), list, "tracks", "a list")):
        where = f"tracks[{i}]"
        _expect(item, dict, where, "an object")
        warnings += unknown_keys(item, _TRACK_KEYS, where)
        tid = _identifier(item.get("id"), f"{where}.id")
        if tid in seen_tracks:
            raise ProjectError(f"{where}.id: duplicate track id {tid!r}")
        seen_tracks.add(tid)
        tname = _expect(item.get("name", tid), str, f"{where}.name", "a string")
        tsource = _identifier(item.get("source"), f"{where}.source")
        if tsource not in seen_sources:
            raise ProjectError(f'{where}.source: unknown source "{tsource}"')
        requests: list[Request] = []
        for j, req in enumerate(
            _expect(item.get("requests", []), list, f"{where}.requests", "a list")
        ):
            key = _request_key(req)
            shared = _REQUESTS.get(key) if key is not None else None
            if shared is None or shared.profile not in profile_names:
                shared = _request(req, f"{where}.requests[{j}]", profile_names)
                if key is not None and shared.problem is None:  # a problem names its place
                    if len(_REQUESTS) >= _REQUESTS_MAX:
                        _REQUESTS.clear()
                    _REQUESTS[key] = shared
            requests.append(shared)
        tracks.append(
            Track(
                tid,
                tname,
                tsource,
                tuple(requests),
                _known(item, _TRACK_KEYS),
            )
        )

    cache_dir = _path_field(data.get("cache_dir", DEFAULT_CACHE_DIR), "cache_dir", "a folder path")
    return Project(
        name=name,
        tempo_map=tempo,
        profiles=freeze(profiles),
        sources=tuple(sources),
        tracks=tuple(tracks),
        cache_dir=cache_dir,
        extra=_known(data, _TOP_KEYS),
        tempo_map_given="tempo_map" in data,
        path=path,
        profile_problems=freeze(profile_problems),
        warnings=tuple(warnings),
    )


_TOP_KEYS = (
    "format",
    "schema_version",
    "name",
    "tempo_map",
    "profiles",
    "sources",
    "tracks",
    "cache_dir",
)
_SOURCE_KEYS = ("id", "path")
_TRACK_KEYS = ("id", "name", "source", "requests")
_REQUEST_KEYS = ("feature", "calculator", "profile", "params")


# Equal requests (a project of 10,000 tracks may hold 250,000 requests but a few dozen
# distinct ones) are validated once and share one immutable Request value, which also lets
# diagnostics resolve each distinct request once. Keyed by the repr of the JSON object: for
# JSON values (str, int, float, bool, None, list, dict) it tells apart everything the result
# depends on, types (1, 1.0, true) and key order (of ``extra``) included.
_REQUESTS: dict[str, Request] = {}
_REQUESTS_MAX = 10_000
_JSON_TYPES = frozenset({str, int, float, bool, type(None), list, dict})


def _request_key(req: Any) -> str | None:
    if type(req) is not dict or not all(map(_JSON_TYPES.__contains__, map(type, req.values()))):
        return None
    return repr(req)


def _request(req: Any, where: str, profile_names: set[str]) -> Request:
    """A request, or an invalid request naming its first problem (see the module doc)."""
    try:
        return _valid_request(req, where, profile_names)
    except (ParamError, ProjectError) as exc:
        problem = str(exc)
    obj: Mapping[str, Any] = req if isinstance(req, dict) else {}

    def readable(key: str, default: str | None) -> str | None:
        value = obj.get(key, default)
        if not isinstance(value, str) or not value.strip():
            return default
        try:
            _plain_text(value, where)
        except ProjectError:
            return default
        return value

    params = obj.get("params")
    return Request(
        readable("feature", None) or "?",
        readable("calculator", None),
        readable("profile", DEFAULT_PROFILE) or DEFAULT_PROFILE,
        freeze(params) if isinstance(params, dict) else _EMPTY,
        _EMPTY,
        problem,
        req,
    )


def _valid_request(req: Any, where: str, profile_names: set[str]) -> Request:
    _expect(req, dict, where, "an object with a feature")
    for problem in unknown_keys(req, _REQUEST_KEYS, where):
        raise ProjectError(problem)  # the first: a typo explains what follows from it
    if "feature" not in req:
        raise ProjectError(f"{where}.feature: missing (every request names a feature)")
    feature = _identifier(req.get("feature"), f"{where}.feature")
    calc = req.get("calculator")
    if calc is not None:
        calc = _identifier(calc, f"{where}.calculator")
    profile = _identifier(req.get("profile", DEFAULT_PROFILE), f"{where}.profile")
    if profile not in profile_names:
        raise ProjectError(
            f'{where}.profile: unknown profile "{profile}"'
            + did_you_mean(profile, sorted(profile_names))
        )
    params = _expect(req.get("params", {}), dict, f"{where}.params", "an object of parameters")
    checked = check_overrides(params, where=f"{where}.params.")
    return Request(feature, calc, profile, freeze(checked), _known(req, _REQUEST_KEYS))


def problems(project: Project) -> list[str]:
    """Every invalid request's and invalid profile's message, in file order (profiles first)."""
    out = list(project.profile_problems.values())
    out.extend(r.problem for t in project.tracks for r in t.requests if r.problem is not None)
    return out


def revalidated(edited: Project) -> Project:
    """An edited project through the loader (one place for every rule). An edit may keep the
    mistakes the project already had (so that the rest can still be edited) but not add one:
    a new invalid request or profile is refused with its message."""
    checked = project_from_json(edited.to_json(), edited.path)
    known_requests = [r.raw for t in edited.tracks for r in t.requests if r.problem is not None]
    for name, message in checked.profile_problems.items():
        if edited.profile_problems.get(name) != message:
            raise ProjectError(message)
    for track in checked.tracks:
        for r in track.requests:
            if r.problem is not None and r.raw not in known_requests:
                raise ProjectError(r.problem)
    return checked


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read and validate a project file; ProjectError with a one-line message otherwise."""
    p = Path(path)
    where = files.printable(p)
    try:
        raw = files.read_regular(p, files.MAX_PROJECT_BYTES)
    except files.FileRefused as exc:
        if exc.reason.startswith("is a folder"):
            raise ProjectError(f"{where}: is a folder, not a project file") from None
        raise ProjectError(str(exc)) from None
    except FileNotFoundError:
        raise ProjectError(f"{where}: project file not found") from None
    except OSError as exc:
        raise ProjectError(f"{where}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")  # a leading BOM (some Windows editors) is not content
    except UnicodeDecodeError:
        raise ProjectError(f"{where}: not a text file (expected a JSON project)") from None
    del raw
    try:
        with gc_paused():
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ProjectError(f"{where}: not a project: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ProjectError(f"{where}: not valid JSON ({_one_line(exc)})") from None
    try:
        if _MAYBE_SURROGATE.search(text):
            _refuse_lone_surrogates(data)
        return project_from_json(data, p.resolve())
    except ProjectError as exc:
        raise ProjectError(f"{where}: {exc}") from None
    except RecursionError:  # deep nesting a few levels short of the parser's limit
        raise ProjectError(f"{where}: not a project: JSON nested too deeply to read") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# A lone surrogate can only come from a ``\ud800``-``\udfff`` escape (UTF-8 text cannot hold
# one), so the walk below runs only when the text has such an escape: never, for real projects.
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(data: Any) -> None:
    """Refuse any string (key or value) holding a lone surrogate, naming its field.

    Refused rather than carried: such a string is not Unicode text. It cannot be encoded as
    UTF-8, so it would break every place an id goes next (the SQLite index, file names,
    ``check --json``, the saved project), each in its own way; refusing once, here, with the
    field's path, is the one clear message."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:  # iterative: the document may be nested close to the parser's limit
        where, value = stack.pop()
        if isinstance(value, str):
            _refuse_surrogate_in(value, where or "project")
        elif isinstance(value, dict):  # children pushed last-first: reports the first in order
            for key, item in reversed(value.items()):
                inner = f"{where}.{key}" if where else str(key)
                _refuse_surrogate_in(key, inner)
                stack.append((inner, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", value[i]) for i in reversed(range(len(value))))


def _refuse_surrogate_in(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        shown = where.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise ProjectError(
            f"{shown}: contains a lone surrogate \\u{bad:04x} (not valid Unicode text)"
        ) from None


def save_project(project: Project, path: str | os.PathLike[str] | None = None) -> Project:
    """Write atomically (see :func:`core.files.atomic_write`: the file follows the umask, and a
    replaced file keeps its mode); returns the project with its path set."""
    target = Path(path) if path is not None else project.path
    if target is None:
        raise ProjectError("project has no file yet: choose where to save it")
    try:
        text = json.dumps(project.to_json(), indent=2, ensure_ascii=False) + "\n"
        data = text.encode("utf-8")
    except (RecursionError, UnicodeEncodeError, ValueError) as exc:
        raise ProjectError(f"{files.printable(target)}: cannot save ({_one_line(exc)})") from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        files.atomic_write(target, lambda f: f.write(data))
    except files.FileRefused as exc:
        raise ProjectError(f"{exc.path}: cannot save ({exc.reason})") from None
    except OSError as exc:
        raise ProjectError(f"{target}: cannot save ({exc.strerror or exc})") from None
    return replace(project, path=target.resolve())
