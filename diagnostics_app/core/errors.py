"""The typed errors of the core.

Every error a user can cause derives from :class:`DiagnosticsError`; its message is one line
that names the culprit (a file, a field, an id) and the cause. Front ends print ``str(error)``
and never a traceback.
"""

from __future__ import annotations

# the rules every message follows, re-exported for the code that prints messages of its own
from diagnostics_app.core.text import MAX_MESSAGE as MAX_MESSAGE
from diagnostics_app.core.text import bounded as bounded
from diagnostics_app.core.text import escaped as escaped


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
