"""The rules of a comparison as values: tolerances per feature unit, the result type, and
how its times are written. The table, the verdicts and the streaming are documented in
:mod:`diagnostics_app.core.compare` (the API); this leaf holds what other layers read without
comparing anything (the diagnosis's "regenerated" note, ``check --json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.timefmt import format_time

Verdict = Literal["identical", "within tolerance", "differs"]
Measure = Literal["abs", "rel", "cents"]

REL_FLOOR: Final = 1e-6  # |values| below this are compared absolutely (relative: meaningless)


@dataclass(frozen=True)
class Tolerance:
    """How one column's values are compared: ``measure`` and the largest allowed value."""

    measure: Measure
    value: float
    unit: str = ""  # what the tolerance is in, for people ("dB", "cents", "")

    def text(self) -> str:
        if self.measure == "cents":
            return f"{self.value:g} cent" + ("" if self.value == 1 else "s")
        if self.measure == "rel":
            return f"{self.value:g} relative"
        return f"{self.value:g}{' ' + self.unit if self.unit else ''}"


TOL_DB: Final = Tolerance("abs", 0.05, "dB")
TOL_CENTS: Final = Tolerance("cents", 1.0, "cents")
TOL_CONFIDENCE: Final = Tolerance("abs", 1e-3)
TOL_LINEAR: Final = Tolerance("rel", 1e-4)
TOL_OTHER: Final = Tolerance("abs", 1e-4)

# the table of the module docstring, as values: (what it applies to, tolerance)
TOLERANCES: Final[tuple[tuple[str, Tolerance], ...]] = (
    ("unit dB or dBFS (spectrogram, mel)", TOL_DB),
    ("unit Hz (pitch f0, centroid)", TOL_CENTS),
    ("unit Hz, column 'confidence'", TOL_CONFIDENCE),
    ("unit FS (rms, peaks, beat_rms)", TOL_LINEAR),
    ("anything else (chroma, onset, plugins)", TOL_OTHER),
)


def rules_for(meta: OutputMeta) -> tuple[Tolerance, ...]:
    """One tolerance per column of a feature (see the module's table)."""
    unit = meta.unit.strip()
    names = meta.width_names or ("",) * meta.width
    if unit.lower().startswith("db"):
        rule = TOL_DB
    elif unit == "Hz":
        return tuple(TOL_CONFIDENCE if n == "confidence" else TOL_CENTS for n in names)
    elif unit == "FS":
        rule = TOL_LINEAR
    else:
        rule = TOL_OTHER
    return (rule,) * meta.width


def is_linear(meta: OutputMeta) -> bool:
    return not meta.unit.strip().lower().startswith("db")


@dataclass(frozen=True)
class Comparison:
    """The result of comparing two versions of one feature (see the module)."""

    feature: str
    frames_compared: int
    max_abs_diff: float | None
    rms_abs_diff: float | None
    max_rel_diff: float | None
    correlation: float | None
    frames_beyond: int
    share_beyond: float
    first_diff_s: float | None
    worst_diff_s: float | None
    ranges: tuple[tuple[float, float], ...]
    ranges_total: int
    nonfinite_mismatches: int
    verdict: Verdict
    tolerance: str
    common_grid: bool = False
    note: str | None = None

    @property
    def differs(self) -> bool:
        return self.verdict == "differs"

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "verdict": self.verdict,
            "frames_compared": self.frames_compared,
            "max_abs_diff": self.max_abs_diff,
            "rms_abs_diff": self.rms_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "correlation": self.correlation,
            "frames_beyond": self.frames_beyond,
            "share_beyond": self.share_beyond,
            "first_diff_s": self.first_diff_s,
            "worst_diff_s": self.worst_diff_s,
            "ranges": [list(r) for r in self.ranges],
            "ranges_total": self.ranges_total,
            "nonfinite_mismatches": self.nonfinite_mismatches,
            "tolerance": self.tolerance,
            "common_grid": self.common_grid,
            "note": self.note,
        }


def regenerated_label(verdict: str | None) -> str | None:
    """``check --json``'s ``regenerated``: "identical" (within tolerance counts: the data is
    the same by the documented rules) or "changed"; None when not a compared regeneration."""
    if verdict is None:
        return None
    return "changed" if verdict == "differs" else "identical"


def tolerance_text(rules: Sequence[Tolerance], meta: OutputMeta) -> str:
    distinct = list(dict.fromkeys(rules))
    if len(distinct) == 1:
        return distinct[0].text()
    names = meta.width_names or tuple(str(i) for i in range(len(rules)))
    parts = [
        f"{r.text()} ({', '.join(n for n, x in zip(names, rules, strict=False) if x == r)})"
        for r in distinct
    ]
    return "; ".join(parts)


def clock(seconds: float) -> str:
    """How times of a comparison are written: ``m:ss.mmm``, the app's one time format
    (:func:`~diagnostics_app.core.timefmt.format_time`, as on the ruler and in reasons)."""
    return format_time(seconds)
