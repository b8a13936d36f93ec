"""The values diagnostics produce: row states, rows and their keys, a diagnosis (the table).

Plain frozen values: the GUI's models and the CLI read them; nothing here derives a state
(:mod:`.diagnoser` does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from diagnostics_app.core.compare_rules import regenerated_label
from diagnostics_app.core.fingerprint import AudioFacts, Reason
from diagnostics_app.core.states import STATES, State
from diagnostics_app.core.store import EntryKey


@dataclass(frozen=True)
class SourceStatus:
    """What is known of a source's audio: its facts, or why they cannot be had."""

    facts: AudioFacts | None = None
    error: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class RowKey:
    source: str
    feature: str
    calculator: str
    profile: str
    params: str  # canonical JSON of the request's parameter overrides

    @property
    def entry_key(self) -> EntryKey:
        return EntryKey(self.source, self.calculator, self.profile, self.params)


@dataclass(frozen=True)
class Row:
    key: RowKey
    state: State
    tracks: tuple[str, ...] = ()
    calculator_version: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    message: str | None = None
    progress: float | None = None
    stored: Mapping[str, Any] | None = None  # stored fingerprint (when cached)
    current: Mapping[str, Any] | None = None  # current fingerprint (when computable)
    stored_version: int | None = None
    updated: float | None = None
    nbytes: int | None = None
    job_id: str | None = None
    # how the cached data compares with the version it replaced (core.compare's verdict:
    # "identical", "within tolerance", "differs"); None: first computation, or not compared
    regenerated: str | None = None

    source = property(lambda self: self.key.source)
    feature = property(lambda self: self.key.feature)
    calculator = property(lambda self: self.key.calculator)
    profile = property(lambda self: self.key.profile)

    @property
    def regenerated_label(self) -> str | None:
        """``check --json``'s ``regenerated``: "identical" (within tolerance included) or
        "changed"; None when the data is no compared regeneration."""
        return regenerated_label(self.regenerated)

    @property
    def note(self) -> str | None:
        """What a row says besides its state: "regenerated — identical to the previous
        version" (a version bump that changed nothing) or "regenerated — changed"."""
        label = self.regenerated_label
        if label is None:
            return None
        if label == "identical":
            return "regenerated — identical to the previous version"
        return "regenerated — differs from the previous version"

    def to_json(self) -> dict[str, Any]:
        """The row as ``check --json`` prints it (interface §4, plus documented extras)."""
        key = self.key
        return {
            "source": key.source,
            "feature": key.feature,
            "calculator": key.calculator,
            "calculator_version": self.calculator_version,
            "profile": key.profile,
            "params": dict(self.params),
            "state": self.state,
            "tracks": list(self.tracks),
            "reasons": [r.to_json() for r in self.reasons] if self.reasons else [],
            "message": self.message,
            "progress": self.progress,
            "updated": self.updated,
            "bytes": self.nbytes,
            "regenerated": self.regenerated_label,
        }


@dataclass(frozen=True)
class Diagnosis:
    rows: tuple[Row, ...]

    def summary(self) -> dict[str, int]:
        counts = Counter(r.state for r in self.rows)
        return {s: counts.get(s, 0) for s in STATES}

    @property
    def healthy(self) -> bool:
        return all(r.state == "ok" for r in self.rows)

    def by_key(self) -> dict[RowKey, Row]:
        return {r.key: r for r in self.rows}

    @cached_property
    def _by_source(self) -> dict[str, list[Row]]:
        index: dict[str, list[Row]] = {}
        for r in self.rows:
            index.setdefault(r.key.source, []).append(r)
        return index

    @cached_property
    def _by_track(self) -> dict[str, list[Row]]:
        index: dict[str, list[Row]] = {}
        for r in self.rows:
            for t in r.tracks:
                index.setdefault(t, []).append(r)
        return index

    def for_source(self, source_id: str) -> list[Row]:
        """Every row of a source, extraneous included (indexed: views call this per node)."""
        return list(self._by_source.get(source_id, ()))

    def for_track(self, track_id: str) -> list[Row]:
        """The rows a track requests."""
        return list(self._by_track.get(track_id, ()))
