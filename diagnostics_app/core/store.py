"""The persistent feature store: an SQLite index plus one ``.npy`` array file per feature.

Layout of a cache folder::

    index.sqlite (+ -wal, -shm)   the index, WAL mode, shared by every process (GUI, CLI)
    data/                         committed array files, one per feature (+ one for its times)
    tmp/                          array files being written

An *entry* is what one calculator produced for one (source, profile, parameter overrides):
:class:`EntryKey`. It holds the structured fingerprint of its inputs (readable JSON, so
"why stale" can always be answered field by field), the calculator version, timestamps, and
one or more features (a calculator may produce several).

Writing (:meth:`FeatureStore.pass_writer`, the engine's ``FeatureSink``)
    ``write`` streams frames to a temporary ``.npy`` per (calculator, feature): the file starts
    with a fixed 128-byte header area that ``close`` rewrites with the final shape, so memory
    stays flat whatever the length of the source. ``close(calculator)`` commits: every file is
    fsynced, renamed into ``data/``, the directory fsynced, then ONE SQLite transaction
    *replaces* the entry: its previous feature rows become exactly the new ones (a feature the
    calculator no longer produces disappears; nothing is merged), and the replaced files are
    deleted after the commit. ``abort`` deletes the temporary files of calculators not closed,
    and so does closing the store. A writer serves one pass (one thread), as the engine uses it.

Bulk import (:meth:`FeatureStore.import_entries`)
    For tools and benchmarks that hold many finished entries at once: one transaction for all
    of them, files written straight into ``data/`` (fsynced only with ``durable=True``). Each
    entry ends exactly as a pass writer would have left it (same files, rows and fingerprint
    JSON; ``tests/core/test_store_bulk.py`` compares the two).

Storage ``"u16db"``
    dB values are quantised linearly to uint16 over ``meta.value_range = (lo, hi)``:
    ``q = round((clip(x, lo, hi) - lo) / step)`` with ``step = (hi - lo) / 65535``, decoded as
    ``lo + q * step``; the error is at most ``step / 2`` (0.00061 dB for a -80..0 dB range).
    NaN is stored as ``lo``. A u16db feature without a value range is stored as float32.
    *Deviation:* the sink learns a feature's storage only from the metas handed to ``close``
    (the ``FeatureSink`` protocol), so frames are streamed as float32 and transcoded at ``close``
    in chunks of 1 MiB (memory stays flat; one extra pass over the data, from the page cache).
    The file's real encoding is a column of the feature row, so metas round-trip unchanged.

Crash safety (proven by ``tests/core/test_store_crash.py``, which SIGKILLs writers)
    A row is committed only after its files are durable in ``data/``, so every listed entry
    loads completely. Files that no row references are garbage, of three kinds, each with its
    own clean-up: (1) files replaced or purged by a commit are listed in a ``garbage`` table *in
    the same transaction*, deleted just after it, and whatever a crash left there is deleted at
    the next open (no guessing about owners); (2) temporary files and (3) files renamed into
    ``data/`` whose commit never happened carry their writer's pid and start-time token in
    their names (``<random>.<pid>-<token>.npy``) and are only deleted once that process is dead,
    so a live writer in another process is never disturbed. Every writing process registers in
    a ``writers`` table before it creates a file; ``open`` scans ``tmp/`` (small), and scans
    ``data/`` only when a registered writer died without unregistering, so opening a store of
    100,000 files does not list them. :meth:`FeatureStore.sweep` with ``full=True`` forces the
    scan. Liveness is decided *before* reading the set of referenced files, so a writer that
    commits and then dies cannot have its committed file taken for an orphan.
    Durability: entry commits, prunes, restores and purges run with ``synchronous=FULL`` (a
    power loss cannot resurrect a row whose files were already deleted); job progress and
    digests run with ``NORMAL`` (safe against process crashes, cheap at 10 updates/s).

Prune with undo (*deviation from "move the files to trash/<prune_id>/"*)
    :meth:`FeatureStore.prune` moves feature rows to a ``trash`` table in one transaction and
    leaves the array files where they are: moving files cannot be atomic with the index, and
    each crash window of a two-step move either loses the undo or lists entries whose files
    are gone. Files stay in ``data/`` (referenced by their trash row) until
    :meth:`FeatureStore.purge`; :meth:`FeatureStore.trash_bytes` reports their size. ``restore``
    puts back exactly what was pruned (same entry id, fingerprint, version and timestamps)
    unless the entry has been recomputed since (then the newer data wins and the stale
    trashed features stay in the trash for ``purge``).

Reading (the hot path of ``check``: 100,000 entries list in ~0.7 s cold on a laptop-class VM)
    :meth:`FeatureStore.entries` is one joined query. Output metas (a spectrogram's carries
    its 1025 bin centres) are stored once in a ``metas`` table and referenced by id, so rows
    stay small and each distinct meta is parsed once per store instance. Each entry row has a
    ``seq``, the value of the ``entries`` change counter of its last change: a store instance
    keeps its last listing, returns it again while the counter is unchanged, and otherwise
    re-reads only the entries with a newer ``seq`` (plus the list of ids, to drop removed
    ones). The cyclic GC is paused while the objects are built (it was half the time).
    Fingerprints are kept as canonical JSON text (``StoredEntry.fingerprint_json``) and parsed
    on access, so a consumer comparing canonical JSON never parses 100,000 objects.
    :meth:`FeatureStore.load` memory-maps float32 files (no copy) and can decode a frame range.

Jobs
    Job records live in the index so that every process sees every job, whoever started it.
    The owner's pid and start-time token (``/proc/<pid>/stat`` field 22 plus the boot id on
    Linux) let :meth:`FeatureStore.reap_dead_jobs` fail the jobs of dead owners even when the
    pid has been reused. :meth:`FeatureStore.version` is a cheap change counter for pollers.

Every OSError and SQLite error becomes a :class:`StoreError` whose message is one line naming
the path and the cause. Nothing here uses pickle (``np.load(..., allow_pickle=False)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import sqlite3
import struct
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from diagnostics_app.core._gc import gc_paused
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.errors import StoreError

if TYPE_CHECKING:
    from diagnostics_app.core.audio import DigestCache, FileStamp
    from diagnostics_app.core.engine import FeatureSink

SCHEMA_VERSION: Final = 2  # 2: cancel_requests (cancelling another process's job)
INDEX_NAME: Final = "index.sqlite"
DATA_DIR: Final = "data"
TMP_DIR: Final = "tmp"
DEFAULT_BUSY_TIMEOUT: Final = 30.0  # seconds a writer waits for another process's transaction
FINISHED_JOBS_PER_KEY: Final = 10  # finished job records kept per (source, calculator, ...)
TRASH_MAX_AGE: Final = 7 * 24 * 3600.0  # trash older than this is purged at open
U16_LEVELS: Final = 65535

JOB_STATES: Final = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_JOB_STATES: Final = ("queued", "running")
FINISHED_JOB_STATES: Final = ("done", "failed", "cancelled")

_HEADER_BYTES: Final = 128  # fixed .npy header area (magic + version + length + dict), 64-aligned
_CHUNK_BYTES: Final = 1 << 20
_FILE_RE: Final = re.compile(r"^[0-9a-f]{32}\.(?P<pid>\d+)-(?P<tok>[0-9a-f]{8})\.[a-z0-9.]+$")


# --- process identity ------------------------------------------------------------------------


_PLATFORM: str = sys.platform  # a plain str: mypy must not prune the other platforms' branches


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, starttime) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # comm may hold spaces and parentheses
    if len(fields) < 20:
        return None
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime, clock ticks)


if sys.platform == "win32":  # pragma: no cover - not exercised on the Linux test machines

    def _win_creation_time(pid: int) -> int | None:
        """Creation time of a running process, None if it is not running."""
        import ctypes
        from ctypes import wintypes

        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = k32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return 0 if ctypes.get_last_error() == 5 else None  # access denied: it exists
        try:
            code = wintypes.DWORD()
            if k32.GetExitCodeProcess(handle, ctypes.byref(code)) and code.value != 259:
                return None  # exited (259 = STILL_ACTIVE)
            times = [wintypes.FILETIME() for _ in range(4)]
            if not k32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
                return 0
            return (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime
        finally:
            k32.CloseHandle(handle)

else:

    def _win_creation_time(pid: int) -> int | None:
        return None


def process_start_token(pid: int | None = None) -> str:
    """A token that differs between two processes that had the same pid ("" if unknown).

    Linux: boot id + the start time in ``/proc/<pid>/stat``; Windows: the creation time;
    elsewhere "" (liveness then relies on the pid alone)."""
    pid = os.getpid() if pid is None else pid
    if _PLATFORM.startswith("linux"):
        stat = _proc_stat(pid)
        return f"{_boot_id()}:{stat[1]}" if stat is not None else ""
    if _PLATFORM == "win32":  # pragma: no cover
        created = _win_creation_time(pid)
        return f"win:{created}" if created else ""
    return ""


def process_alive(pid: int, token: str = "") -> bool:
    """Whether process ``pid`` runs and (when ``token`` is given) is the one that had it.

    A zombie (exited, not yet waited for) counts as dead."""
    if pid <= 0:
        return False
    if _PLATFORM.startswith("linux"):
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X", "x"):
            return False
        return not token or token == f"{_boot_id()}:{stat[1]}"
    if _PLATFORM == "win32":  # pragma: no cover
        created = _win_creation_time(pid)
        if created is None:
            return False
        return not token or not created or token == f"win:{created}"
    try:  # pragma: no cover - other POSIX systems
        os.kill(pid, 0)
    except ProcessLookupError:  # pragma: no cover
        return False
    except OSError:  # pragma: no cover - EPERM: it exists, owned by someone else
        return True
    return True  # pragma: no cover


def _short_token(token: str) -> str:
    return hashlib.blake2b(token.encode(), digest_size=4).hexdigest()


_own_tag: tuple[int, str] | None = None


def _owner_tag() -> str:
    """``<pid>-<8 hex of the start token>``, recomputed after a fork."""
    global _own_tag
    pid = os.getpid()
    if _own_tag is None or _own_tag[0] != pid:
        _own_tag = (pid, f"{pid}-{_short_token(process_start_token(pid))}")
    return _own_tag[1]


def _file_owner_alive(name: str, cache: dict[tuple[int, str], bool]) -> bool | None:
    """Whether the process named in a store file name runs; None if the name is not ours."""
    m = _FILE_RE.match(name)
    if m is None:
        return None
    pid, tok = int(m["pid"]), m["tok"]
    if (pid, tok) not in cache:
        alive = process_alive(pid) and _short_token(process_start_token(pid)) == tok
        cache[(pid, tok)] = alive
    return cache[(pid, tok)]


# --- JSON helpers ----------------------------------------------------------------------------


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


# --- value types -----------------------------------------------------------------------------


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

    def __hash__(self) -> int:
        return hash((self.entry_id, self.commit_id))

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The structured fingerprint (a fresh dict on every access)."""
        value = json.loads(self.fingerprint_json)
        return value if isinstance(value, dict) else {}

    @property
    def id(self) -> int:
        return self.entry_id

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.features.values())


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
class JobRecord:
    """A job as every process sees it. ``params`` is the canonical JSON of the overrides."""

    id: str
    source_id: str
    calculator_ids: tuple[str, ...]
    profile: str
    params: str
    features: tuple[str, ...]
    state: str  # one of JOB_STATES
    progress: float | None
    label: str
    message: str | None
    origin: str  # "gui", "cli", "auto", ...
    owner_pid: int
    owner_start: str  # process_start_token(owner_pid) when the job was created
    created: float
    updated: float

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
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    def entry_keys(self) -> tuple[EntryKey, ...]:
        return tuple(
            EntryKey(self.source_id, c, self.profile, self.params) for c in self.calculator_ids
        )

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["calculator_ids"] = list(self.calculator_ids)
        d["features"] = list(self.features)
        return d


class _Unset:
    pass


_UNSET: Final = _Unset()


# --- errors ----------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _os_cause(exc: OSError) -> str:
    return _one_line(exc.strerror or str(exc) or type(exc).__name__)


def _db_cause(exc: sqlite3.Error) -> str:
    cause = _one_line(str(exc) or type(exc).__name__)
    if "not a database" in cause or "malformed" in cause:
        cause += " (the index is corrupt: delete the cache folder to start an empty cache)"
    return cause


# --- .npy streaming --------------------------------------------------------------------------


def _npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header padded to exactly ``_HEADER_BYTES``."""
    text = repr(
        {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    room = _HEADER_BYTES - 10
    if len(text) + 1 > room:
        raise ValueError(f"array shape {shape} does not fit the reserved .npy header")
    body = (text + " " * (room - len(text) - 1) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + body


_F32: Final = np.dtype("<f4")
_U16: Final = np.dtype("<u2")


def _encode_u16(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.zeros(values.shape, _U16)
    x = np.array(values, dtype=np.float64)  # the one temporary, worked on in place
    np.nan_to_num(x, copy=False, nan=lo, posinf=hi, neginf=lo)
    np.clip(x, lo, hi, out=x)
    x -= lo
    x *= U16_LEVELS / span
    np.rint(x, out=x)
    return x.astype(_U16)


def _decode_u16(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    out = np.empty(raw.shape, np.float32)
    np.multiply(raw, np.float32((hi - lo) / U16_LEVELS), out=out)
    out += np.float32(lo)
    return out


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError:
        return False  # e.g. still mapped by a reader on Windows: left for a later sweep
    return True


class _TempArray:
    """A ``.npy`` file in ``tmp/`` that grows by appending frames; the header is final only
    after :meth:`finish`."""

    def __init__(self, path: Path, dtype: np.dtype[Any], channels: int, width: int) -> None:
        self.path = path
        self.dtype = dtype
        self.channels = channels
        self.width = width
        self.frames = 0
        self._file = path.open("wb")
        try:
            self._file.write(_npy_header(dtype, (0, channels, width)))
        except BaseException:
            self.discard()
            raise

    def append(self, frames: np.ndarray) -> None:
        data = np.ascontiguousarray(frames, dtype=self.dtype)
        if data.ndim != 3 or data.shape[1:] != (self.channels, self.width):
            raise ValueError(
                f"frames of shape {data.shape} after frames of shape "
                f"(n, {self.channels}, {self.width})"
            )
        if data.size:
            self._file.write(data.data)
        self.frames += data.shape[0]

    def finish(self) -> None:
        f = self._file
        f.seek(0)
        f.write(_npy_header(self.dtype, (self.frames, self.channels, self.width)))
        f.flush()
        os.fsync(f.fileno())
        f.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        _unlink(self.path)


def _new_name(suffix: str) -> str:
    return f"{uuid.uuid4().hex}.{_owner_tag()}{suffix}"


# --- the writer ------------------------------------------------------------------------------


@dataclass
class _Staged:
    feature: str
    meta: OutputMeta
    encoding: str
    frames: int
    tmp: list[Path]  # data file, then the times file if any
    nbytes: int = 0


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


class PassWriter:
    """The engine's ``FeatureSink`` for one pass over one (source, profile, params): one
    entry per calculator, committed by :meth:`close`."""

    def __init__(
        self,
        store: FeatureStore,
        source_id: str,
        profile: str,
        params: str,
        fingerprints: Mapping[str, str],
        versions: Mapping[str, int],
    ) -> None:
        self._store = store
        self.source_id = source_id
        self.profile = profile
        self.params = params
        self._fingerprints = dict(fingerprints)
        self._versions = dict(versions)
        self._open: dict[tuple[str, str], _TempArray] = {}
        self._closed: set[str] = set()
        self._aborted = False
        self.committed: list[StoredEntry] = []

    def key(self, calculator_id: str) -> EntryKey:
        return EntryKey(self.source_id, calculator_id, self.profile, self.params)

    def _check(self, calculator_id: str) -> None:
        if self._aborted:
            raise ValueError("this pass writer was aborted")
        if calculator_id not in self._fingerprints:
            raise ValueError(f"no fingerprint was given for calculator {calculator_id!r}")
        if calculator_id in self._closed:
            raise ValueError(f"calculator {calculator_id!r} was already committed")

    def _temp(self, calculator_id: str, feature: str, channels: int, width: int) -> _TempArray:
        arr = self._open.get((calculator_id, feature))
        if arr is None:
            path = self._store.root / TMP_DIR / _new_name(".npy")
            try:
                arr = _TempArray(path, _F32, channels, width)
            except OSError as exc:
                raise StoreError(f"{path}: cannot write feature data: {_os_cause(exc)}") from None
            self._open[(calculator_id, feature)] = arr
        return arr

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        """Append frames ``(n, channels, width)`` of one feature."""
        self._check(calculator_id)
        if frames.ndim != 3:
            raise ValueError(f"{calculator_id}/{feature}: frames must be (n, channels, width)")
        arr = self._temp(calculator_id, feature, frames.shape[1], frames.shape[2])
        try:
            arr.append(frames)
        except OSError as exc:
            raise StoreError(f"{arr.path}: cannot write feature data: {_os_cause(exc)}") from None

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        """Commit the calculator's entry: exactly the features in ``metas`` replace the old."""
        self._check(calculator_id)
        for (calc, feature), arr in list(self._open.items()):
            if calc == calculator_id and feature not in metas:  # written but not declared
                arr.discard()
                del self._open[(calc, feature)]
        staged: list[_Staged] = []
        try:
            for feature, meta in metas.items():
                staged.append(self._stage(calculator_id, feature, meta, times.get(feature)))
            self._store._commit_files(
                self.key(calculator_id),
                self._fingerprints[calculator_id],
                int(self._versions.get(calculator_id, 0)),
                staged,
                self,
            )
        except BaseException:
            for item in staged:
                for path in item.tmp:
                    _unlink(path)
            raise
        finally:
            for (calc, feature), arr in list(self._open.items()):
                if calc == calculator_id:
                    arr.discard()
                    del self._open[(calc, feature)]
        self._closed.add(calculator_id)

    def _stage(
        self, calculator_id: str, feature: str, meta: OutputMeta, times: np.ndarray | None
    ) -> _Staged:
        arr = self._open.pop((calculator_id, feature), None)
        if arr is None:  # declared but no frame written: an empty feature
            arr = self._temp(calculator_id, feature, meta.channels, meta.width)
            del self._open[(calculator_id, feature)]
        item = _Staged(feature, meta, "float32", arr.frames, [arr.path])
        path = arr.path
        try:
            if (arr.channels, arr.width) != (meta.channels, meta.width):
                raise ValueError(
                    f"{calculator_id}/{feature}: frames have {arr.channels} channels × "
                    f"{arr.width} values, the meta says {meta.channels} × {meta.width}"
                )
            arr.finish()
            if meta.storage == "u16db" and meta.value_range is not None:
                path = self._store.root / TMP_DIR / _new_name(".npy")
                item.tmp[0] = path
                _transcode_u16(arr.path, path, meta.value_range)
                _unlink(arr.path)
                item.encoding = "u16db"
            if times is not None:
                t = np.ascontiguousarray(np.asarray(times, dtype="<f8").reshape(-1))
                if len(t) != arr.frames:
                    raise ValueError(
                        f"{calculator_id}/{feature}: {len(t)} frame times for {arr.frames} frames"
                    )
                path = self._store.root / TMP_DIR / _new_name(".times.npy")
                item.tmp.append(path)
                with path.open("wb") as f:
                    np.save(f, t, allow_pickle=False)
                    f.flush()
                    os.fsync(f.fileno())
            item.nbytes = sum(p.stat().st_size for p in item.tmp)
        except OSError as exc:
            arr.discard()
            for p in item.tmp:
                _unlink(p)
            raise StoreError(f"{path}: cannot write feature data: {_os_cause(exc)}") from None
        except BaseException:
            arr.discard()
            for p in item.tmp:
                _unlink(p)
            raise
        return item

    def abort(self) -> None:
        """Delete the temporary files of every calculator not yet committed."""
        self._aborted = True
        for arr in self._open.values():
            arr.discard()
        self._open.clear()

    @property
    def pending(self) -> tuple[str, ...]:
        """Calculators with frames written but not committed."""
        return tuple(sorted({c for c, _ in self._open}))

    def __enter__(self) -> PassWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()  # commits happened in close(); anything left is dropped


def _transcode_u16(src: Path, dst: Path, value_range: tuple[float, float]) -> None:
    lo, hi = float(value_range[0]), float(value_range[1])
    values = np.load(src, mmap_mode="r", allow_pickle=False)
    try:
        n, channels, width = values.shape
        step = max(1, _CHUNK_BYTES // max(1, channels * width * 4))
        with dst.open("wb") as f:
            f.write(_npy_header(_U16, (n, channels, width)))
            for start in range(0, n, step):
                f.write(_encode_u16(values[start : start + step], lo, hi).data)
            f.flush()
            os.fsync(f.fileno())
    finally:
        del values  # release the mapping before the source is unlinked


# --- the store -------------------------------------------------------------------------------

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS metas (id INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id TEXT NOT NULL, calculator_id TEXT NOT NULL, profile TEXT NOT NULL,
    params TEXT NOT NULL, fingerprint TEXT NOT NULL, calculator_version INTEGER NOT NULL,
    commit_id TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source_id, calculator_id, profile, params));
CREATE INDEX IF NOT EXISTS entries_by_seq ON entries (seq);
CREATE TABLE IF NOT EXISTS features (
    entry_id INTEGER NOT NULL, feature TEXT NOT NULL, path TEXT NOT NULL, times_path TEXT,
    meta_id INTEGER NOT NULL, encoding TEXT NOT NULL, frames INTEGER NOT NULL,
    channels INTEGER NOT NULL, width INTEGER NOT NULL, nbytes INTEGER NOT NULL,
    PRIMARY KEY (entry_id, feature)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trash (
    prune_id TEXT NOT NULL, pruned REAL NOT NULL, entry_id INTEGER NOT NULL,
    source_id TEXT NOT NULL, calculator_id TEXT NOT NULL, profile TEXT NOT NULL,
    params TEXT NOT NULL, fingerprint TEXT NOT NULL, calculator_version INTEGER NOT NULL,
    commit_id TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    feature TEXT NOT NULL, path TEXT NOT NULL, times_path TEXT, meta_id INTEGER NOT NULL,
    encoding TEXT NOT NULL, frames INTEGER NOT NULL, channels INTEGER NOT NULL,
    width INTEGER NOT NULL, nbytes INTEGER NOT NULL,
    PRIMARY KEY (prune_id, entry_id, feature));
CREATE TABLE IF NOT EXISTS garbage (path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS writers (
    token TEXT PRIMARY KEY, pid INTEGER NOT NULL, start TEXT NOT NULL, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS digests (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cancel_requests (job_id TEXT PRIMARY KEY, requested REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, source_id TEXT NOT NULL, calculator_ids TEXT NOT NULL,
    profile TEXT NOT NULL, params TEXT NOT NULL, features TEXT NOT NULL, state TEXT NOT NULL,
    progress REAL, label TEXT NOT NULL, message TEXT, origin TEXT NOT NULL,
    owner_pid INTEGER NOT NULL, owner_start TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (source_id, profile, params);
INSERT OR IGNORE INTO counters VALUES ('entries', 0), ('jobs', 0);
"""

_ENTRY_COLS: Final = (
    "e.id, e.source_id, e.calculator_id, e.profile, e.params, e.fingerprint, "
    "e.calculator_version, e.commit_id, e.created, e.updated, f.feature, f.path, f.times_path, "
    "f.meta_id, f.encoding, f.frames, f.channels, f.width, f.nbytes"
)
_ENTRY_SQL: Final = f"SELECT {_ENTRY_COLS} FROM entries e JOIN features f ON f.entry_id = e.id"
_KEY_WHERE: Final = "e.source_id = ? AND e.calculator_id = ? AND e.profile = ? AND e.params = ?"
_JOB_COLS: Final = (
    "id, source_id, calculator_ids, profile, params, features, state, progress, label, "
    "message, origin, owner_pid, owner_start, created, updated"
)


def _entries_from_rows(
    rows: Sequence[Sequence[Any]], metas: Mapping[int, OutputMeta]
) -> list[StoredEntry]:
    """Rows of ``_ENTRY_SQL`` ordered by entry id → entries (one pass, no per-row queries)."""
    out: list[StoredEntry] = []
    current: tuple[Any, ...] | None = None
    features: dict[str, StoredFeature] = {}
    new_feature = StoredFeature
    for row in rows:
        if current is None or row[0] != current[0]:
            if current is not None:
                out.append(_make_entry(current, features))
            current = tuple(row[:10])
            features = {}
        name = row[10]
        features[name] = new_feature(name, row[11], row[12], metas[row[13]], *row[14:19])
    if current is not None:
        out.append(_make_entry(current, features))
    return out


def _make_entry(head: tuple[Any, ...], features: dict[str, StoredFeature]) -> StoredEntry:
    eid, source, calc, profile, params, fp, version, commit_id, created, updated = head
    return StoredEntry(
        EntryKey(source, calc, profile, params),
        eid,
        fp,
        version,
        created,
        updated,
        MappingProxyType(features),
        commit_id,
    )


def _job_from_row(row: Sequence[Any]) -> JobRecord:
    return JobRecord(
        id=row[0],
        source_id=row[1],
        calculator_ids=tuple(json.loads(row[2])),
        profile=row[3],
        params=row[4],
        features=tuple(json.loads(row[5])),
        state=row[6],
        progress=row[7],
        label=row[8],
        message=row[9],
        origin=row[10],
        owner_pid=row[11],
        owner_start=row[12],
        created=row[13],
        updated=row[14],
    )


class FeatureStore:
    """A cache folder: see the module docstring. Thread-safe (one connection behind a lock);
    any number of processes may open the same folder at once."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        """Use :meth:`open`."""
        self.root = root
        self.index_path = root / INDEX_NAME
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._registration: tuple[int, str] | None = None  # (pid, token) in the writers table
        self._writes = 0  # transactions committed by this connection
        self._entries_cache: tuple[int, dict[int, StoredEntry]] | None = None
        self._version_cache: tuple[int, int, StoreVersion] | None = None
        self._metas: dict[int, OutputMeta] = {}  # meta ids are never reused (AUTOINCREMENT)
        self._writers: weakref.WeakSet[PassWriter] = weakref.WeakSet()

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        cache_dir: str | os.PathLike[str],
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        trash_max_age: float | None = TRASH_MAX_AGE,
    ) -> FeatureStore:
        """Open (creating if needed) the store in ``cache_dir``; sweeps what crashed writers
        left, fails the jobs of dead processes and purges trash older than ``trash_max_age``."""
        root = Path(cache_dir)
        try:
            for folder in (root, root / DATA_DIR, root / TMP_DIR):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{root}: cannot create the feature store folder: {_os_cause(exc)}"
            ) from None
        index = root / INDEX_NAME
        try:
            conn = sqlite3.connect(
                str(index), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{index}: cannot open the feature index: {_db_cause(exc)}") from None
        store = cls(root, conn)
        try:
            store._setup(busy_timeout)
            store.sweep()
            store.reap_dead_jobs()
            if trash_max_age is not None:
                store.purge(older_than=trash_max_age)
        except BaseException:
            conn.close()
            store._conn = None
            raise
        return store

    def _setup(self, busy_timeout: float) -> None:
        conn = self._live()
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = NORMAL")
            version = self._schema_version(conn)
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self.index_path}: cannot open the feature index: {_db_cause(exc)}"
            ) from None
        if version == SCHEMA_VERSION:
            return
        with self._write("cannot initialise the feature index", durable=True) as c:
            c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self._schema_version(c)
            if version is None or version < SCHEMA_VERSION:
                # every statement is IF NOT EXISTS: running them all creates a new index and
                # migrates an older one (1 -> 2 adds cancel_requests)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

    def _schema_version(self, conn: sqlite3.Connection) -> int | None:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta is None:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return None
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.index_path}: the feature index has schema version {version}, newer than "
                f"this program supports ({SCHEMA_VERSION}); upgrade diagnostics-app or use "
                f"another cache folder"
            )
        return version

    def close(self) -> None:
        """Abort unfinished writers of this instance, unregister, close the connection."""
        with self._lock:
            if self._conn is None:
                return
            for writer in list(self._writers):
                writer.abort()
            if self._registration is not None:
                with contextlib.suppress(StoreError), self._write("cannot unregister") as c:
                    c.execute("DELETE FROM writers WHERE token = ?", (self._registration[1],))
                self._registration = None
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
            self._entries_cache = None  # freed now, not whenever the owner is collected

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.root}: the feature store is closed")
        return self._conn

    def _db_error(self, what: str, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"{self.index_path}: {what}: {_db_cause(exc)}")

    @contextlib.contextmanager
    def _write(self, what: str, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT); rolled back on any error."""
        with self._lock:
            conn = self._live()
            try:
                if durable:
                    conn.execute("PRAGMA synchronous = FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                    self._writes += 1
                finally:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise self._db_error(what, exc) from None
            finally:
                if durable:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA synchronous = NORMAL")

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._db_error(what, exc) from None

    def _bump(self, conn: sqlite3.Connection, counter: str) -> int:
        """Increment a change counter inside the current transaction; its new value (entries
        changed by the transaction get it as their ``seq``)."""
        conn.execute("UPDATE counters SET value = value + 1 WHERE name = ?", (counter,))
        row = conn.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()
        return int(row[0])

    def _register(self) -> None:
        """Record this process as a writer before it creates any file (see module doc)."""
        pid = os.getpid()
        if self._registration is not None and self._registration[0] == pid:
            return
        token = uuid.uuid4().hex
        with self._write("cannot register as a writer", durable=True) as c:
            c.execute(
                "INSERT INTO writers VALUES (?, ?, ?, ?)",
                (token, pid, process_start_token(pid), time.time()),
            )
        self._registration = (pid, token)

    # -- writing ------------------------------------------------------------------------------

    def pass_writer(
        self,
        source_id: str,
        profile: str,
        params: str | Mapping[str, Any] | None,
        fingerprints: Mapping[str, Mapping[str, Any]],
        versions: Mapping[str, int],
    ) -> PassWriter:
        """A ``FeatureSink`` whose ``close(calculator)`` commits that calculator's entry."""
        self._register()
        fps = {calc: canonical_json(dict(fp)) for calc, fp in fingerprints.items()}
        writer = PassWriter(self, source_id, profile, canonical_params(params), fps, versions)
        self._writers.add(writer)
        return writer

    def import_entries(
        self, items: Iterable[EntryImport], *, durable: bool = False
    ) -> list[StoredEntry]:
        """Bulk import: commit many entries in ONE transaction (tools, benchmarks, migrations).

        Each item ends as if a :meth:`pass_writer` had written its ``arrays`` and closed its
        calculator with its ``metas`` and ``times``: the same files (a ``.npy`` with the
        writer's fixed 128-byte header, float32 or u16db as the meta says, plus a
        ``.times.npy``), the same rows, the same canonical fingerprint JSON, and the same
        replacement of a previous entry of the key (its files become garbage; an item without
        metas removes the entry). Arrays not named in ``metas`` are dropped; a meta without an
        array is an empty feature; a later item with the same key replaces an earlier one.

        ``durable=False`` (the default) skips the per-file fsyncs and commits with
        ``synchronous=NORMAL``: a crash or power loss can lose the import (all of it, as it is
        one transaction, or leave rows whose files are incomplete after a power loss) but never
        touches data committed before; ``durable=True`` gives the writer's guarantees (files
        and folder fsynced, then a ``synchronous=FULL`` commit). Files are written straight
        into ``data/`` under this process's owner tag, so what a crashed import leaves is
        swept like a crashed writer's renamed files. Returns the committed entries.
        """
        self._register()
        data = self.root / DATA_DIR
        written: list[Path] = []
        staged: list[tuple[EntryKey, str, int, list[tuple[Any, ...]]]] = []
        try:
            for item in items:
                key = EntryKey(
                    item.key.source_id,
                    item.key.calculator_id,
                    item.key.profile,
                    canonical_params(item.key.params),
                )
                rows = [
                    self._import_feature(key, feature, meta, item, data, written, durable)
                    for feature, meta in item.metas.items()
                ]
                staged.append(
                    (key, canonical_json(dict(item.fingerprint)), int(item.version), rows)
                )
            if durable and written:
                _fsync_dir(data)
        except OSError as exc:
            for path in written:
                _unlink(path)
            raise StoreError(f"{data}: cannot write feature data: {_os_cause(exc)}") from None
        except BaseException:
            for path in written:
                _unlink(path)
            raise
        now = time.time()
        entries: dict[EntryKey, StoredEntry | None] = {}
        garbage: list[str] = []
        try:
            with self._write(f"cannot import {len(staged)} entries", durable=durable) as c:
                seq = self._bump(c, "entries")
                meta_ids: dict[str, int] = {}
                for key, fingerprint, version, rows in staged:
                    entry, old = self._replace_in(
                        c, key, fingerprint, version, rows, seq, now, meta_ids
                    )
                    entries[key] = entry
                    garbage.extend(old)
        except BaseException:
            if written and not self._references(f"{DATA_DIR}/{written[0].name}"):
                for path in written:
                    _unlink(path)
            raise
        self._delete_garbage(garbage)
        return [e for e in entries.values() if e is not None]

    def _import_feature(
        self,
        key: EntryKey,
        feature: str,
        meta: OutputMeta,
        item: EntryImport,
        data: Path,
        written: list[Path],
        durable: bool,
    ) -> tuple[Any, ...]:
        """Write one feature's files for :meth:`import_entries`; its row for ``_replace_in``."""
        what = f"{key.calculator_id}/{feature}"
        raw = item.arrays.get(feature)
        if raw is None:
            values = np.zeros((0, meta.channels, meta.width), _F32)
        else:
            values = np.ascontiguousarray(raw, dtype=_F32)  # the writer streams float32
            if values.ndim != 3:
                raise ValueError(f"{what}: frames must be (n, channels, width)")
            if values.shape[1:] != (meta.channels, meta.width):
                raise ValueError(
                    f"{what}: frames have {values.shape[1]} channels × {values.shape[2]} "
                    f"values, the meta says {meta.channels} × {meta.width}"
                )
        encoding = "float32"
        dtype: np.dtype[Any] = _F32
        if meta.storage == "u16db" and meta.value_range is not None:
            lo, hi = float(meta.value_range[0]), float(meta.value_range[1])
            values, encoding, dtype = _encode_u16(values, lo, hi), "u16db", _U16
        times = item.times.get(feature)
        t: np.ndarray | None = None
        if times is not None:
            t = np.ascontiguousarray(np.asarray(times, dtype="<f8").reshape(-1))
            if len(t) != len(values):
                raise ValueError(f"{what}: {len(t)} frame times for {len(values)} frames")
        paths = [data / _new_name(".npy")]
        written.append(paths[0])
        with paths[0].open("wb") as f:
            f.write(_npy_header(dtype, values.shape))
            if values.size:
                f.write(values.data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if t is not None:
            paths.append(data / _new_name(".times.npy"))
            written.append(paths[1])
            with paths[1].open("wb") as f:
                np.save(f, t, allow_pickle=False)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
        nbytes = sum(p.stat().st_size for p in paths)
        return (
            feature,
            f"{DATA_DIR}/{paths[0].name}",
            f"{DATA_DIR}/{paths[1].name}" if len(paths) > 1 else None,
            meta,
            encoding,
            len(values),
            meta.channels,
            meta.width,
            nbytes,
        )

    def _commit_files(
        self,
        key: EntryKey,
        fingerprint: str,
        version: int,
        staged: Sequence[_Staged],
        writer: PassWriter,
    ) -> None:
        data = self.root / DATA_DIR
        renamed: list[Path] = []
        rows: list[tuple[Any, ...]] = []
        try:
            for item in staged:
                names = [p.name for p in item.tmp]
                for tmp_path, name in zip(item.tmp, names, strict=True):
                    os.replace(tmp_path, data / name)
                    renamed.append(data / name)
                rows.append(
                    (
                        item.feature,
                        f"{DATA_DIR}/{names[0]}",
                        f"{DATA_DIR}/{names[1]}" if len(names) > 1 else None,
                        item.meta,
                        item.encoding,
                        item.frames,
                        item.meta.channels,
                        item.meta.width,
                        item.nbytes,
                    )
                )
            _fsync_dir(data)
        except OSError as exc:
            for path in renamed:
                _unlink(path)
            raise StoreError(f"{data}: cannot commit feature data: {_os_cause(exc)}") from None
        try:
            entry, old = self._replace_entry(key, fingerprint, version, rows)
        except BaseException:
            if renamed and not self._references(f"{DATA_DIR}/{renamed[0].name}"):
                for path in renamed:
                    _unlink(path)
            raise
        if entry is not None:
            writer.committed.append(entry)
        self._delete_garbage(old)

    def _references(self, path: str) -> bool:
        """Whether a row references ``path`` (True when unsure: never delete a live file)."""
        try:
            with self._lock:
                row = (
                    self._live()
                    .execute("SELECT 1 FROM features WHERE path = ? LIMIT 1", (path,))
                    .fetchone()
                )
        except (sqlite3.Error, StoreError):
            return True
        return row is not None

    def _replace_entry(
        self, key: EntryKey, fingerprint: str, version: int, rows: Sequence[tuple[Any, ...]]
    ) -> tuple[StoredEntry | None, list[str]]:
        now = time.time()
        with self._write(f"cannot commit entry {key}", durable=True) as c:
            seq = self._bump(c, "entries")
            entry, old = self._replace_in(c, key, fingerprint, version, rows, seq, now, {})
        return entry, old

    def _replace_in(
        self,
        c: sqlite3.Connection,
        key: EntryKey,
        fingerprint: str,
        version: int,
        rows: Sequence[tuple[Any, ...]],
        seq: int,
        now: float,
        meta_ids: dict[str, int],
    ) -> tuple[StoredEntry | None, list[str]]:
        """Inside a write transaction: make ``rows`` (see ``_commit_files``) the features of
        ``key``'s entry, replacing what it had. Returns the entry (None when ``rows`` is empty:
        the entry is removed) and the replaced files, which the caller lists as garbage."""
        commit_id = uuid.uuid4().hex
        old: list[str] = []
        found = c.execute(
            f"SELECT e.id, e.created FROM entries e WHERE {_KEY_WHERE}",
            (key.source_id, key.calculator_id, key.profile, key.params),
        ).fetchone()
        if found is not None:
            eid, created = found
            for path, times_path in c.execute(
                "SELECT path, times_path FROM features WHERE entry_id = ?", (eid,)
            ):
                old.extend(p for p in (path, times_path) if p)
            c.execute("DELETE FROM features WHERE entry_id = ?", (eid,))
            if rows:
                c.execute(
                    "UPDATE entries SET fingerprint = ?, calculator_version = ?, "
                    "commit_id = ?, updated = ?, seq = ? WHERE id = ?",
                    (fingerprint, version, commit_id, now, seq, eid),
                )
            else:  # the calculator produced nothing: no entry (as after a full prune)
                c.execute("DELETE FROM entries WHERE id = ?", (eid,))
        elif rows:
            created = now
            cur = c.execute(
                "INSERT INTO entries (source_id, calculator_id, profile, params, fingerprint, "
                "calculator_version, commit_id, created, updated, seq) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*_key_tuple(key), fingerprint, version, commit_id, now, now, seq),
            )
            eid = cur.lastrowid
        c.executemany(
            "INSERT INTO features VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(eid, *r[:3], self._meta_id(c, r[3], meta_ids), *r[4:]) for r in rows],
        )
        c.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(p,) for p in old])
        if not rows:
            return None, old
        features = {r[0]: StoredFeature(r[0], r[1], r[2], r[3], *r[4:]) for r in rows}
        entry = StoredEntry(
            key, int(eid), fingerprint, version, created, now, MappingProxyType(features), commit_id
        )
        return entry, old

    def _delete_garbage(self, paths: Sequence[str]) -> None:
        """Delete files listed in the garbage table, then their rows (best effort: whatever is
        left is retried at the next open)."""
        if not paths:
            return
        done = [p for p in paths if _unlink(self.root / p) or not (self.root / p).exists()]
        with contextlib.suppress(StoreError), self._write("cannot clear garbage") as c:
            c.executemany("DELETE FROM garbage WHERE path = ?", [(p,) for p in done])

    # -- crash recovery -----------------------------------------------------------------------

    def sweep(self, full: bool = False) -> int:
        """Delete what crashed processes left: listed garbage, temporary files of dead
        writers and, when a registered writer died (or ``full``), every file in ``data/`` that
        no row references and whose writer is dead. Returns the number of files deleted."""
        alive: dict[tuple[int, str], bool] = {}
        try:
            with self._lock:
                conn = self._live()
                writers = conn.execute("SELECT token, pid, start FROM writers").fetchall()
                garbage = [r[0] for r in conn.execute("SELECT path FROM garbage")]
        except sqlite3.Error as exc:
            raise self._db_error("cannot read the index", exc) from None
        dead = [t for t, pid, start in writers if not process_alive(pid, start)]
        try:
            tmp = [
                e.path
                for e in os.scandir(self.root / TMP_DIR)
                if _file_owner_alive(e.name, alive) is False
            ]
            candidates: list[str] = []
            if dead or full:
                candidates = [
                    f"{DATA_DIR}/{e.name}"
                    for e in os.scandir(self.root / DATA_DIR)
                    if _file_owner_alive(e.name, alive) is False
                ]
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot list the store: {_os_cause(exc)}") from None
        removed = sum(_unlink(Path(p)) for p in tmp)
        if candidates or garbage:
            # read only now: a writer found dead above cannot commit anything after this read
            referenced = self._referenced()
            for rel in candidates:
                if rel not in referenced:
                    removed += _unlink(self.root / rel)
            stale = [p for p in garbage if p not in referenced]
            removed += sum(_unlink(self.root / p) for p in stale)
            if garbage:
                with self._write("cannot clear garbage") as c:
                    c.executemany("DELETE FROM garbage WHERE path = ?", [(p,) for p in garbage])
        if dead:
            with self._write("cannot clear dead writers") as c:
                c.executemany("DELETE FROM writers WHERE token = ?", [(t,) for t in dead])
        return removed

    def _referenced(self) -> set[str]:
        with self._read("cannot read the index") as c:
            out: set[str] = set()
            for table in ("features", "trash"):
                for path, times_path in c.execute(f"SELECT path, times_path FROM {table}"):
                    out.add(path)
                    if times_path:
                        out.add(times_path)
        return out

    # -- reading ------------------------------------------------------------------------------

    def entries(self) -> list[StoredEntry]:
        """Every entry with its features, in entry id order: one joined query. The result is
        kept: while the ``entries`` counter is unchanged it is returned again, and after a
        change only the entries whose ``seq`` is newer are read again."""
        with gc_paused():  # the fetched rows are 100,000 tuples too
            return self._entries()

    def _entries(self) -> list[StoredEntry]:
        ids: list[int] | None = None
        with self._read("cannot read the index") as c:
            version = c.execute("SELECT value FROM counters WHERE name = 'entries'").fetchone()[0]
            cached = self._entries_cache
            if cached is not None and cached[0] == version:
                return list(cached[1].values())
            if cached is None:
                rows = c.execute(f"{_ENTRY_SQL} ORDER BY e.id, f.feature").fetchall()
            else:
                rows = c.execute(
                    f"{_ENTRY_SQL} WHERE e.seq > ? ORDER BY e.id, f.feature", (cached[0],)
                ).fetchall()
                ids = [r[0] for r in c.execute("SELECT DISTINCT entry_id FROM features")]
            metas = self._metas_for(c, rows)
        fresh = {e.entry_id: e for e in _entries_from_rows(rows, metas)}
        if cached is not None and ids is not None:
            old = cached[1]
            fresh = {i: e for i in ids if (e := fresh.get(i) or old.get(i)) is not None}
        self._entries_cache = (version, fresh)
        return list(fresh.values())

    def entries_for_source(self, source_id: str) -> list[StoredEntry]:
        with self._read("cannot read the index") as c:
            rows = c.execute(
                f"{_ENTRY_SQL} WHERE e.source_id = ? ORDER BY e.id, f.feature", (source_id,)
            ).fetchall()
            metas = self._metas_for(c, rows)
        return _entries_from_rows(rows, metas)

    def get(self, key: EntryKey) -> StoredEntry | None:
        with self._read("cannot read the index") as c:
            rows = c.execute(
                f"{_ENTRY_SQL} WHERE {_KEY_WHERE} ORDER BY f.feature", _key_tuple(key)
            ).fetchall()
            metas = self._metas_for(c, rows)
        found = _entries_from_rows(rows, metas)
        return found[0] if found else None

    def _metas_for(
        self, c: sqlite3.Connection, rows: Sequence[Sequence[Any]]
    ) -> dict[int, OutputMeta]:
        """The meta cache, completed with the metas ``rows`` refer to (a few distinct ones
        however many rows: each is parsed once per store instance)."""
        known = self._metas
        missing = {row[13] for row in rows if row[13] not in known}
        if missing:
            newest = max(known, default=0)
            for meta_id, text in c.execute("SELECT id, json FROM metas WHERE id > ?", (newest,)):
                known[meta_id] = meta_from_json(text)
            for meta_id in missing - known.keys():
                row = c.execute("SELECT json FROM metas WHERE id = ?", (meta_id,)).fetchone()
                if row is None:
                    raise StoreError(f"{self.index_path}: corrupt index: no meta {meta_id}")
                known[meta_id] = meta_from_json(row[0])
        return known

    def _meta_id(
        self, c: sqlite3.Connection, meta: OutputMeta, known: dict[str, int] | None = None
    ) -> int:
        """The id of ``meta`` in the ``metas`` table, inserting it if new; ``known`` caches
        the ids looked up within the current transaction (by meta JSON)."""
        text = meta_to_json(meta)
        if known is not None and text in known:
            return known[text]
        c.execute("INSERT OR IGNORE INTO metas (json) VALUES (?)", (text,))
        meta_id = int(c.execute("SELECT id FROM metas WHERE json = ?", (text,)).fetchone()[0])
        if known is not None:
            known[text] = meta_id
        return meta_id

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    def load(
        self,
        entry: StoredEntry,
        feature: str,
        mmap: bool = True,
        frames: slice | None = None,
    ) -> LoadedFeature:
        """A feature's values, decoded to float32 ``(frames, channels, width)``, and its frame
        times. With ``mmap`` a float32 feature is a read-only memory map (no copy); ``frames``
        decodes only a range of frames (e.g. the visible part of a long spectrogram)."""
        stored = entry.features.get(feature)
        if stored is None:
            raise StoreError(f"entry {entry.key}: has no feature {feature!r}")
        meta = stored.meta
        dtype = _U16 if stored.encoding == "u16db" else _F32
        raw = self._load_array(
            entry, stored, stored.path, dtype, (stored.frames, stored.channels, stored.width), mmap
        )
        sel = frames if frames is not None else slice(None)
        part = raw[sel]
        if stored.encoding == "u16db":
            lo, hi = meta.value_range or (0.0, 0.0)
            data = _decode_u16(part, lo, hi)
        else:
            data = part
        if stored.times_path is not None:
            times = self._load_array(
                entry, stored, stored.times_path, np.dtype("<f8"), (stored.frames,), mmap
            )[sel]
        else:
            times = (
                meta.frame_start
                + (meta.frame_step or 0.0) * np.arange(stored.frames, dtype=np.float64)
            )[sel]
        return LoadedFeature(meta, data, np.asarray(times, dtype=np.float64))

    def _load_array(
        self,
        entry: StoredEntry,
        stored: StoredFeature,
        relative: str,
        dtype: np.dtype[Any],
        shape: tuple[int, ...],
        mmap: bool,
    ) -> np.ndarray:
        path = self.root / relative
        what = f"{entry.key} feature {stored.feature!r}"
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except FileNotFoundError:
            current = self.get(entry.key)
            if current is None or current.commit_id != entry.commit_id:
                why = "the entry was recomputed or pruned since it was listed (reload it)"
            elif stored.feature not in current.features:
                why = "the feature was pruned and purged since it was listed (reload it)"
            else:
                why = "missing"
            raise StoreError(f"{path}: array file of {what}: {why}") from None
        except (OSError, ValueError, EOFError) as exc:
            raise StoreError(
                f"{path}: corrupt array file of {what}: {_one_line(str(exc))[:200]}"
            ) from None
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape:
            got = f"{getattr(arr, 'dtype', '?')} {getattr(arr, 'shape', '?')}"
            raise StoreError(
                f"{path}: corrupt array file of {what}: holds {got}, the index says {dtype} {shape}"
            )
        return arr

    def total_bytes(self) -> int:
        """Bytes of the array files of every listed entry (trash excluded)."""
        return self._scalar("SELECT COALESCE(SUM(nbytes), 0) FROM features")

    def trash_bytes(self) -> int:
        return self._scalar("SELECT COALESCE(SUM(nbytes), 0) FROM trash")

    def _scalar(self, sql: str, args: Sequence[Any] = ()) -> int:
        try:
            with self._lock:
                return int(self._live().execute(sql, args).fetchone()[0])
        except sqlite3.Error as exc:
            raise self._db_error("cannot read the index", exc) from None

    def version(self) -> StoreVersion:
        """Change counters of entries and jobs; cheap enough to poll several times a second
        (``PRAGMA data_version`` tells whether anyone else committed since the last call)."""
        with self._lock:
            conn = self._live()
            try:
                data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                cached = self._version_cache
                if cached is not None and cached[0] == data_version and cached[1] == self._writes:
                    return cached[2]
                values = dict(conn.execute("SELECT name, value FROM counters").fetchall())
            except sqlite3.Error as exc:
                raise self._db_error("cannot read the index", exc) from None
            result = StoreVersion(int(values.get("entries", 0)), int(values.get("jobs", 0)))
            self._version_cache = (data_version, self._writes, result)
            return result

    # -- prune, restore, purge ----------------------------------------------------------------

    def prune(self, items: Sequence[tuple[EntryKey, str]]) -> str:
        """Move the given features to the trash (one transaction); an entry left without
        features is removed. Items that do not exist are ignored. Returns the prune id."""
        prune_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        now = time.time()
        with self._write("cannot prune", durable=True) as c:
            seq = self._bump(c, "entries")
            touched: set[int] = set()
            for key, feature in dict.fromkeys(items):
                row = c.execute(
                    f"SELECT {_ENTRY_COLS} FROM entries e JOIN features f ON f.entry_id = e.id "
                    f"WHERE {_KEY_WHERE} AND f.feature = ?",
                    (*_key_tuple(key), feature),
                ).fetchone()
                if row is None:
                    continue
                eid = row[0]
                c.execute(
                    "INSERT INTO trash (prune_id, pruned, entry_id, source_id, calculator_id, "
                    "profile, params, fingerprint, calculator_version, commit_id, created, "
                    "updated, feature, path, times_path, meta_id, encoding, frames, channels, width, "
                    "nbytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (prune_id, now, *row),
                )
                c.execute("DELETE FROM features WHERE entry_id = ? AND feature = ?", (eid, feature))
                touched.add(eid)
            for eid in touched:
                c.execute("UPDATE entries SET seq = ? WHERE id = ?", (seq, eid))
                c.execute(
                    "DELETE FROM entries WHERE id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM features WHERE entry_id = ?)",
                    (eid, eid),
                )
        return prune_id

    def restore(self, prune_id: str) -> list[tuple[EntryKey, str]]:
        """Undo a prune: its features come back with the same entry id, fingerprint, version
        and timestamps. A feature whose entry was recomputed after the prune stays in the
        trash (the newer data wins). Returns what was restored."""
        restored: list[tuple[EntryKey, str]] = []
        with self._write(f"cannot restore {prune_id}", durable=True) as c:
            seq = self._bump(c, "entries")
            rows = c.execute(
                "SELECT entry_id, source_id, calculator_id, profile, params, fingerprint, "
                "calculator_version, commit_id, created, updated, feature, path, times_path, meta_id, "
                "encoding, frames, channels, width, nbytes FROM trash WHERE prune_id = ? "
                "ORDER BY entry_id, feature",
                (prune_id,),
            ).fetchall()
            for row in rows:
                eid, key, commit_id = row[0], EntryKey(*row[1:5]), row[7]
                current = c.execute(
                    f"SELECT e.id, e.commit_id FROM entries e WHERE {_KEY_WHERE}", _key_tuple(key)
                ).fetchone()
                if current is None:
                    taken = c.execute("SELECT 1 FROM entries WHERE id = ?", (eid,)).fetchone()
                    if taken is not None:  # cannot happen with AUTOINCREMENT; be safe anyway
                        continue
                    c.execute(
                        "INSERT INTO entries (id, source_id, calculator_id, profile, params, "
                        "fingerprint, calculator_version, commit_id, created, updated) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?)",
                        row[:10],
                    )
                elif tuple(current) != (eid, commit_id):
                    continue  # recomputed since the prune
                if c.execute(
                    "SELECT 1 FROM features WHERE entry_id = ? AND feature = ?", (eid, row[10])
                ).fetchone():
                    continue
                c.execute("INSERT INTO features VALUES (?,?,?,?,?,?,?,?,?,?)", (eid, *row[10:]))
                c.execute("UPDATE entries SET seq = ? WHERE id = ?", (seq, eid))
                c.execute(
                    "DELETE FROM trash WHERE prune_id = ? AND entry_id = ? AND feature = ?",
                    (prune_id, eid, row[10]),
                )
                restored.append((key, row[10]))
        return restored

    def purge(self, prune_id: str | None = None, *, older_than: float | None = None) -> int:
        """Delete trashed features for real: of one prune, or all (``None``), optionally only
        those pruned more than ``older_than`` seconds ago. Returns the number purged."""
        where: list[str] = []
        args: list[object] = []
        if prune_id is not None:
            where.append("prune_id = ?")
            args.append(prune_id)
        if older_than is not None:
            where.append("pruned < ?")
            args.append(time.time() - older_than)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        if not self._scalar(f"SELECT EXISTS (SELECT 1 FROM trash{clause})", args):
            return 0
        with self._write("cannot purge the trash", durable=True) as c:
            rows = c.execute(f"SELECT path, times_path FROM trash{clause}", args).fetchall()
            c.execute(f"DELETE FROM trash{clause}", args)
            c.execute(
                "DELETE FROM metas WHERE id NOT IN (SELECT meta_id FROM features) "
                "AND id NOT IN (SELECT meta_id FROM trash)"
            )
            paths = [p for row in rows for p in row if p]
            c.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(p,) for p in paths])
        self._delete_garbage(paths)
        return len(rows)

    def trash(self, prune_id: str | None = None) -> list[TrashItem]:
        sql = "SELECT prune_id, pruned, source_id, calculator_id, profile, params, feature, nbytes FROM trash"
        args: tuple[str, ...] = ()
        if prune_id is not None:
            sql += " WHERE prune_id = ?"
            args = (prune_id,)
        with self._read("cannot read the trash") as c:
            rows = c.execute(sql + " ORDER BY pruned, prune_id, entry_id, feature", args).fetchall()
        return [TrashItem(r[0], r[1], EntryKey(*r[2:6]), r[6], r[7]) for r in rows]

    # -- digests (the DigestCache protocol of core.audio) --------------------------------------

    def get_digest(self, path: str, stamp: FileStamp) -> str | None:
        try:
            with self._lock:
                row = (
                    self._live()
                    .execute(
                        "SELECT digest, size, mtime_ns, inode, ctime_ns FROM digests WHERE path = ?",
                        (path,),
                    )
                    .fetchone()
                )
        except sqlite3.Error as exc:
            raise self._db_error("cannot read digests", exc) from None
        if row is None or tuple(row[1:]) != (
            stamp.size,
            stamp.mtime_ns,
            stamp.inode,
            stamp.ctime_ns,
        ):
            return None
        return str(row[0])

    def put_digest(self, path: str, stamp: FileStamp, digest: str) -> None:
        with self._write("cannot store a digest") as c:
            c.execute(
                "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)",
                (path, stamp.size, stamp.mtime_ns, stamp.inode, stamp.ctime_ns, digest),
            )

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(self, record: JobRecord) -> None:
        """Insert (or overwrite) a job record."""
        _check_state(record.state)
        with self._write("cannot record a job") as c:
            c.execute(
                f"INSERT OR REPLACE INTO jobs ({_JOB_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.id,
                    record.source_id,
                    json.dumps(list(record.calculator_ids)),
                    record.profile,
                    record.params,
                    json.dumps(list(record.features)),
                    record.state,
                    record.progress,
                    record.label,
                    record.message,
                    record.origin,
                    record.owner_pid,
                    record.owner_start,
                    record.created,
                    record.updated,
                ),
            )
            if record.state in FINISHED_JOB_STATES:
                self._trim_jobs(c, record.source_id, record.profile, record.params)
            self._bump(c, "jobs")

    def update_job(
        self,
        job_id: str,
        *,
        state: str | _Unset = _UNSET,
        progress: float | _Unset | None = _UNSET,
        label: str | _Unset = _UNSET,
        message: str | _Unset | None = _UNSET,
    ) -> bool:
        """Change some fields of a job (and its ``updated`` time); False if there is no such
        job. One small transaction: fine at 10 calls per second."""
        sets: list[str] = ["updated = ?"]
        args: list[object] = [time.time()]
        fields: list[tuple[str, object]] = [
            ("state", state),
            ("progress", progress),
            ("label", label),
            ("message", message),
        ]
        for name, value in fields:
            if not isinstance(value, _Unset):
                sets.append(f"{name} = ?")
                args.append(value)
        if isinstance(state, str):
            _check_state(state)
        with self._write("cannot update a job") as c:
            cur = c.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*args, job_id))
            if cur.rowcount == 0:
                return False
            if isinstance(state, str) and state in FINISHED_JOB_STATES:
                row = c.execute(
                    "SELECT source_id, profile, params FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()
                self._trim_jobs(c, *row)
            self._bump(c, "jobs")
        return True

    def _trim_jobs(self, c: sqlite3.Connection, source_id: str, profile: str, params: str) -> None:
        """Keep the FINISHED_JOBS_PER_KEY most recent finished jobs of each calculator key."""
        rows = c.execute(
            "SELECT id, calculator_ids FROM jobs WHERE source_id = ? AND profile = ? AND "
            "params = ? AND state IN ('done', 'failed', 'cancelled') ORDER BY updated DESC, id",
            (source_id, profile, params),
        ).fetchall()
        seen: dict[str, int] = {}
        drop: list[str] = []
        for job_id, calcs in rows:
            keep = False
            for calc in json.loads(calcs) or [""]:
                seen[calc] = seen.get(calc, 0) + 1
                keep = keep or seen[calc] <= FINISHED_JOBS_PER_KEY
            if not keep:
                drop.append(job_id)
        c.executemany("DELETE FROM jobs WHERE id = ?", [(j,) for j in drop])

    def jobs(self, active_only: bool = False) -> list[JobRecord]:
        """Job records of every process, oldest first."""
        sql = f"SELECT {_JOB_COLS} FROM jobs"
        if active_only:
            sql += " WHERE state IN ('queued', 'running')"
        with self._read("cannot read jobs") as c:
            rows = c.execute(sql + " ORDER BY created, id").fetchall()
        return [_job_from_row(r) for r in rows]

    def job(self, job_id: str) -> JobRecord | None:
        with self._read("cannot read jobs") as c:
            row = c.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_from_row(row) if row is not None else None

    def latest_jobs_by_key(self) -> dict[EntryKey, JobRecord]:
        """Per (source, calculator, profile, params): the most recently finished job."""
        with self._read("cannot read jobs") as c:
            rows = c.execute(
                f"SELECT {_JOB_COLS} FROM jobs WHERE state IN ('done', 'failed', 'cancelled') "
                "ORDER BY updated DESC, id"
            ).fetchall()
        out: dict[EntryKey, JobRecord] = {}
        for row in rows:
            job = _job_from_row(row)
            for key in job.entry_keys():
                out.setdefault(key, job)
        return out

    def request_cancel(self, job_id: str) -> bool:
        """Ask whichever process runs ``job_id`` to cancel it (it checks at its next progress
        report, so within a block); False if there is no such active job."""
        with self._write("cannot request a cancellation") as c:
            row = c.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] not in ACTIVE_JOB_STATES:
                return False
            c.execute("INSERT OR REPLACE INTO cancel_requests VALUES (?, ?)", (job_id, time.time()))
            self._bump(c, "jobs")
        return True

    def cancel_requested(self, job_id: str) -> bool:
        with self._read("cannot read cancellation requests") as c:
            row = c.execute("SELECT 1 FROM cancel_requests WHERE job_id = ?", (job_id,)).fetchone()
        return row is not None

    def clear_cancel_request(self, job_id: str) -> None:
        with self._write("cannot clear a cancellation request") as c:
            c.execute("DELETE FROM cancel_requests WHERE job_id = ?", (job_id,))

    def reap_dead_jobs(self) -> list[str]:
        """Fail every queued or running job whose owner process is gone (pid reuse detected
        by the start token). Returns the ids of the jobs reaped."""
        with self._read("cannot read jobs") as c:
            rows = c.execute(
                "SELECT id, owner_pid, owner_start FROM jobs WHERE state IN ('queued', 'running')"
            ).fetchall()
        dead = [(job_id, pid) for job_id, pid, start in rows if not process_alive(pid, start)]
        if not dead:
            return []
        now = time.time()
        with self._write("cannot update jobs") as c:
            c.executemany(
                "UPDATE jobs SET state = 'failed', progress = NULL, label = 'failed', "
                "message = ?, updated = ? WHERE id = ? AND state IN ('queued', 'running')",
                [(f"owner process {pid} died", now, job_id) for job_id, pid in dead],
            )
            self._bump(c, "jobs")
        return [job_id for job_id, _ in dead]

    def state_token(self) -> tuple[tuple[Any, ...], ...]:
        """A value that changes whenever an entry or a job record changes, for caches of what
        is derived from them (``check``'s result): the change counters, which every such write
        bumps in its own transaction, plus the last changed entry and the newest job record,
        whose random ids tell this index from another whose counters happen to be equal."""
        with self._read("cannot read the index") as c:
            counters = c.execute("SELECT name, value FROM counters ORDER BY name").fetchall()
            entry = c.execute(
                "SELECT id, commit_id, seq FROM entries ORDER BY seq DESC, id DESC LIMIT 1"
            ).fetchone()
            job = c.execute("SELECT id, updated FROM jobs ORDER BY rowid DESC LIMIT 1").fetchone()
        return (tuple(map(tuple, counters)), tuple(entry or ()), tuple(job or ()))


def _key_tuple(key: EntryKey) -> tuple[str, str, str, str]:
    return (key.source_id, key.calculator_id, key.profile, key.params)


def _check_state(state: str) -> None:
    if state not in JOB_STATES:
        raise ValueError(f"job state must be one of {', '.join(JOB_STATES)}, not {state!r}")


if TYPE_CHECKING:  # the protocols they implement, checked by mypy

    def _is_sink(writer: PassWriter) -> FeatureSink:
        return writer

    def _is_digest_cache(store: FeatureStore) -> DigestCache:
        return store
