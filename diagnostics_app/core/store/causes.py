"""The cause part of a :class:`StoreError` message, from an OSError or an SQLite error.

Every store error is one line naming the path and the cause (the GUI shows it in a status
line, the CLI prints it), so causes are flattened to one line here, in one place.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def one_line(text: str) -> str:
    return " ".join(text.split())


def os_cause(exc: OSError) -> str:
    return one_line(exc.strerror or str(exc) or type(exc).__name__)


def db_cause(exc: sqlite3.Error) -> str:
    cause = one_line(str(exc) or type(exc).__name__)
    if "not a database" in cause or "malformed" in cause:
        cause += " (the index is corrupt: delete the cache folder to start an empty cache)"
    return cause


def unwritable_hint(index: Path) -> str:
    """Why SQLite could not open ``index`` when its own words ("unable to open database file")
    do not say: the folder is on a read-only file system, or not writable by us (an index in
    WAL mode is written even to be read). Empty when neither is the case."""
    folder = index.parent
    try:
        if os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 1):
            return f" ({folder} is on a read-only file system)"
    except (OSError, AttributeError):
        return ""
    if not os.access(folder, os.W_OK):
        return f" ({folder} is not writable)"
    return ""
