"""The first code an analysis worker process runs (:mod:`.pass_process`'s pool initializer).

It lowers the process's priority before anything heavy is imported: a worker imports numpy,
scipy and the engine (about 0.3 s of CPU) when its first pass arrives, and two of them doing
that at normal priority took the cores from the GUI thread at the start of every first
analysis. So this module imports nothing of the app, and the pool's initializer lives here,
not in :mod:`.pass_process` (unpickling a function imports its module first).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

progress: Any = None  # this worker's progress queue (to the parent), set by init


def init(queue: Any, nice: int) -> None:
    """Lower this process's priority by ``nice`` (background work: the GUI process gets a core
    first; a whole process, so no GIL is held by a descheduled thread, unlike a niced thread),
    then keep ``queue`` for the passes' progress reports."""
    global progress
    if nice and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(nice)
    progress = queue
