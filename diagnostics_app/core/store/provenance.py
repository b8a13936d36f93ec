"""Provenance: what produced an entry's data, recorded in its row when it is committed.

A calculator's output can change without any fingerprint input changing, when numpy, scipy or
libsndfile is upgraded; the fingerprint cannot see that, so each committed entry records the
versions of what computed it (``StoredEntry.provenance``), and a drift check can say which
environment produced the stored data and which recomputed it.

The record is canonical JSON of::

    {"app": "0.1.0", "python": "3.11.9", "numpy": "2.1.3", "scipy": "1.14.1",
     "soundfile": "0.12.1", "libsndfile": "1.2.2", "platform": "Linux-x86_64"}

A version that cannot be found is ``null`` (a library not installed). Entries committed by
older versions of the program have no record (``provenance_json`` is None, ``provenance``
``{}``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
from typing import Any, Final

import numpy as np

from diagnostics_app import __version__
from diagnostics_app.core.canonical import canonical_json

# the keys of a record, in the order documents show them
PROVENANCE_KEYS: Final = (
    "app",
    "python",
    "numpy",
    "scipy",
    "soundfile",
    "libsndfile",
    "platform",
)


def _distribution(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _libsndfile() -> str | None:
    try:
        import soundfile  # the decoder's own import: already loaded where audio is decoded
    except (ImportError, OSError):  # no soundfile, or no libsndfile to load
        return None
    version = getattr(soundfile, "__libsndfile_version__", None)
    return str(version) if version is not None else None


def current_provenance() -> dict[str, Any]:
    """This process's record (a fresh dict)."""
    return dict(_current())


@functools.lru_cache(maxsize=1)
def _current() -> tuple[tuple[str, Any], ...]:
    values: dict[str, Any] = {
        "app": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": _distribution("scipy"),
        "soundfile": _distribution("soundfile"),
        "libsndfile": _libsndfile(),
        "platform": f"{platform.system()}-{platform.machine()}",
    }
    return tuple((k, values[k]) for k in PROVENANCE_KEYS)


def provenance_text(record: Any = None) -> str:
    """Canonical JSON of ``record`` (a mapping), or of this process's record when None."""
    return canonical_json(dict(record) if record is not None else current_provenance())
