"""Text quoted in one-line messages and table cells: bounded in length and kept on one line.

The leaf under :mod:`~diagnostics_app.core.errors` (whose messages apply both rules) and
:mod:`~diagnostics_app.core.explain` (whose parameter text is bounded the same way).
"""

from __future__ import annotations

# A message quotes what was wrong (a value, a key, a name) and a project file can hold a value of
# megabytes: past this length the middle of a message is cut, so a row's reason or an error
# line stays readable while its start (the culprit's path) and its end (the hint) remain.
MAX_MESSAGE = 1000


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text``, or its start and end around a ``…[N characters cut]…`` marker when it is
    longer than ``limit`` characters."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit // 4
    return f"{text[:head]}…[{len(text) - head - tail} characters cut]…{text[len(text) - tail :]}"


def escaped(text: str) -> str:
    """``text`` with every character that is not printable (a newline, a tab, a null byte, a
    lone surrogate from an undecodable file name) written as its Python escape, e.g. ``\\n``:
    a file name or a value quoted in a message can never break it into lines."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
