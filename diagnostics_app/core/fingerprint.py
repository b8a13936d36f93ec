"""The one structured fingerprint of a cache entry, and its diff ("why stale").

A fingerprint is a flat JSON object of exactly the inputs the entry's calculator declared:

    {"audio.content": "b2:…", "audio.sample_rate": 44100, "audio.channels": 2,
     "calculator.id": "core.rms", "calculator.version": 2,
     "profile.hop_size": 256, "profile.window_size": 1024, …,
     "tempo_map": [{"time": 0.0, "bpm": 120.0}]}        # only if the calculator reads it

:func:`build` is the only function that makes one, whatever the path (analysis, import, undo,
check), and it is stored with the entry as readable JSON. :func:`diff` compares a stored and a
current fingerprint field by field and gives the ``reasons`` of the interface, old → new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.explain import format_value, same_value
from diagnostics_app.core.params import Params
from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.core.timefmt import format_time

Fingerprint = dict[str, Any]

AUDIO_CONTENT = "audio.content"
AUDIO_RATE = "audio.sample_rate"
AUDIO_CHANNELS = "audio.channels"
CALC_ID = "calculator.id"
CALC_VERSION = "calculator.version"
TEMPO = "tempo_map"
PROFILE_PREFIX = "profile."
REASON_LIMIT = 40  # characters per value in a reason's text (a stale row's message)


@dataclass(frozen=True)
class AudioFacts:
    """What the fingerprint needs to know of a source's audio."""

    digest: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Reason:
    """One input that differs between the stored and the current fingerprint.

    For ``audio.content`` when both versions' block digests are known and comparable
    (:mod:`core.ranges`): ``ranges``, the changed time ranges in seconds of the current audio
    (empty: no decoded sample changed, only the file's bytes), and ``affected_frames``, the
    frames whose reads overlap them, as inclusive ``(first, last)`` pairs, or ``"all"`` when the
    calculator's reach is unbounded. ``None``: not known, or a whole-file change."""

    input: str
    old: Any
    new: Any
    ranges: tuple[tuple[float, float], ...] | None = None
    affected_frames: tuple[tuple[int, int], ...] | str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input": self.input, "old": self.old, "new": self.new}
        if self.ranges is not None:
            out["ranges"] = [list(r) for r in self.ranges]
        if isinstance(self.affected_frames, str):
            out["affected_frames"] = self.affected_frames
        elif self.affected_frames is not None:
            out["affected_frames"] = [list(f) for f in self.affected_frames]
        return out

    def __str__(self) -> str:
        text = f"{self.input}: {format_value(self.old, REASON_LIMIT)} → {format_value(self.new, REASON_LIMIT)}"
        if self.ranges is not None:
            text += f" ({ranges_text(self.ranges)})"
        return text


def build(calc: Calculator, params: Params, audio: AudioFacts, tempo: TempoMap) -> Fingerprint:
    """The fingerprint of ``calc`` run with ``params`` over ``audio`` (and ``tempo`` if read)."""
    fp: Fingerprint = audio_part(audio)
    fp.update(calculator_part(calc, params, tempo))
    return fp


def audio_part(audio: AudioFacts) -> Fingerprint:
    """The audio fields of a fingerprint (the first fields :func:`build` writes)."""
    return {
        AUDIO_CONTENT: audio.digest,
        AUDIO_RATE: audio.sample_rate,
        AUDIO_CHANNELS: audio.channels,
    }


def calculator_part(calc: Calculator, params: Params, tempo: TempoMap) -> Fingerprint:
    """The other fields of a fingerprint: calculator, declared parameters, tempo if read.
    :func:`build` is ``{**audio_part(...), **calculator_part(...)}``; diagnostics build this
    part once per (calculator, parameters) instead of once per source."""
    fp: Fingerprint = {CALC_ID: calc.id, CALC_VERSION: calc.version}
    for name in sorted(calc.params):
        fp[PROFILE_PREFIX + name] = params[name]
    if calc.uses_tempo:
        fp[TEMPO] = tempo.to_json()
    return fp


def canonical_text(part: Mapping[str, Any]) -> str:
    """A fingerprint (or part of one) as the store keeps it: canonical JSON."""
    return canonical_json(part)


def joined_text(audio_text: str, calculator_text: str) -> str:
    """``canonical_text(build(...))`` from the canonical texts of its two parts, without
    encoding again: every audio field name sorts before every other field name ("audio." <
    "calculator." < "profile." < "tempo_map"), so the sorted object is the audio fields, then
    the others. ``tests/core/test_diagnostics_scale.py`` checks it against the direct spelling."""
    return audio_text[:-1] + "," + calculator_text[1:]


# --- where the audio changed, as text (times: core.timefmt, the app's one m:ss.mmm) -------


def ranges_text(spans_s: Sequence[tuple[float, float]]) -> str:
    """ "changed 1:02.300–1:03.100, 2:00.000–2:01.370"; "no decoded sample changed" for none."""
    if not spans_s:
        return "no decoded sample changed"
    shown = ", ".join(f"{format_time(a)}–{format_time(b)}" for a, b in spans_s[:_SHOWN])
    more = f", +{len(spans_s) - _SHOWN} more" if len(spans_s) > _SHOWN else ""
    return f"changed {shown}{more}"


_SHOWN = 3  # ranges a line of text names (the JSON has them all)


def frames_text(frames: Sequence[tuple[int, int]]) -> str:
    """ "affects frames 120–180, 400"; "affects no frame"."""
    if not frames:
        return "affects no frame"
    shown = ", ".join(f"{a}–{b}" if a != b else str(a) for a, b in frames[:_SHOWN])
    more = f", +{len(frames) - _SHOWN} more" if len(frames) > _SHOWN else ""
    return f"affects frames {shown}{more}"


_ORDER = (AUDIO_CONTENT, AUDIO_RATE, AUDIO_CHANNELS, CALC_ID, CALC_VERSION)


def _rank(name: str) -> tuple[int, str]:
    if name in _ORDER:
        return _ORDER.index(name), name
    if name.startswith(PROFILE_PREFIX):
        return len(_ORDER), name
    return len(_ORDER) + 1, name


def partial_kind(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> str | None:
    """Which partial recomputation could bring data of fingerprint ``stored`` to ``current``
    (core.partial_work): "audio" when only the audio content differs, "tempo" when only the
    tempo map does; None when there is no stored fingerprint, or nothing or anything else
    differs (the calculator runs whole)."""
    if stored is None:
        return None
    changed = {
        name
        for name in set(stored) | set(current)
        if not same_value(stored.get(name), current.get(name))
    }
    if changed == {AUDIO_CONTENT}:
        return "audio"
    if changed == {TEMPO}:
        return "tempo"
    return None


def diff(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> tuple[Reason, ...]:
    """Every input whose value differs, in a stable order (audio, calculator, profile, tempo).
    An input present on one side only shows ``None`` on the other, and counts as changed only
    if the other side's value is not ``None`` (see :mod:`core.explain` for why; values compare
    by :func:`core.explain.same_value`)."""
    if stored is None:
        return ()
    if stored == current:  # equal values are equal by same_value too: nothing differs
        return ()
    names = sorted(set(stored) | set(current), key=_rank)
    return tuple(
        Reason(name, stored.get(name), current.get(name))
        for name in names
        if not same_value(stored.get(name), current.get(name))
    )
