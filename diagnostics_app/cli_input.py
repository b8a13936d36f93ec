"""Checks of command-line input that no command should see unchecked (README, "Bad input and
what you get"). Each returns the one-line message of a refusal, or None; ``cli`` raises it as
a usage error (exit 2). Kept apart from ``cli.py`` so that the commands stay about commands.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import sys
from typing import Any


def escape_surrogates_on_stdout() -> None:
    """A path the OS gave us may hold bytes that are not UTF-8, which Python carries as lone
    surrogates; written raw they make the output invalid UTF-8 (or raise mid-table). On a
    UTF-8 stdout they are the only characters that cannot be encoded, and "backslashreplace"
    writes each as ``\\udcXX``: in ``--json`` output that is the JSON escape of the same
    string (valid UTF-8 JSON, which json.loads reads back unchanged), in a table a readable
    escape. Every writer is covered, whatever builds its text. (Ids cannot hold surrogates:
    the project loader refuses them.)"""
    stream = sys.stdout
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if encoding == "utf8" and hasattr(stream, "reconfigure"):
        with contextlib.suppress(ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")


def null_byte(args: argparse.Namespace) -> str | None:
    """No path or id can hold a null byte (the OS would raise ValueError deep inside): the
    first argument with one, naming its flag. (A shell cannot pass one; a script calling
    ``main`` or ``subprocess`` with a list can.)"""
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and "\x00" in item:
                flag = name if name in ("project", "dir") else "--" + name.replace("_", "-")
                return f"diagnostics-app: {flag} {item!r}: contains a null byte"
    return None


def bad_param(key: str, value: Any, item: str) -> str | None:
    """A typo (``fmn=60``, ``fmin=6O``) would match no row and exit 0: a name or a value no
    request can have (requests pass the same check when the project is loaded)."""
    from diagnostics_app.core.errors import ParamError
    from diagnostics_app.core.params import PARAMS

    spec = PARAMS.get(key)
    if spec is None:
        close = difflib.get_close_matches(key, list(PARAMS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(PARAMS)}"
        return f"diagnostics-app: --param {key!r}: unknown parameter ({hint})"
    try:
        spec.check(value, where="")
    except ParamError as exc:
        return f"diagnostics-app: --param {item[:80]!r}: {str(exc)[:160]}"
    return None
