"""One numba cache folder per live process, claimed before numba is imported.

numba's on-disk cache is not safe when two processes compile the same ``@guvectorize``
function into one folder at once (numba issues #10128 and #4807): the ``.nbc`` files they write
can disagree, and the next call jumps through a null pointer. librosa (the test-only reference)
caches its numba functions, and compiles some of them when it is first used, so two pytest-xdist
workers, two suites run side by side, or a benchmark beside a suite would race on a fresh cache.

Each process that may compile numba code claims a numbered slot folder under one root, holding
an exclusive ``flock`` on it for the rest of its life. No two live processes ever share a slot,
whatever runs in parallel, so the race cannot happen; slots keep their compiled code between
runs, so a warm machine does not recompile. A process that crashes releases its lock with it.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import sys
from pathlib import Path
from typing import IO

ROOT_ENV = "DIAGNOSTICS_APP_NUMBA_ROOT"
_DEFAULT_ROOT = Path.home() / ".cache" / "numba-diagnostics-app"
_held: list[IO[str]] = []  # the open lock file: closing it would release the slot


def claim_numba_cache(root: Path | None = None) -> Path:
    """Point ``NUMBA_CACHE_DIR`` at a slot no other live process holds; return the slot.

    Idempotent within a process. Must run before numba is imported (numba reads the variable
    once, at import)."""
    if _held:
        return Path(_held[0].name).parent
    if "numba" in sys.modules:
        raise RuntimeError("claim_numba_cache() must run before numba is imported")
    base = Path(root or os.environ.get(ROOT_ENV) or _DEFAULT_ROOT)
    base.mkdir(parents=True, exist_ok=True)
    for index in itertools.count():
        slot = base / f"slot-{index}"
        slot.mkdir(exist_ok=True)
        lock = open(slot / ".lock", "a")  # noqa: SIM115 - held open for the process's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _held.append(lock)
        # Inherited by child processes: a child that compiles numba code while its parent
        # does would share the slot, so such a child must claim its own (none does today).
        os.environ["NUMBA_CACHE_DIR"] = str(slot / "cache")
        return slot
    raise AssertionError("unreachable")
