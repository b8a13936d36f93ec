"""Projects from folders: find the audio under some paths, name it, and add it to a project.

Qt-free, so the CLI's ``add``/``remove`` and the GUI's drop share every rule here:

- **What is audio.** A regular file whose extension is an audio one, or whose first bytes are
  an audio format's signature (so ``take.bin`` holding a WAV is taken), and which the app's
  audio layer (:func:`core.audio.read_info`) then opens: a ``.wav`` that is no audio, or a
  truncated one, is skipped with the audio layer's own reason. The signature test keeps
  libsndfile's lenient MPEG probe away from pictures and documents.
- **What is skipped, and why.** Every file or folder not taken gets one :class:`Skip` with a
  phrase; ``problem`` marks what is wrong (broken audio, an unreadable folder, a symbolic-link
  loop) as against what is merely not audio (a text file, a FIFO). Names starting with ``.``
  are passed over and only counted (``.featurecache``, ``.DS_Store``, editors' files).
- **Walking.** Entries in name order, a folder's files before its subfolders, so the result is
  the same on every run. Symbolic links are followed; a folder reached again (a link back to
  an ancestor, or a second link to the same folder) is reported, not walked twice, and a file
  reached twice (links) is added once.
- **Ids.** From the path relative to the given folder, without the extension: ``drums/kick_01
  .wav`` -> ``drums-kick_01`` (a file given by itself: its stem). Characters other than
  letters, digits, ``-``, ``_`` and ``.`` become ``_``. A clash with an id already taken (by
  the project or earlier in the same add) tries ``ID-EXT`` (``kick-flac``), then ``ID-2``,
  ``ID-3``...: files are named in walk order, so the same tree gives the same ids every time.
- **Paths.** Relative to the project file's folder when the file is inside it, absolute
  otherwise (a project copied elsewhere still finds a library outside it).
- **Already present.** A file that is already a source (the same file: links and different
  spellings of one path included) is reported with that source's id and not added again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from diagnostics_app.core import edits, files
from diagnostics_app.core._gc import FREEZE_SOURCES, freeze_long_lived, gc_paused
from diagnostics_app.core.audio import read_info
from diagnostics_app.core.errors import AudioError, DiagnosticsError
from diagnostics_app.core.errors import Cancelled as Cancelled  # a scan stopped by its caller
from diagnostics_app.core.project import Project, Request, Source, Track

AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aif",
        ".aiff",
        ".aifc",
        ".w64",
        ".caf",
        ".au",
        ".snd",
    }
)

# what a track made for an added file asks for when nobody said (a GUI drop, or ``add
# --track-per-source`` without ``--request``), until the user edits its requests
DEFAULT_TRACK_REQUESTS: tuple[Request, ...] = (
    Request("peaks"),
    Request("rms"),
    Request("spectrogram"),
)

# First bytes of the formats libsndfile reads (WAV/RF64/W64, FLAC, Ogg, AIFF, AU, CAF, MP3
# with an ID3 tag, NIST, VOC); MPEG frames without a tag are tested by their sync word.
_SIGNATURES = (
    b"RIFF",
    b"RIFX",
    b"RF64",
    b"riff",
    b"fLaC",
    b"OggS",
    b"FORM",
    b".snd",
    b"caff",
    b"ID3",
    b"NIST_1A",
    b"Creative Voice File",
)
_HEAD_BYTES = 32


@dataclass(frozen=True)
class Found:
    """An audio file to add: where it is, and its path relative to the folder it was found
    under (its own name for a file given by itself), which the id is made from."""

    path: str  # absolute, not resolved: the names the user sees
    relative: str  # posix
    identity: tuple[int, int]  # (device, inode)


@dataclass(frozen=True)
class Skip:
    path: str  # printable, spelled as the path it was found under was given
    reason: str
    problem: bool  # something is wrong, as against: simply not audio

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Scan:
    found: tuple[Found, ...]
    skipped: tuple[Skip, ...]
    hidden: int  # names starting with "." passed over


@dataclass(frozen=True)
class Present:
    path: str
    source_id: str


@dataclass(frozen=True)
class Addition:
    """What adding a scan to a project does: new sources and tracks, and what it leaves out."""

    sources: tuple[Source, ...]
    tracks: tuple[Track, ...]
    present: tuple[Present, ...]
    skipped: tuple[Skip, ...]
    hidden: int

    @property
    def problems(self) -> bool:
        return any(s.problem for s in self.skipped)


def missing_roots(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """One-line messages for given paths that do not exist (checked before anything is
    written: a typo must not half-add a library)."""
    out = []
    for p in paths:
        text = files.printable(p)
        if "\x00" in os.fspath(p):
            out.append(f"{text}: the path contains a null byte")
        elif not os.path.lexists(p):
            out.append(f"{text}: no such file or folder")
    return out


def scan(
    paths: Sequence[str | os.PathLike[str]],
    *,
    recursive: bool,
    ignore: Collection[str | os.PathLike[str]] = (),
    cancelled: Callable[[], bool] | None = None,
) -> Scan:
    """The audio files under ``paths`` (files or folders), and why anything else was left.
    ``cancelled``: asked before each file and folder; True raises :class:`Cancelled`."""
    walker = _Walker(recursive, [os.fspath(p) for p in ignore], cancelled)
    for p in paths:
        walker.root(os.path.normpath(os.fspath(p)))
    return Scan(tuple(walker.found), tuple(walker.skipped), walker.hidden)


class _Walker:
    def __init__(
        self, recursive: bool, ignore: list[str], cancelled: Callable[[], bool] | None = None
    ) -> None:
        self.recursive = recursive
        self._cancelled = cancelled
        self.ignore = {os.path.abspath(p) for p in ignore}
        # the same things reached another way (a link to the cache folder): by identity in a
        # walk, and by real path for what is given (a file inside the cache folder)
        self._ignore_real = [os.path.realpath(p) for p in ignore]
        self._ignore_ids: set[tuple[int, int]] = set()
        for p in ignore:
            with contextlib.suppress(OSError):
                st = os.stat(p)
                self._ignore_ids.add((st.st_dev, st.st_ino))
        self.found: list[Found] = []
        self.skipped: list[Skip] = []
        self.hidden = 0
        self._files: dict[tuple[int, int], str] = {}
        self._folders: dict[tuple[int, int], str] = {}

    def skip(self, path: str, reason: str, problem: bool) -> None:
        self.skipped.append(Skip(files.printable(path), reason, problem))

    def _check(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise Cancelled("adding audio")

    def root(self, path: str) -> None:
        self._check()
        real = os.path.realpath(path)
        if any(real == i or real.startswith(i.rstrip(os.sep) + os.sep) for i in self._ignore_real):
            self.skip(path, "the project file or its feature cache folder (not audio)", False)
            return
        st = self._stat(path)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            self._walk(path, st)
        else:
            self._file(path, os.path.basename(path), st)

    def _stat(self, path: str) -> os.stat_result | None:
        """The stat of what ``path`` names (links followed), or None with the reason skipped."""
        try:
            return os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.skip(path, "symbolic link loop (the link leads back to itself)", True)
            elif isinstance(exc, FileNotFoundError) and os.path.islink(path):
                self.skip(path, "broken symbolic link (its target does not exist)", True)
            elif isinstance(exc, FileNotFoundError):
                self.skip(path, "no such file or folder", True)
            else:
                self.skip(path, f"cannot access ({exc.strerror or exc})", True)
            return None

    def _walk(self, top: str, top_stat: os.stat_result) -> None:
        # a stack of (folder, its stat, the identities of the folders above it): iterative,
        # as a library may be nested deeper than Python's recursion limit
        stack: list[tuple[str, os.stat_result, frozenset[tuple[int, int]]]] = [
            (top, top_stat, frozenset())
        ]
        while stack:
            self._check()
            folder, st, above = stack.pop()
            ident = (st.st_dev, st.st_ino)
            if ident in self._folders:
                first = files.printable(self._folders[ident])
                if ident in above:
                    self.skip(folder, f"symbolic link loop (leads back to {first})", True)
                elif folder == self._folders[ident]:
                    self.skip(folder, "given more than once (scanned once)", False)
                else:
                    self.skip(folder, f"already scanned as {first} (a link to it)", False)
                continue
            self._folders[ident] = folder
            try:
                with os.scandir(folder) as it:
                    names = sorted(entry.name for entry in it)
            except OSError as exc:
                self.skip(folder, f"cannot read folder ({exc.strerror or exc})", True)
                continue
            inner = above | {ident}
            subfolders: list[tuple[str, os.stat_result]] = []
            for name in names:
                path = os.path.join(folder, name)
                if name.startswith("."):
                    self.hidden += 1
                    continue
                if os.path.abspath(path) in self.ignore:
                    continue
                entry_st = self._stat(path)
                if entry_st is None or (entry_st.st_dev, entry_st.st_ino) in self._ignore_ids:
                    continue
                if stat.S_ISDIR(entry_st.st_mode):
                    if self.recursive:
                        subfolders.append((path, entry_st))
                    else:
                        self.skip(path, "a folder (add --recursive to look inside)", False)
                    continue
                self._file(path, os.path.relpath(path, top), entry_st)
            stack.extend((p, s, inner) for p, s in reversed(subfolders))

    def _file(self, path: str, relative: str, st: os.stat_result) -> None:
        self._check()
        reason = files.non_regular_reason(st.st_mode)
        if reason is not None:
            self.skip(path, f"not audio: {reason}", False)
            return
        ident = (st.st_dev, st.st_ino)
        if ident in self._files:
            self.skip(path, f"the same file as {files.printable(self._files[ident])}", False)
            return
        relative = PurePosixPath(*Path(relative).parts).as_posix()
        if not _is_text(path):
            # the loader refuses such names (a project file is UTF-8 text): say so here
            self.skip(path, "the file name is not valid UTF-8 (cannot go in a project)", True)
            return
        if Path(path).suffix.lower() not in AUDIO_SUFFIXES:
            try:
                head = _head(path)
            except OSError as exc:
                self.skip(path, f"cannot read ({exc.strerror or exc})", True)
                return
            if not _looks_like_audio(head):
                self.skip(path, "not an audio file", False)
                return
        try:
            read_info(path)
        except AudioError as exc:
            self.skip(path, exc.cause, True)
            return
        self._files[ident] = path
        self.found.append(Found(os.path.abspath(path), relative, ident))


def _is_text(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _head(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        return os.read(fd, _HEAD_BYTES)
    finally:
        os.close(fd)


def _looks_like_audio(head: bytes) -> bool:
    if head.startswith(_SIGNATURES):
        return True
    # an MPEG audio frame: 11 sync bits, then a version and a layer that are not "reserved"
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0


# --- naming ----------------------------------------------------------------------------------


def id_base(relative: str) -> str:
    """The readable id of a relative path, before clashes: ``drums/kick_01.wav`` ->
    ``drums-kick_01``."""
    pure = PurePosixPath(relative)
    parts = [*pure.parent.parts, pure.stem] if pure.parent.parts else [pure.stem]
    cleaned = ["".join(c if c.isalnum() or c in "-_." else "_" for c in p) for p in parts]
    return "-".join(p for p in cleaned if p).strip("-") or "source"


def unique(base: str, suffix: str, taken: Collection[str]) -> str:
    """``base``, else ``base-EXT``, else ``base-2``, ``base-3``...: the first not taken."""
    if base not in taken:
        return base
    ext = suffix.lstrip(".").lower()
    if ext and f"{base}-{ext}" not in taken:
        return f"{base}-{ext}"
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def project_path(project: Project, path: str) -> str:
    """How a source's path is written: relative to the project's folder when the file is
    inside it (either spelling of the folder, as given or with links resolved), else
    absolute."""
    return _Spelling(project).of(path)


class _Spelling:
    """:func:`project_path` for many files: the folder's spellings worked out once, and each
    file folder's resolved spelling once (``realpath`` costs a ``lstat`` per path component:
    per file, it was most of the time of a 20,000-file add)."""

    def __init__(self, project: Project) -> None:
        folder = project.folder
        self._bases = tuple(dict.fromkeys((os.path.abspath(folder), os.path.realpath(folder))))
        self._resolved: dict[str, str] = {}

    def _inside(self, path: str) -> str | None:
        for base in self._bases:
            prefix = base if base.endswith(os.sep) else base + os.sep
            if path.startswith(prefix):
                rel = path[len(prefix) :]
                return rel.replace(os.sep, "/") if os.sep != "/" else rel
        return None

    def of(self, path: str) -> str:
        rel = self._inside(path)
        if rel is not None:
            return rel
        parent, name = os.path.split(path)
        real = self._resolved.get(parent)
        if real is None:
            real = self._resolved[parent] = os.path.realpath(parent)
        rel = self._inside(os.path.join(real, name))
        return rel if rel is not None else path


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def plan_addition(project: Project, found: Scan, requests: tuple[Request, ...] | None) -> Addition:
    """New sources (and, when ``requests`` is not None, one track per new source asking for
    them) for the files of a scan that the project does not hold yet."""
    by_identity: dict[tuple[int, int], str] = {}
    by_path: dict[str, str] = {}
    for s in project.sources:
        audio = project.audio_path(s)
        by_path.setdefault(os.path.abspath(audio), s.id)
        ident = _identity(audio)
        if ident is not None:
            by_identity.setdefault(ident, s.id)
    source_ids = {s.id for s in project.sources}
    track_ids = {t.id for t in project.tracks}
    sources: list[Source] = []
    tracks: list[Track] = []
    present: list[Present] = []
    spelling = _Spelling(project)
    for f in found.found:
        known = by_identity.get(f.identity) or by_path.get(f.path)
        if known is not None:
            present.append(Present(files.printable(spelling.of(f.path)), known))
            continue
        suffix = PurePosixPath(f.relative).suffix
        sid = unique(id_base(f.relative), suffix, source_ids)
        source_ids.add(sid)
        sources.append(Source(sid, spelling.of(f.path)))
        if requests is not None:
            tid = unique(sid, suffix, track_ids)
            track_ids.add(tid)
            name = str(PurePosixPath(f.relative).with_suffix(""))
            tracks.append(Track(tid, name, sid, requests))
    return Addition(tuple(sources), tuple(tracks), tuple(present), found.skipped, found.hidden)


def missing_sources(project: Project) -> list[str]:
    """Ids of the sources whose audio file no longer exists (a broken link counts)."""
    out = []
    for s in project.sources:
        try:
            exists = project.audio_path(s).exists()
        except (OSError, ValueError):
            exists = False
        if not exists:
            out.append(s.id)
    return out


@dataclass(frozen=True)
class PlannedAddition:
    """Audio files and folders to add to ``project`` (the GUI's drop, Add Audio…), all the
    work done: scanned, planned, and the edited project made (``edited``: None when nothing
    is new, or when the edit refuses: then applying it again says why). Any thread may make
    one; applying it is swapping ``project`` for ``edited`` when ``project`` is still the one
    open (a drop of 20,000 files: ~5 s of scanning and planning, off the GUI thread)."""

    project: Project
    addition: Addition
    edited: Project | None


def plan_audio(
    project: Project,
    paths: Sequence[str | os.PathLike[str]],
    cancelled: Callable[[], bool] | None = None,
) -> PlannedAddition:
    """The audio among ``paths`` and under the folders among them (recursively), each a
    source with a track of :data:`DEFAULT_TRACK_REQUESTS` (as ``add --track-per-source -r``);
    the project file and its cache folder are never taken."""
    ignore = [project.cache_path(), *([project.path] if project.path else [])]
    with gc_paused():
        found = scan(paths, recursive=True, ignore=ignore, cancelled=cancelled)
        addition = plan_addition(project, found, DEFAULT_TRACK_REQUESTS)
        edited = None
        if addition.sources:
            with contextlib.suppress(DiagnosticsError):
                edited = edits.add_sources(
                    project, sources=addition.sources, tracks=addition.tracks
                )
    if len(addition.sources) >= FREEZE_SOURCES:  # the project to come: see core._gc
        freeze_long_lived()
    return PlannedAddition(project, addition, edited)


def count_entries(paths: Iterable[str | os.PathLike[str]], limit: int) -> int:
    """How many files and folders ``paths`` hold (the paths themselves and what is under the
    folders among them, hidden names left out), counting stops past ``limit``: a cheap
    measure of a drop's size before deciding where to scan it."""
    n = 0
    stack = [os.fspath(p) for p in paths]
    while stack and n <= limit:
        path = stack.pop()
        n += 1
        if os.path.isdir(path):
            with contextlib.suppress(OSError), os.scandir(path) as it:
                for entry in it:
                    if not entry.name.startswith("."):
                        stack.append(entry.path)
    return n
