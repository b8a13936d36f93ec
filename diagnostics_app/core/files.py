"""Files the app reads whole or writes whole: only regular files, never a device or a FIFO.

Reading (:func:`read_regular`): ``stat`` first and refuse anything that is not a regular file
*before* opening it (opening a FIFO blocks until a writer appears; ``/dev/zero`` never ends),
then open with ``O_NONBLOCK`` and check the open descriptor again, so a path swapped for a FIFO
between the two calls cannot hang us either; the read is capped.

Writing (:func:`atomic_write`): a temporary file in the target's folder, named
``.NAME.<random>.diag-tmp`` so that it is recognisably ours, created with mode ``0o666`` (the
kernel applies the umask, so the result follows it: no ``os.umask`` dance, which would race
with other threads) or, when replacing a file, given that file's mode; fsync, then rename over
the target. The target itself is never opened, and an existing target that is not a regular
file is refused, so a device or FIFO there is neither written to nor replaced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from diagnostics_app.core.errors import DiagnosticsError, escaped

# Project files are a few MB even at 100,000 tracks; the cap keeps a wrong path (a disk image,
# a sparse file) from being read into memory whole.
MAX_PROJECT_BYTES = 1 << 30
TEMP_SUFFIX = ".diag-tmp"  # every temporary file this module creates ends so
_NEW_FILE_MODE = 0o666  # before the umask, as open(..., "w") would do


class FileRefused(DiagnosticsError):
    """A path that must not be read or written as a regular file; ``reason`` is a phrase for
    a one-line message, e.g. ``is a FIFO, not a regular file``."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = printable(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def printable(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: a null byte is shown as ``\\x00``, a newline as ``\\n``
    (:func:`~diagnostics_app.core.errors.escaped`), not written raw."""
    return escaped(os.fspath(path))


_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind(mode: int) -> str:
    """What a ``st_mode`` says the file is, as a noun phrase."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def non_regular_reason(mode: int) -> str | None:
    """None for a regular file, else e.g. ``is a character device, not a regular file``."""
    if stat.S_ISREG(mode):
        return None
    return f"is {kind(mode)}, not a regular file"


def check_path(path: str | os.PathLike[str]) -> None:
    """Refuse a path the OS cannot even be asked about (a null byte: ``ValueError`` deep in
    ``os``), naming it, before any file call."""
    if "\x00" in os.fspath(path):
        raise FileRefused(path, "the path contains a null byte")


def refuse_non_regular(path: str | os.PathLike[str]) -> None:
    """Refuse an existing target that is not a regular file (symbolic links are followed, so
    a link to ``/dev/null`` is refused too); a path that does not exist passes."""
    check_path(path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    reason = non_regular_reason(st.st_mode)
    if reason is not None:
        raise FileRefused(path, reason)


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; :class:`FileRefused` for
    anything else (OSError from the OS is left to the caller)."""
    return read_regular_stat(path, limit)[1]


def read_regular_stat(path: str | os.PathLike[str], limit: int) -> tuple[os.stat_result, bytes]:
    """:func:`read_regular`, with the ``fstat`` of the file that was read."""
    check_path(path)
    reason = non_regular_reason(os.stat(path).st_mode)
    if reason is not None:
        raise FileRefused(path, reason)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        reason = non_regular_reason(st.st_mode)  # replaced between stat and open
        if reason is not None:
            raise FileRefused(path, reason)
        if st.st_size > limit:
            raise FileRefused(path, f"too large ({st.st_size} bytes; the limit is {limit})")
        data = f.read(limit + 1)  # a file growing while we read is capped all the same
    if len(data) > limit:
        raise FileRefused(path, f"too large (more than {limit} bytes)")
    return st, data


def read_head(path: str | os.PathLike[str], size: int) -> bytes:
    """The first ``size`` bytes (fewer if the file is shorter) of a regular file, for a magic
    number check before handing the path to a library that would block on a FIFO or read a
    device forever; :class:`FileRefused` for anything else (OSError is left to the caller)."""
    check_path(path)
    reason = non_regular_reason(os.stat(path).st_mode)
    if reason is not None:
        raise FileRefused(path, reason)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        reason = non_regular_reason(os.fstat(fd).st_mode)  # replaced between stat and open
        if reason is not None:
            raise FileRefused(path, reason)
        return f.read(size)


def temp_path(target: Path) -> Path:
    # the name shortened so that the temporary name fits where the target's own does (255
    # bytes on most file systems)
    return target.with_name(f".{target.name[:100]}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Write a file all at once or not at all (see the module docstring): ``write`` fills a
    binary file object; on any failure the temporary file is removed and the target is
    untouched. A replaced file keeps its permission bits; an existing target that is not a
    regular file (a folder, a device, a FIFO, or a link to one) is refused: renaming over it
    would replace ``/dev/null`` itself when run as root."""
    target = Path(path)
    check_path(target)
    if target.is_symlink():
        # write the file the link names, as ``cp`` or a shell redirection would; renaming over
        # the link would turn it into a separate file and leave the real one unchanged
        target = Path(os.path.realpath(target))
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        keep: int | None = None
    else:
        reason = non_regular_reason(st.st_mode)
        if reason is not None:
            raise FileRefused(target, reason)
        keep = stat.S_IMODE(st.st_mode)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):  # a name clash is astronomically rare; never loop forever
        tmp = temp_path(target)
        try:
            fd = os.open(tmp, flags, _NEW_FILE_MODE)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"{target}: no free temporary name")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if keep is not None:
                os.fchmod(f.fileno(), keep)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows (best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
