"""Which process owns a file, a writer registration or a job, and whether it still runs.

Crash recovery deletes what a dead process left and must never touch what a live one is
writing, so "dead" has to survive pid reuse: a process is identified by its pid *and* a start
token (Linux: boot id + ``/proc/<pid>/stat`` field 22; Windows: the creation time; elsewhere
the pid alone). File names carry a short form of that identity
(``<random>.<pid>-<8 hex of the token>.npy``), so a file's owner is known without the index.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import sys
import uuid
from pathlib import Path
from typing import Any, Final

_FILE_RE: Final = re.compile(r"^[0-9a-f]{32}\.(?P<pid>\d+)-(?P<tok>[0-9a-f]{8})\.[a-z0-9.]+$")

_PLATFORM: str = sys.platform  # a plain str: mypy must not prune the other platforms' branches


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


_place: tuple[int, str] | None = None


def this_place() -> str:
    """Where this process's pid means something: ``<host>|<boot id>|<pid namespace>``.

    A pid (and its start token) can only be checked by a process in the same place: another
    host, another boot or another PID namespace (a container on a shared volume) sees other
    processes under those numbers, so there only a lease (:mod:`.lease`) tells liveness.
    Recomputed after a fork (``unshare --fork`` gives the child a new namespace)."""
    global _place
    pid = os.getpid()
    if _place is None or _place[0] != pid:
        try:
            ns = str(os.stat("/proc/self/ns/pid").st_ino)
        except OSError:
            ns = ""
        host = socket.gethostname().replace("|", "_")
        _place = (pid, f"{host}|{_boot_id()}|{ns}")
    return _place[1]


def place_host(place: str) -> str:
    """The host name part of a :func:`this_place` string."""
    return place.split("|", 1)[0]


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


# (pid, token) of this process, once read: every job record and lease names its owner, and a
# read of /proc per record was most of the GUI thread's work when 40 jobs were queued at once
_own_start: list[Any] = [0, ""]


def process_start_token(pid: int | None = None) -> str:
    """A token that differs between two processes that had the same pid ("" if unknown).

    Linux: boot id + the start time in ``/proc/<pid>/stat``; Windows: the creation time;
    elsewhere "" (liveness then relies on the pid alone)."""
    own = os.getpid()
    pid = own if pid is None else pid
    if pid == own and _own_start[0] == pid:
        return _own_start[1]  # this process's start never changes (a fork has another pid)
    if _PLATFORM.startswith("linux"):
        stat = _proc_stat(pid)
        token = f"{_boot_id()}:{stat[1]}" if stat is not None else ""
        if pid == own and token:
            _own_start[:] = [pid, token]
        return token
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


def new_name(suffix: str) -> str:
    """A fresh file name owned by this process: ``<random>.<owner tag><suffix>``."""
    return f"{uuid.uuid4().hex}.{_owner_tag()}{suffix}"


def file_tag(name: str) -> tuple[int, str] | None:
    """The (pid, 8 hex of the start token) in a store file name; None if the name is not ours."""
    m = _FILE_RE.match(name)
    return None if m is None else (int(m["pid"]), m["tok"])


def tag_of(pid: int, start: str) -> tuple[int, str]:
    """The :func:`file_tag` of the files written by the process (``pid``, ``start``)."""
    return (pid, _short_token(start))


def file_owner_alive(name: str, cache: dict[tuple[int, str], bool]) -> bool | None:
    """Whether the process named in a store file name runs; None if the name is not ours."""
    m = _FILE_RE.match(name)
    if m is None:
        return None
    pid, tok = int(m["pid"]), m["tok"]
    if (pid, tok) not in cache:
        alive = process_alive(pid) and _short_token(process_start_token(pid)) == tok
        cache[(pid, tok)] = alive
    return cache[(pid, tok)]
