"""Why a row has its state: the field-by-field comparison of two fingerprints, and the one way
a fingerprint value (or a request's parameters) is written for people.

The CLI's ``explain`` (text and JSON), the GUI's explain panel and the descriptor table all
use these, so they cannot disagree about which field differs or how a value reads.

The rule for a field present on one side only: it differs, and the missing side is
:data:`ABSENT` (written "absent"; ``null`` in JSON, where a value must stand). A field can
only be compared when both fingerprints exist: with nothing cached (``missing``) or nothing
computable (``invalid``, ``extraneous``), no field "differs", there is just one side.

The staleness diff (:func:`core.fingerprint.diff`, the ``reasons``) compares values with
:func:`same_value` too, but reads a missing field as ``None``: a parameter added to a
calculator's declarations with the value ``None`` (unset, the calculator's own default) does
not make its data stale. The comparison shows the fingerprints as they are, so there it is a
difference.

A leaf of the core: it imports nothing of it, so that the fingerprint module below the
diagnostics can write its reasons with the same formatter.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from diagnostics_app.core.text import bounded


class Absent(enum.Enum):
    """The value of a field that one fingerprint does not have (an enum: one instance,
    which survives copies and pickling)."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = Absent.ABSENT


@dataclass(frozen=True)
class FieldComparison:
    """One input of the stored and the current fingerprint, side by side."""

    input: str
    stored: Any  # ABSENT: not in the stored fingerprint, or nothing is stored
    current: Any  # ABSENT: not in the current fingerprint, or none can be computed
    differs: bool


def same_value(a: Any, b: Any) -> bool:
    """Equal as fingerprint values: numbers by value (2048 == 2048.0 after a JSON round trip;
    ``true`` == 1, as in Python); NaN equals nothing, not even itself."""
    return bool(_normal(a) == _normal(b))


def _normal(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return float(value)


def compare(
    stored: Mapping[str, Any] | None, current: Mapping[str, Any] | None
) -> tuple[FieldComparison, ...]:
    """Every input of either fingerprint, by name, with whether it differs (see the module's
    rule for a field on one side only)."""
    have_stored, have_current = stored or {}, current or {}
    both = stored is not None and current is not None
    out = []
    for name in sorted(set(have_stored) | set(have_current)):
        old = have_stored.get(name, ABSENT)
        new = have_current.get(name, ABSENT)
        differs = both and (old is ABSENT or new is ABSENT or not same_value(old, new))
        out.append(FieldComparison(name, old, new, differs))
    return tuple(out)


def differing(
    stored: Mapping[str, Any] | None, current: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The names of the fields that differ, by name."""
    return tuple(f.input for f in compare(stored, current) if f.differs)


def format_value(value: Any, limit: int | None = None) -> str:
    """A fingerprint value for people: strings as they are, a tempo map as its segments
    ("0 s: 120 BPM; 16 s: 96 BPM"), anything else as JSON (``null``, ``true``, lists, objects
    with sorted keys), :data:`ABSENT` as "absent"; cut to ``limit`` characters with "…"."""
    if value is ABSENT:
        text = ABSENT.value
    elif isinstance(value, str):
        text = value
    elif _is_tempo_map(value):
        text = "; ".join(f"{seg['time']:g} s: {seg['bpm']:g} BPM" for seg in value)
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def _is_tempo_map(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and set(v) == {"time", "bpm"} for v in value)
    )


PROFILE_TEXT_MAX = 300


def profile_text(profile: str, params: Mapping[str, Any]) -> str:
    """A row's profile and its request's own parameters, e.g. ``fine {"fmin": 80.0}``; at most
    about :data:`PROFILE_TEXT_MAX` characters (an invalid request may hold a value of megabytes,
    shown in a table cell, a report, a panel)."""
    return (
        bounded(f"{profile} {format_value(dict(params))}", PROFILE_TEXT_MAX) if params else profile
    )
