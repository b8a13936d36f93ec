"""The typed errors of the core.

Every error a user can cause derives from :class:`DiagnosticsError`; its message is one line
that names the culprit (a file, a field, an id) and the cause. Front ends print ``str(error)``
and never a traceback.
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


class DiagnosticsError(Exception):
    """Base of every user-facing error: ``str(err)`` is a one-line message naming the culprit,
    at most about :data:`MAX_MESSAGE` characters long (see :func:`bounded` and
    :func:`escaped`)."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (escaped(bounded(args[0])), *args[1:])
        super().__init__(*args)


class AudioError(DiagnosticsError):
    """An audio file cannot be read or analysed (missing, empty, corrupt, unsupported...)."""

    def __init__(self, path: object, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class ParamError(DiagnosticsError):
    """A profile or request parameter is unknown or has a bad value."""


class ProjectError(DiagnosticsError):
    """A project file cannot be read, or does not validate; the message gives the field path."""


class RegistryError(DiagnosticsError):
    """An unknown feature or calculator, or a calculator that does not produce a feature."""


class PluginError(DiagnosticsError):
    """A calculator plugin failed to load (the path and the error are in the message)."""


class StoreError(DiagnosticsError):
    """The feature store cannot be opened or written (read-only or full disk, corrupt index)."""


class SelectionError(DiagnosticsError):
    """A selection (source, track, feature, ...) names nothing, or more than one row where one
    is needed."""


class Cancelled(DiagnosticsError):
    """A job was cancelled; nothing it was writing was committed."""

    def __init__(self, what: str = "analysis") -> None:
        super().__init__(f"{what} cancelled")
