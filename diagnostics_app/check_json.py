"""The text of ``check --json``, written straight from the rows.

It is exactly ``cli._json_text`` of ``{"schema_version", "project", "summary", "rows": [row.to_json()
for each row]}`` (``tests/core/test_check_json.py`` compares the two), without building a dict
per row nor starting the JSON encoder once per row: a row is one ``%`` format of its fields,
each spelled as the encoder spells it (``json.dumps(value, ensure_ascii=False, default=str)``).
Strings, track lists and parameter sets repeat from row to row (50 rows per source, a handful
of features, profiles and states): each distinct one is encoded once. Any value of another type
than those expected goes through the encoder itself. At 100,000 rows this takes about half the
time of the encoder per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from diagnostics_app.core.diagnostics import Row, RowKey

_FIELDS = (
    "source",
    "feature",
    "calculator",
    "calculator_version",
    "profile",
    "params",
    "state",
    "tracks",
    "reasons",
    "message",
    "progress",
    "updated",
    "bytes",
    "regenerated",
)
_TEMPLATE = "{" + ", ".join(f'"{name}": %s' for name in _FIELDS) + "}"
# Row.to_json changed its keys: every row goes through the encoder until this module follows
_CURRENT = tuple(Row(RowKey("", "", "", "", "{}"), "ok").to_json()) == _FIELDS


def encode(value: Any) -> str:
    """As ``cli._json_text`` encodes a value."""
    return json.dumps(value, ensure_ascii=False, default=str)


def check_text(head: str, rows: Sequence[Row]) -> str:
    """``head`` is ``cli._json_text`` of the document with ``"rows": []`` (last)."""
    if not rows:
        return head
    if not head.endswith('"rows": []}\n'):
        raise ValueError("the rows must be the last member of the document")
    # (without _CURRENT, every row through the encoder: a guard for a future Row.to_json)
    items = _RowWriter().texts(rows) if _CURRENT else [encode(r.to_json()) for r in rows]
    return head[:-4] + "[\n  " + ",\n  ".join(items) + "\n ]}\n"


class _RowWriter:
    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        self._tracks: dict[tuple[str, ...], str] = {}
        self._params: dict[tuple[Any, ...], str] = {}

    def texts(self, rows: Sequence[Row]) -> list[str]:
        s, scalar, tracks, params = self._string, _scalar, self._track_list, self._param_set
        template = _TEMPLATE
        return [
            template
            % (
                s(r.key.source),
                s(r.key.feature),
                s(r.key.calculator),
                scalar(r.calculator_version),
                s(r.key.profile),
                params(r.params),
                s(r.state),
                tracks(r.tracks),
                encode([x.to_json() for x in r.reasons]) if r.reasons else "[]",
                "null" if r.message is None else s(r.message),
                scalar(r.progress),
                scalar(r.updated),
                scalar(r.nbytes),
                "null" if r.regenerated is None else s(r.regenerated_label),
            )
            for r in rows
        ]

    def _string(self, value: Any) -> str:
        if type(value) is not str:
            return encode(value)
        text = self._strings.get(value)
        if text is None:
            text = self._strings[value] = encode(value)
        return text

    def _track_list(self, tracks: Any) -> str:
        if type(tracks) is not tuple:
            return encode(list(tracks))
        text = self._tracks.get(tracks)
        if text is None:
            text = encode(list(tracks))
            if all(type(t) is str for t in tracks):
                self._tracks[tracks] = text
        return text

    def _param_set(self, params: Any) -> str:
        if not params:
            return "{}"
        try:
            # 1, 1.0 and True are equal keys but spell differently: the types are in the key
            key = tuple((k, type(v), v) for k, v in params.items())
            text = self._params.get(key)
        except TypeError:  # an unhashable value (a list): not remembered
            return encode(dict(params))
        if text is None:
            text = encode(dict(params))
            if all(type(k) is str and type(v) in _PLAIN for k, _, v in key):
                self._params[key] = text
        return text


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _scalar(value: Any) -> str:
    """None, an int or a finite float as the encoder spells it; anything else by the encoder."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0.0:  # finite (NaN and infinities: the encoder)
        return float.__repr__(value)
    return encode(value)
