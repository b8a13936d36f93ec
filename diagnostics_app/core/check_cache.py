"""A cached ``check --json`` result, kept in the feature store's folder, served while nothing
the result depends on has changed.

``check --json`` on an unchanged project derives the same 100,000 rows again and again (CI jobs
and scripts poll it); deriving them costs ten times what reading the index costs. So the CLI
keeps the text it printed, and the exit code, in ``<store folder>/check-result`` together with
everything the text is a function of, and prints that text again as long as each of these is
unchanged:

- **the project file**: the path as given (the output repeats it), where it really is
  (``realpath``: the sources and the store are found relative to it), the home folder (``~``
  in paths), its stat stamp and the SHA-256 of its bytes;
- **the code**: the Python version, this package's version, folder and the stat stamp of each
  of its modules (the GUI's excepted), and for each calculator in the registry (plugins
  included) its id, version, declared features, parameters and tempo use, and the stat stamp
  of the file of the module that defines it (of every module of its package, for a plugin
  that is part of one);
- **the store**: the index file's identity (device, inode) and :meth:`FeatureStore.state_token`:
  the change counters of entries and of job records (every write of either bumps its counter in
  the same transaction), plus the newest entry and job (random ids) so that another index
  whose counters happen to be equal still differs. The store is opened as the full check
  opens it, which also fails the jobs of dead processes first (a change, so a miss); and the
  stat stamp of every file in its data folder (:func:`data_key`), so that a data file deleted,
  truncated or replaced behind the store's back is a miss and the full check reports it;
- **the audio files**: for each source, its path, its stat stamp and whether this user may
  read it.

A *stat stamp* is :class:`~diagnostics_app.core.stamp.FileStamp`: size, mtime, inode and
ctime (which no program can set back). The store's digest cache takes a file's bytes as
unchanged by the same criterion. The check depends on nothing else: no clock (a failed job
counts by the times stored with it), no other environment variable (the plugin path acts
through the registry), no other file.

A result is saved only when it can be trusted (:func:`snapshot`, :func:`save_allowed`):

- the inputs are snapshot before the rows are derived and again after the text is printed,
  and the result is saved only if both snapshots are equal (nothing changed while it was read);
- every source's audio was read (a read error may be passing: a network share);
- no stamped file (project, audio, code) changed less than :data:`RACY_SECONDS` before this
  process started (:data:`STARTED_NS`: when the CLI imported this module, before the modules
  of the check): a later
  change then gets a later ctime, so a different stamp, however coarse the file system's clock
  (the "racy" rule of git's index). Code is read at import, before the first snapshot: this
  rule is what covers it;
- every calculator's module is a file (in a frozen bundle it is not: there the cache is off).

The file: one line of JSON (the key, the exit code, the length and SHA-256 of the text), then
the text, written to a temporary file and renamed over the old one. A file that does not parse,
or whose text does not match its length and digest, is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diagnostics_app.core.stamp import FileStamp  # stdlib only: cheap on the fast path

if TYPE_CHECKING:
    from diagnostics_app.core.calculators.registry import Registry
    from diagnostics_app.core.store import FeatureStore

FORMAT = 1
CACHE_NAME = "check-result"
RACY_SECONDS = 2.0
# when this module was imported: the CLI imports it first, before the modules of the check
STARTED_NS = time.time_ns()

_PACKAGE = Path(__file__).resolve().parents[1]  # diagnostics_app/
_CACHE_DIR = re.compile(rb'"cache_dir"\s*:\s*("(?:[^"\\]|\\.)*")')
_DEFAULT_CACHE_DIR = ".featurecache"  # core.project.DEFAULT_CACHE_DIR (not imported: fast path)

_KEY_PARTS = {"project", "store_folder", "code", "store", "audio"}
Json = Any  # a value made of lists, strings, numbers, booleans and None


def _stamp(path: str | os.PathLike[str] | int) -> list[int] | None:
    """The :class:`FileStamp` of ``path`` as a key (None if it cannot be stat'ed)."""
    stamp = FileStamp.peek(path)
    return None if stamp is None else stamp.to_json()


@dataclass(frozen=True)
class ProjectFile:
    """The project file as a check reads it, and what its paths resolve against."""

    key: list[Json]  # [path as given, real path, home folder, stamp, sha256]
    data: bytes

    @classmethod
    def read(cls, arg: str) -> ProjectFile | None:
        """None if it cannot be read (the full check then reports why)."""
        from diagnostics_app.core import files  # here: imported after STARTED_NS, as the rest

        try:  # a FIFO or a device is refused before it is opened (it would block or not end)
            st, data = files.read_regular_stat(arg, files.MAX_PROJECT_BYTES)
        except (OSError, ValueError, files.FileRefused):
            return None
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        home = os.path.expanduser("~")
        key = [arg, os.path.realpath(arg), home, stamp, hashlib.sha256(data).hexdigest()]
        return cls(key, data)

    def store_folders(self) -> list[Path]:
        """Where the project's store may be: the folders its ``cache_dir`` may name, found
        without parsing the file. Only a guess: the record found there must name this file."""
        names = [_DEFAULT_CACHE_DIR]
        for m in _CACHE_DIR.finditer(self.data):
            with contextlib.suppress(ValueError):
                value = json.loads(m.group(1))
                if isinstance(value, str):
                    names.append(value)
        folder = Path(self.key[1]).parent
        out: list[Path] = []
        for name in reversed(names):  # the last "cache_dir" is the one JSON keeps
            try:
                p = Path(name).expanduser()
            except RuntimeError:  # "~nosuchuser/...": the full check reports it as a row
                continue
            p = p if p.is_absolute() else folder / p
            if p not in out:
                out.append(p)
        return out


def code_key(registry: Registry) -> tuple[list[Json], int] | None:
    """The code part of the key, and the newest ctime among its files; None when some code is
    not a file whose stamp can be taken (a frozen bundle, a calculator defined in memory)."""
    from diagnostics_app import __version__

    if getattr(sys, "frozen", False):
        return None
    files = _module_stamps(_PACKAGE, skip="qt")  # the GUI is not part of a check
    calcs: list[Json] = []
    for calc in registry:
        module = type(calc).__module__
        source = getattr(sys.modules.get(module), "__file__", None)
        if not isinstance(source, str) or (stamp := _stamp(source)) is None:
            return None
        source = os.path.realpath(source)
        declared = [calc.id, calc.version, type(calc).__qualname__, list(calc.feature_names())]
        calcs.append([*declared, list(calc.params), calc.uses_tempo, source, stamp])
        top = sys.modules.get(module.split(".")[0])
        if "." in module and top is not None and not source.startswith(str(_PACKAGE)):
            # a plugin in a package: its other modules may hold what its check calls
            for folder in getattr(top, "__path__", ()):
                files.extend(_module_stamps(Path(folder)))
    if any(f[1] is None for f in files):
        return None
    newest = max((f[1][3] for f in files), default=0)
    newest = max([newest, *(c[-1][3] for c in calcs)])
    return [sys.version, __version__, str(_PACKAGE), files, calcs], newest


def _module_stamps(folder: Path, skip: str = "") -> list[Json]:
    """[path, stamp] of each ``.py`` file under ``folder``, but those under ``folder/skip``."""
    out: list[Json] = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder)
        if skip and rel.parts[0] == skip:
            continue
        out.append([str(path), _stamp(path)])
    return out


def data_key(folder: Path) -> str:
    """The stat stamp of every file in the store's data folder, as one digest: a data file
    deleted, truncated or replaced behind the store's back (which moves no counter) changes
    it, so a cached ``ok`` is never served for data that is not there. One ``stat`` per file,
    the same cost as the store's own verification of an unchanged folder."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with os.scandir(folder) as it:
            names = sorted((e.name, e) for e in it)
        for name, entry in names:
            st = entry.stat(follow_symlinks=False)
            digest.update(
                f"{name}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode(
                    "utf-8", "surrogateescape"
                )
            )
    except OSError as exc:
        digest.update(f"unreadable: {exc}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def store_key(store: FeatureStore) -> list[Json]:
    try:
        st = os.stat(store.index_path)
        identity: list[int] | None = [st.st_dev, st.st_ino]
    except OSError:
        identity = None
    # through JSON: as saved (lists, not tuples)
    from diagnostics_app.core.store import DATA_DIR

    token = json.loads(json.dumps(store.state_token()))
    return [identity, token, data_key(store.root / DATA_DIR)]


def audio_key(paths: Iterable[str]) -> list[Json]:
    return [[p, _stamp(p), os.access(p, os.R_OK)] for p in paths]


@dataclass(frozen=True)
class Inputs:
    """Everything a ``check --json`` text is a function of (see the module doc)."""

    project: list[Json]
    store_folder: str
    code: list[Json]
    store: list[Json]
    audio: list[Json]

    def to_json(self) -> dict[str, Json]:
        return {
            "project": self.project,
            "store_folder": self.store_folder,
            "code": self.code,
            "store": self.store,
            "audio": self.audio,
        }


@dataclass(frozen=True)
class Record:
    """A saved result whose project part matches the project file read now."""

    key: dict[str, Json]
    exit_code: int
    body: memoryview  # the text, UTF-8

    @property
    def store_folder(self) -> str:
        return str(self.key["store_folder"])

    def matches(self, code: list[Json] | None, store: FeatureStore) -> bool:
        """Whether the rest of the key still holds: the code, the store, the audio files."""
        key = self.key
        if code is None or code != key["code"] or store_key(store) != key["store"]:
            return False
        return audio_key(str(a[0]) for a in key["audio"]) == key["audio"]


def find(project: ProjectFile) -> Record | None:
    """The saved result for this project file, if any (the rest of its key is unchecked)."""
    for folder in project.store_folders():
        record = _read(folder / CACHE_NAME, project)
        if record is not None:
            return record
    return None


_MAX_RECORD_BYTES = 1 << 31  # a saved result is the check's output: ~300 bytes a row


def _read(path: Path, project: ProjectFile) -> Record | None:
    from diagnostics_app.core import files  # here: imported after STARTED_NS, as the rest

    try:  # the store folder is shared: what is planted there must not block or not end
        blob = files.read_regular(path, _MAX_RECORD_BYTES)
    except (OSError, files.FileRefused):
        return None
    end = blob.find(b"\n")
    body = memoryview(blob)[end + 1 :]  # 30 MB at 100,000 rows: not copied
    try:
        doc = json.loads(blob[:end])
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or not isinstance(doc.get("key"), dict)
            or set(doc["key"]) != _KEY_PARTS
            or doc["key"]["project"] != project.key
            or not isinstance(doc["key"]["store_folder"], str)
            or not all(
                isinstance(a, list) and a and isinstance(a[0], str) for a in doc["key"]["audio"]
            )
            or not isinstance(doc.get("exit"), int)
            or doc.get("length") != len(body)
            or doc.get("sha256") != hashlib.sha256(body).hexdigest()
        ):
            return None
        return Record(doc["key"], doc["exit"], body)
    except (ValueError, TypeError):  # ValueError includes JSON and UTF-8 decoding errors
        return None


def snapshot(
    project: ProjectFile,
    store_folder: str,
    registry: Registry,
    store: FeatureStore,
    audio_paths: Sequence[str],
) -> tuple[Inputs, int] | None:
    """The inputs as they are now, and the newest ctime among the files stamped (None: not
    cacheable)."""
    code = code_key(registry)
    if code is None:
        return None
    audio = audio_key(audio_paths)
    ctimes = [code[1], project.key[3][3]] + [a[1][3] for a in audio if a[1] is not None]
    inputs = Inputs(project.key, store_folder, code[0], store_key(store), audio)
    return inputs, max(ctimes)


def save_allowed(before: tuple[Inputs, int] | None, after: tuple[Inputs, int] | None) -> bool:
    """Nothing changed between the two snapshots, and no file is racy: each stamped file last
    changed at least RACY_SECONDS before this process started reading. A later change then
    has a later ctime, whatever the granularity of file times: its stamp differs."""
    if before is None or after is None or before != after:
        return False
    return before[1] < STARTED_NS - int(RACY_SECONDS * 1e9)


def save(inputs: Inputs, exit_code: int, text: str) -> None:
    """Write the result (quietly nothing if the store folder is not writable)."""
    # a path that is not UTF-8 (lone surrogates in ``text``) as the CLI's stdout writes it,
    # \udcXX: the bytes served next time are the bytes printed this time
    body = text.encode("utf-8", "backslashreplace")
    head = {
        "format": FORMAT,
        "key": inputs.to_json(),
        "exit": exit_code,
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    folder = Path(inputs.store_folder)
    tmp: Path | None = None
    try:
        tmp = folder / f".{CACHE_NAME}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        # mode 0o666 less the umask, as any file the user creates (mkstemp's would be 0o600)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(
                json.dumps(head, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"
            )
            f.write(body)
        os.replace(tmp, folder / CACHE_NAME)
        tmp = None
    except OSError:
        pass  # a read-only store folder, a full disk: the next check derives the rows again
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
