"""Naming a mistake: "did you mean" suggestions for unknown keys, ids and parameter names.

One home for the wording, so that the project loader, the parameter checks and the request
resolution say it the same way: ``tracks[0].requests[0].feture: unknown key — did you mean
"feature"?``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

# Keys starting with this are notes for people (or other tools): never flagged, kept on save.
NOTE_PREFIX = "_"


def suggestion(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word``, if any is close enough to be a likely typo."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` — did you mean "x"?`` for the closest choice, or ``" (known: a, b, c)"``."""
    options = list(choices)
    best = suggestion(word, options)
    if best is not None:
        return f' — did you mean "{best}"?'
    return f" (known: {', '.join(options)})" if options else ""


def unknown_keys(obj: Mapping[str, Any], known: Iterable[str], where: str) -> list[str]:
    """One message per key of ``obj`` that is neither known nor a note, naming its path."""
    names = tuple(known)
    absent = [k for k in names if k not in obj]  # a typo is of a key that is not there
    out = []
    for key in obj:
        if key in names or key.startswith(NOTE_PREFIX):
            continue
        best = suggestion(key, absent)
        hint = f' — did you mean "{best}"?' if best else f" (known: {', '.join(names)})"
        out.append(f"{f'{where}.' if where else ''}{key}: unknown key{hint}")
    return out
