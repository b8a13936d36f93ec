"""One line for people about a :class:`~core.compare_rules.Comparison`: what ``verify`` prints
for each row and the QA report writes under a lane's old-vs-new picture (``compare`` has its
own, longer, multi-line text)."""

from __future__ import annotations

from diagnostics_app.core.compare_rules import Comparison, clock


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def summary_line(c: Comparison) -> str:
    """E.g. ``10 of 44 frames beyond 0.0001 relative (22.7%), first at 0:00.116, worst at
    0:00.209; max abs 0.1432`` or ``44 frames, all equal``."""
    if c.verdict == "identical":
        return f"{c.frames_compared} frames, all equal"
    text = (
        f"{c.frames_beyond} of {c.frames_compared} frames beyond {c.tolerance} "
        f"({c.share_beyond:.1%})"
    )
    if c.first_diff_s is not None:
        text += f", first at {clock(c.first_diff_s)}"
    if c.worst_diff_s is not None:
        text += f", worst at {clock(c.worst_diff_s)}"
    text += f"; max abs {_num(c.max_abs_diff)}"
    if c.nonfinite_mismatches:
        text += f"; {c.nonfinite_mismatches} NaN/inf on one side only"
    if c.note:
        text += f"; {c.note}"
    return text
