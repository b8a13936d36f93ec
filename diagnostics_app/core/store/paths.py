"""What the store may touch: its folder, the paths in its index, and the files it deletes.

A project folder is shared, and its ``.featurecache`` with it, so the index is *input*: a
path read from it (a feature's or times file, a garbage or trash row) is never joined to the
cache folder as it stands. It must name a file the store's own writer made, directly in
``data/``: ``data/<32 hex>.<pid>-<8 hex>.npy`` or ``.times.npy`` (the only names
:func:`~.owners.new_name` gives, since the first version; the splice parts of
:mod:`.splicing` are named the same way, so the rule needs no other form). That lexical rule is the
resolution: such a path has no ``..``, no separator inside the name and is not absolute, so it
cannot leave ``data/``; ``data/`` and ``tmp/`` themselves must be real folders of the cache
folder (not symbolic links, checked at open); and a file is opened with ``O_NOFOLLOW`` and
checked with ``lstat`` (a symbolic link in ``data/`` is refused, not followed). Anything else
is *refused*: reported once (:meth:`~.connection.IndexConnection.warn`, one line) or as the
row's message, and never read, deleted or exported.

Which folder may hold a store (:func:`check_cache_dir`, at open, before anything is created):
not a system folder (see :func:`system_folder`), and not a folder that already holds things
other than a store (a mistyped ``cache_dir`` pointing at a project or a home folder must not
be filled with ``index.sqlite``, ``data/`` and ``tmp/``, nor swept). An empty or missing folder
is created as before; a folder holding only a store's own names is a store (perhaps one whose
first open was interrupted).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path
from typing import Final

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.causes import os_cause
from diagnostics_app.core.store.connection import INDEX_NAME

DATA_DIR: Final = "data"
TMP_DIR: Final = "tmp"

# the names new_name() gives (owners._FILE_RE, restricted to the suffixes the writers use)
_INDEX_PATH_RE: Final = re.compile(r"data/[0-9a-f]{32}\.[0-9]+-[0-9a-f]{8}\.(?:times\.)?npy")

# what a store folder holds: nothing else makes a folder "a store"
STORE_NAMES: Final = frozenset(
    {
        INDEX_NAME,
        f"{INDEX_NAME}-wal",
        f"{INDEX_NAME}-shm",
        f"{INDEX_NAME}-journal",
        DATA_DIR,
        TMP_DIR,
    }
)

# trees of the operating system: a cache folder anywhere inside them is refused
_SYSTEM_TREES: Final = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
)


def index_path_ok(rel: str) -> bool:
    """Whether ``rel``, read from the index, names a file of this store (see the module)."""
    return _INDEX_PATH_RE.fullmatch(rel) is not None


def refusal(rel: str) -> str:
    """The words for a refused index path (``!r``: control characters stay on one line)."""
    return f"refused path {rel!r} (not a file of this store's data/ folder)"


def is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def open_no_follow(path: str, dir_fd: int | None = None) -> int:
    """A read-only descriptor of ``path`` (relative to ``dir_fd`` if given); raises OSError
    (ELOOP) if it is a symbolic link. Opened non-blocking: a FIFO put in a file's place would
    otherwise block the open until a writer comes (a hung read); the caller's regular-file
    check then refuses it (for a regular file the flag changes nothing)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)
    return os.open(path, flags | getattr(os, "O_BINARY", 0), dir_fd=dir_fd)


def open_folder(path: Path) -> int | None:
    """A descriptor of the folder ``path`` (not through a symbolic link) to look files up in
    it, or None where that cannot be done (then full paths are used)."""
    if os.stat not in os.supports_dir_fd or not hasattr(os, "O_DIRECTORY"):
        return None  # pragma: no cover - Windows
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None


def system_folder(path: Path) -> str | None:
    """Why ``path`` (resolved) may not be a cache folder, or None. The rule: the file system
    root or a folder directly in it (``/``, ``/etc``, ``/tmp``, ``/home``, ...; on Windows a
    drive root), the home folder or one of its ancestors, or anything inside a tree of the
    operating system (``/etc``, ``/usr``, ``/bin``, ``/boot``, ``/dev``, ``/proc``, ``/sys``,
    ``/run``, ``/sbin``, ``/lib*``)."""
    parts = path.parts
    if len(parts) <= 2:  # ("/",) or ("/", "etc"); ("C:\\",) or ("C:\\", "Users")
        return "a system folder"
    if sys.platform != "win32":
        text = str(path)
        for tree in _SYSTEM_TREES:
            if text == tree or text.startswith(tree + "/"):
                return f"inside the system folder {tree}"
    home = _home()
    if home is not None and (path == home or path in home.parents):
        return "the home folder" if path == home else "a folder that holds the home folder"
    return None


def _home() -> Path | None:
    try:
        return Path(os.path.realpath(Path.home()))
    except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
        return None


def check_cache_dir(root: Path) -> None:
    """Refuse a cache folder that is a system folder, or a folder that holds something other
    than a store (see the module); one-line :class:`StoreError`s naming the folder."""
    resolved = Path(os.path.realpath(root))
    why = system_folder(resolved)
    if why is not None:
        where = str(root) if resolved == root else f"{root} ({resolved})"
        raise StoreError(
            f"{where}: refusing to use {why} as the feature cache folder; set the project's "
            f"cache_dir to a folder of its own"
        )
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return  # created by the caller
    except NotADirectoryError as exc:  # mkdir would say "File exists", which explains little
        what = "a file is there" if os.path.lexists(root) else "a folder above it is a file"
        raise StoreError(
            f"{root}: cannot create the feature store folder: {os_cause(exc)} ({what})"
        ) from None
    except OSError as exc:
        raise StoreError(f"{root}: cannot list the feature cache folder: {os_cause(exc)}") from None
    foreign = sorted(n for n in names if n not in STORE_NAMES)
    if foreign and INDEX_NAME not in names:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise StoreError(
            f"{root}: refusing to use a folder that holds other files ({shown}) and no "
            f"feature store ({INDEX_NAME}) as the feature cache folder; set the project's "
            f"cache_dir to an empty or new folder"
        )


def check_own_folders(root: Path) -> None:
    """``data/`` and ``tmp/`` must be real folders of ``root``: through a symbolic link the
    sweep would delete, and the writers write, somewhere else."""
    for name in (DATA_DIR, TMP_DIR):
        folder = root / name
        try:
            mode = os.lstat(folder).st_mode
        except OSError as exc:
            raise StoreError(f"{folder}: cannot use the feature store: {os_cause(exc)}") from None
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
            raise StoreError(
                f"{folder}: is {what}; a feature store's {name}/ must be its own folder"
            )
