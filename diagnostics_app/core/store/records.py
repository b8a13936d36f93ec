"""The store's value types and their JSON: what the rest of the core sees of the store.

Every record is frozen, so a listing can be cached and shared between threads, and none of
them knows about SQLite: consumers depend on these types, never on the index. Keys and
fingerprints are canonical JSON *text*: two spellings of the same parameters are one key, and
a stored key is kept byte for byte.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.states import ACTIVE_JOB
from diagnostics_app.core.store.owners import process_start_token, this_place


def canonical_params(params: str | Mapping[str, Any] | None) -> str:
    """The ``params`` of an :class:`EntryKey`: a mapping is spelled canonically; a string is
    checked to be a JSON object and kept byte for byte (it is already somebody's key)."""
    if params is None:
        return "{}"
    if isinstance(params, str):
        try:
            value = json.loads(params)
        except ValueError:
            raise ValueError(f"params must be a JSON object, got {params[:60]!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"params must be a JSON object, got {params[:60]!r}")
        return params
    return canonical_json(dict(params))


def meta_to_json(meta: OutputMeta) -> str:
    """An :class:`OutputMeta` as canonical JSON (tuples become lists)."""
    return canonical_json(dataclasses.asdict(meta))


_TUPLE_FIELDS: Final = ("bins", "channel_names", "width_names")
_META_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(OutputMeta))


@functools.lru_cache(maxsize=8192)
def meta_from_json(text: str) -> OutputMeta:
    """The inverse of :func:`meta_to_json`; unknown keys (from a newer writer) are ignored."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("output meta must be a JSON object")
    d = {k: v for k, v in raw.items() if k in _META_FIELDS}
    for name in _TUPLE_FIELDS:
        if name in d:
            d[name] = tuple(d[name])
    if d.get("value_range") is not None:
        lo, hi = d["value_range"]
        d["value_range"] = (float(lo), float(hi))
    return OutputMeta(**d)


@dataclass(frozen=True, order=True)
class EntryKey:
    """Identity of an entry; ``params`` is the canonical JSON of the request's overrides."""

    source_id: str
    calculator_id: str
    profile: str = "default"
    params: str = "{}"

    @classmethod
    def of(
        cls,
        source_id: str,
        calculator_id: str,
        profile: str = "default",
        params: str | Mapping[str, Any] | None = None,
    ) -> EntryKey:
        return cls(source_id, calculator_id, profile, canonical_params(params))

    @property
    def params_dict(self) -> dict[str, Any]:
        value = json.loads(self.params)
        return value if isinstance(value, dict) else {}

    def __str__(self) -> str:
        extra = "" if self.params == "{}" else f" {self.params}"
        return f"{self.source_id}/{self.calculator_id}/{self.profile}{extra}"


def key_tuple(key: EntryKey) -> tuple[str, str, str, str]:
    """The key's columns, in the order of the index's ``entries`` table."""
    return (key.source_id, key.calculator_id, key.profile, key.params)


@dataclass(frozen=True)
class SplicePart:
    """One part of a spliced feature (see :mod:`.splicing`): frames ``[first, first +
    removed)`` of the feature's *base* file are replaced by the ``frames`` frames of the file
    ``path`` (stored in the feature's encoding; ``times_path``: their frame times for a timed
    feature). A feature's parts are ascending and disjoint in base frame indices."""

    first: int
    removed: int
    frames: int
    path: str
    times_path: str | None
    nbytes: int  # bytes on disk, both files
    stamp: str  # "size:mtime_ns:inode" of each file at commit ("data[,times]")
    checksum: str  # "x3:..." (or "b2:...") of each file's values ("data[,times]")

    @property
    def stop(self) -> int:
        return self.first + self.removed

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, self.times_path) if self.times_path else (self.path,)


def splices_to_json(parts: Sequence[SplicePart]) -> str | None:
    """The ``splices`` column of a feature row: None for an unspliced feature. (A commit of
    splices writes ``[]`` for a feature it leaves unchanged: no parts, but files shared with
    the previous version; NULL is the promise that no other row uses the row's files.)"""
    if not parts:
        return None
    return json.dumps([dataclasses.astuple(p) for p in parts], separators=(",", ":"))


# the path of the one part a malformed ``splices`` column reads as (see splices_from_json):
# never a file of ``data/``, so nothing reads or deletes it; its ``stamp`` says what is wrong
MALFORMED_SPLICES: Final = "!malformed splices column"


@functools.lru_cache(maxsize=4096)
def splices_from_json(text: str | None) -> tuple[SplicePart, ...]:
    """The inverse of :func:`splices_to_json`. The column is written only by this store, but
    an index can be edited behind its back: a column that is not a list of parts of the right
    types reads as one :data:`MALFORMED_SPLICES` part (whose row then fails verification and
    reading with one line, see ``spliced.parts_problem``), never as an exception here."""
    if not text:
        return ()
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("not a list of parts")
        return tuple(_part(item) for item in items)
    except (ValueError, RecursionError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return (SplicePart(0, 0, 0, MALFORMED_SPLICES, None, 0, why[:200], ""),)


def _part(item: object) -> SplicePart:
    """One part of a ``splices`` column, its fields' types checked (ValueError)."""
    if not isinstance(item, list) or len(item) != len(dataclasses.fields(SplicePart)):
        raise ValueError(f"a part is not a list of {len(dataclasses.fields(SplicePart))} fields")
    first, removed, frames, path, times_path, nbytes, stamp, checksum = item
    counts = (first, removed, frames, nbytes)
    if not all(type(v) is int for v in counts):  # bool is an int: refused too
        raise ValueError("a part's frame counts are not integers")
    texts = (path, stamp, checksum)
    if not all(isinstance(v, str) for v in texts) or not isinstance(times_path, str | None):
        raise ValueError("a part's paths or stamps are not text")
    return SplicePart(first, removed, frames, path, times_path, nbytes, stamp, checksum)


def file_sizes(sf: StoredFeature) -> dict[tuple[str, str | None], int]:
    """The bytes of ``sf``'s files by (data, times) pair: its base files, then each part (the
    unit in which files are shared between rows)."""
    out = {(sf.path, sf.times_path): sf.base_nbytes}
    out.update(((p.path, p.times_path), p.nbytes) for p in sf.splices)
    return out


def row_files(path: str, times_path: str | None, splices: str | None) -> list[str]:
    """Every file a feature row (of ``features``, ``trash`` or ``previous``) references: its
    base data and times files, then its parts' (the one rule for what a row owns when it is
    dropped, purged or replaced, and for what is referenced)."""
    return [p for p in (path, times_path) if p] + part_files(splices)


def part_files(text: str | None) -> list[str]:
    """Every file of the parts in a ``splices`` column (a malformed column names none)."""
    return [
        p for part in splices_from_json(text) if part.path != MALFORMED_SPLICES for p in part.paths
    ]


@dataclass(frozen=True)
class StoredFeature:
    """One feature of an entry: its files (relative to the cache folder) and layout."""

    feature: str
    path: str
    times_path: str | None  # explicit frame times (float64), None for a uniform time axis
    meta: OutputMeta
    encoding: str  # how the file holds the values: "float32" or "u16db"
    frames: int
    channels: int
    width: int
    nbytes: int  # bytes on disk, both files
    # "size:mtime_ns:inode" of each file ("data,times") when it was last found sound: at its
    # commit, or when a listing last read its header; None for rows of older versions
    stamp: str | None = None
    # "x3:<xxh3-128 hex>" of each file's values (after the .npy header), recorded at commit
    # ("b2:<blake2b-128 hex>" in stores written before schema 9; core.hashing);
    # None for rows of older versions ("no checksum recorded")
    checksum: str | None = None
    # set by a verified listing (FeatureStore.entries): why its files are not what this row
    # says (missing, wrong size or header, refused path, content differs); None when sound
    problem: str | None = None
    # how this data compares with the version it replaced (core.compare's verdict:
    # "identical", "within tolerance" or "differs"), recorded after the commit that replaced
    # it; None for a first computation, or a replacement not compared (yet)
    regenerated: str | None = None
    # the parts spliced over the base files ``path``/``times_path`` (see :mod:`.splicing`);
    # ``frames`` and ``nbytes`` are those of the spliced feature, parts included
    splices: tuple[SplicePart, ...] = ()

    @property
    def base_frames(self) -> int:
        """The frames of the base files (``frames`` before the splices apply)."""
        return self.frames - sum(p.frames - p.removed for p in self.splices)

    @property
    def base_nbytes(self) -> int:
        return self.nbytes - sum(p.nbytes for p in self.splices)

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the feature's data is read from: base data, base times, parts."""
        base = (self.path, self.times_path) if self.times_path else (self.path,)
        return base + tuple(p for part in self.splices for p in part.paths)


@dataclass(frozen=True)
class StoredEntry:
    """One calculator's committed output for one :class:`EntryKey`."""

    key: EntryKey
    entry_id: int
    fingerprint_json: str  # canonical JSON text of the structured fingerprint
    calculator_version: int
    created: float  # epoch seconds: first commit of this key
    updated: float  # epoch seconds: commit of the current data
    features: Mapping[str, StoredFeature]
    commit_id: str  # changes with every commit of the key (restore uses it)
    # (feature, problem) of each feature whose ``problem`` is set, in feature order: () for a
    # sound entry (one attribute to compare, for consumers that remember entries)
    problems: tuple[tuple[str, str], ...] = ()
    # canonical JSON of what produced the data (see :mod:`.provenance`: app, python, numpy,
    # scipy, soundfile, libsndfile versions), recorded at commit; None for older rows
    provenance_json: str | None = None
    # set by a listing when ``verify --repair`` marked this commit as drifted (.marks): JSON
    # {"old": {library: version}, "new": {...}}; None for an unmarked entry
    environment: str | None = None

    def __hash__(self) -> int:
        return hash((self.entry_id, self.commit_id))

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The structured fingerprint (a fresh dict on every access)."""
        return json_object(self.fingerprint_json)

    @property
    def provenance(self) -> dict[str, Any]:
        """What produced the data (a fresh dict; empty for rows of older versions)."""
        return provenance_dict(self.provenance_json)

    @property
    def id(self) -> int:
        return self.entry_id

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.features.values())


def json_object(text: str) -> dict[str, Any]:
    """A stored JSON object (a fingerprint) as a fresh dict; {} for anything else."""
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def provenance_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        return json_object(text)
    except ValueError:
        return {}


@dataclass(frozen=True)
class PreviousVersion:
    """The data a feature had before its entry was last replaced (kept until the next
    replacement, or until the cache limit evicts it: previous versions go first)."""

    key: EntryKey
    feature: StoredFeature  # its files and layout, as its row was (``regenerated`` unset)
    fingerprint_json: str
    calculator_version: int
    commit_id: str  # the commit that wrote this data
    updated: float  # epoch seconds: when this data was committed
    replaced: float  # epoch seconds: when the commit ``replaced_by`` replaced it
    replaced_by: str  # commit id of the entry that replaced it
    provenance_json: str | None = None
    # bytes of its files that current data or the trash also uses (a spliced row shares its
    # base files with the version it was spliced from: see .splicing); dropping it frees the
    # rest, :attr:`nbytes`
    shared_bytes: int = 0

    @property
    def fingerprint(self) -> dict[str, Any]:
        return json_object(self.fingerprint_json)

    @property
    def provenance(self) -> dict[str, Any]:
        return provenance_dict(self.provenance_json)

    @property
    def nbytes(self) -> int:
        """The bytes dropping it frees (shared files excluded)."""
        return self.feature.nbytes - self.shared_bytes


@dataclass(frozen=True)
class LoadedFeature:
    meta: OutputMeta
    data: np.ndarray  # (frames, channels, width) float32, decoded (a read-only memmap if possible)
    times: np.ndarray  # (frames,) float64 seconds


@dataclass(frozen=True)
class TrashItem:
    prune_id: str
    pruned: float
    key: EntryKey
    feature: str
    nbytes: int


@dataclass(frozen=True)
class StoreVersion:
    """Change counters; a poller compares the last value it saw with :meth:`FeatureStore.version`."""

    entries: int
    jobs: int


@dataclass(frozen=True)
class EntryImport:
    """One entry for :meth:`FeatureStore.import_entries`: what a pass writer would have been
    given for one calculator (its fingerprint and version at ``pass_writer``, its frames at
    ``write``, its metas and times at ``close``), all at once."""

    key: EntryKey
    fingerprint: Mapping[str, Any]
    version: int
    metas: Mapping[str, OutputMeta]  # exactly the features the entry will hold
    arrays: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)  # (n, ch, w)
    times: Mapping[str, np.ndarray | None] = dataclasses.field(default_factory=dict)
    # what produced the data (see :mod:`.provenance`); None: this process
    provenance: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class JobRecord:
    """A job as every process sees it. ``params`` is the canonical JSON of the overrides."""

    id: str
    source_id: str
    calculator_ids: tuple[str, ...]
    profile: str
    params: str
    features: tuple[str, ...]
    state: str  # one of core.states.JOB_STATES
    progress: float | None
    label: str
    message: str | None
    origin: str  # "gui", "cli", "auto", ...
    owner_pid: int
    owner_start: str  # process_start_token(owner_pid) when the job was created
    created: float
    updated: float
    # where owner_pid means something (owners.this_place: host|boot|PID namespace); "" for a
    # record of this process until the store fills it in, or of a program without leases
    owner_place: str = ""

    @classmethod
    def new(
        cls,
        source_id: str,
        calculator_ids: Sequence[str],
        profile: str = "default",
        params: str | Mapping[str, Any] | None = None,
        features: Sequence[str] = (),
        *,
        origin: str = "cli",
        state: str = "queued",
        label: str = "queued",
        job_id: str | None = None,
    ) -> JobRecord:
        """A record owned by this process, stamped now."""
        now = time.time()
        return cls(
            id=job_id or uuid.uuid4().hex[:12],
            source_id=source_id,
            calculator_ids=tuple(calculator_ids),
            profile=profile,
            params=canonical_params(params),
            features=tuple(features),
            state=state,
            progress=None,
            label=label,
            message=None,
            origin=origin,
            owner_pid=os.getpid(),
            owner_start=process_start_token(),
            created=now,
            updated=now,
            owner_place=this_place(),
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB

    def entry_keys(self) -> tuple[EntryKey, ...]:
        return tuple(
            EntryKey(self.source_id, c, self.profile, self.params) for c in self.calculator_ids
        )

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["calculator_ids"] = list(self.calculator_ids)
        d["features"] = list(self.features)
        return d
