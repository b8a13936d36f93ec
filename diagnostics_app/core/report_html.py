"""The QA report (``diagnostics-app report``): one self-contained HTML file.

Sections, each a ``<section>`` with a stable id (QA automation and the tests find them):

- ``summary``: the project, its store, when, the versions of the app and its numeric
  libraries, and the rows counted per state (every state of interface §3, zeros too);
- ``issues``: every row that is not ``ok``, with its reasons and message as ``check`` and
  ``explain`` word them (:class:`~core.fingerprint.Reason`, :func:`~core.explain.format_value`);
- ``lanes``: for the selected rows (or, without a selection, the regenerated ones: rows with a
  previous version) a small picture of each lane, and of the previous version against the
  current one with the comparison's verdict and statistics where a previous version exists.

Self-contained: CSS in a ``<style>`` element, pictures as ``data:image/png;base64`` URIs, no
script, no link to anything outside the file, so it can be attached to a CI run or mailed.
Every text that comes from a project, a store or a plugin (names, ids, messages, parameter
values) is HTML-escaped: a project name is input like any other.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from diagnostics_app import __version__
from diagnostics_app.core.compare import compare_sides, side_of_entry, side_of_previous
from diagnostics_app.core.compare_rules import Comparison, clock
from diagnostics_app.core.compare_text import summary_line
from diagnostics_app.core.diagnostics import Diagnosis, Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.explain import profile_text
from diagnostics_app.core.report_pictures import (
    Picture,
    comparison_pictures,
    current_picture,
    lane_duration,
)
from diagnostics_app.core.session import Session
from diagnostics_app.core.states import STATES, WITH_DATA, severity_rank
from diagnostics_app.core.store import PreviousVersion, current_provenance

# pictures drawn at most (each ~5-20 kB): a report of a large selection stays mailable
MAX_LANES: Final = 200

SECTION_IDS: Final = ("summary", "issues", "lanes")

_CSS: Final = """
body{font:14px/1.4 "DejaVu Sans",Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0;word-break:break-all}
.state{font-weight:bold;padding:0 6px;border-radius:3px;color:#fff;background:#777}
.state-ok{background:#2e7d32}.state-stale{background:#ef6c00}.state-missing{background:#757575}
.state-failed,.state-invalid{background:#c62828}.state-extraneous{background:#6d4c41}
.state-queued,.state-running{background:#1565c0}
ul.reasons{margin:0;padding-left:18px}figure.lane{margin:14px 0;padding:8px;border:1px solid #ddd}
figure.lane img{display:block;margin:4px 0;border:1px solid #eee;image-rendering:pixelated}
figcaption{font-weight:bold}.verdict{font-weight:bold}.verdict-differs{color:#c62828}
.verdict-identical{color:#2e7d32}.note{color:#666}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Lane:
    """One row's pictures in the report."""

    row: Row
    pictures: tuple[Picture, ...]
    duration: float = 0.0  # seconds the pictures span
    previous: PreviousVersion | None = None
    comparison: Comparison | None = None  # with the previous version, when there is one
    note: str | None = None  # why a picture is missing


def build_report(
    session: Session,
    selected: Sequence[Row] | None = None,
    *,
    now: dt.datetime | None = None,
    max_lanes: int = MAX_LANES,
) -> str:
    """The report's HTML text. ``selected``: the rows to picture (None: the regenerated
    ones, those with a previous version)."""
    diagnosis = session.diagnose()
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    candidates = list(selected) if selected is not None else list(diagnosis.rows)
    lanes = _lanes(session, candidates, only_regenerated=selected is None, most=max_lanes)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>QA report: {_e(session.project.name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        _summary(session, diagnosis, when),
        _issues(diagnosis.rows),
        _lanes_section(lanes, selected is None, len(candidates), max_lanes),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# --- summary -----------------------------------------------------------------------------------


def _summary(session: Session, diagnosis: Diagnosis, when: dt.datetime) -> str:
    project = session.project
    versions = current_provenance()
    facts = [
        ("project", project.name),
        ("project file", project.path or "(unsaved)"),
        ("feature store", project.cache_path()),
        ("generated", when.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("diagnostics-app", __version__),
        *((name, value) for name, value in versions.items() if name != "app"),
    ]
    counts = diagnosis.summary()
    head = "".join(f"<th>{_e(s)}</th>" for s in STATES)
    cells = "".join(f'<td data-state="{_e(s)}">{counts[s]}</td>' for s in STATES)
    return (
        '<section id="summary">'
        f"<h1>QA report: {_e(project.name)}</h1>"
        '<dl class="facts">'
        + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
        + "</dl>"
        + f'<table class="counts"><tr>{head}<th>rows</th></tr>'
        + f"<tr>{cells}<td>{len(diagnosis.rows)}</td></tr></table>"
        + "</section>"
    )


# --- issues ------------------------------------------------------------------------------------


def _state(state: str) -> str:
    return f'<span class="state state-{_e(state)}">{_e(state)}</span>'


def _row_cells(row: Row) -> str:
    k = row.key
    calc = k.calculator or "(none)"
    if row.calculator_version is not None:
        calc += f" v{row.calculator_version}"
    return (
        f"<td>{_e(k.source)}</td><td>{_e(k.feature)}</td><td>{_e(calc)}</td>"
        f"<td>{_e(profile_text(k.profile, row.params))}</td>"
    )


def _why(row: Row) -> str:
    items = [f"<li>{_e(r)}</li>" for r in row.reasons]
    if row.message and not row.reasons:
        items.append(f"<li>{_e(row.message)}</li>")
    if row.state == "missing" and not items:
        items.append("<li>requested, nothing cached</li>")
    if row.state == "running" and row.progress is not None:
        items.insert(0, f"<li>{row.progress * 100:.0f}% done</li>")
    return f'<ul class="reasons">{"".join(items)}</ul>' if items else ""


def _issues(rows: Iterable[Row]) -> str:
    issues = sorted(
        (r for r in rows if r.state != "ok"), key=lambda r: (severity_rank(r.state), _order(r))
    )
    body = "".join(
        f'<tr class="issue" data-state="{_e(r.state)}">{_row_cells(r)}<td>{_state(r.state)}</td>'
        f"<td>{_e(', '.join(r.tracks) or '(none)')}</td><td>{_why(r)}</td></tr>"
        for r in issues
    )
    table = (
        '<table class="issues"><tr><th>source</th><th>feature</th><th>calculator</th>'
        f"<th>profile</th><th>state</th><th>tracks</th><th>why</th></tr>{body}</table>"
        if issues
        else '<p class="note">Every row is ok.</p>'
    )
    return f'<section id="issues"><h2>Rows that are not ok ({len(issues)})</h2>{table}</section>'


def _order(row: Row) -> tuple[str, ...]:
    k = row.key
    return (k.source, k.feature, k.calculator, k.profile, k.params)


# --- lanes -------------------------------------------------------------------------------------


def _lanes(
    session: Session, rows: Sequence[Row], *, only_regenerated: bool, most: int
) -> list[Lane]:
    store = session.store
    entries = {e.key: e for e in store.entries()}
    out: list[Lane] = []
    for row in rows:
        if len(out) >= most:
            break
        entry = entries.get(row.key.entry_key)
        if row.state not in WITH_DATA or entry is None or row.key.feature not in entry.features:
            if not only_regenerated:
                out.append(Lane(row, (), note="no cached data"))
            continue
        what = f"{row.key.source} / {row.key.feature}"
        feature = row.key.feature
        try:
            version = store.previous(entry.key, feature)
            if version is None and only_regenerated:
                continue
            current = store.load(entry, feature)
            comparison = None
            if version is None:
                pictures = [current_picture(current, f"{what}: current")]
                duration = lane_duration(current)
            else:  # the comparison's pictures show the current data too
                previous = store.load_previous(version)
                comparison = compare_sides(
                    side_of_previous(store, version), side_of_entry(store, entry, feature)
                )
                pictures = comparison_pictures(previous, current, comparison.ranges, what)
                duration = lane_duration(previous, current)
            out.append(Lane(row, tuple(pictures), duration, version, comparison))
        except DiagnosticsError as exc:
            out.append(Lane(row, (), note=str(exc)))
    return out


def _img(picture: Picture) -> str:
    data = base64.b64encode(picture.png).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{data}" width="{picture.width}" '
        f'height="{picture.height}" alt="{_e(picture.alt)}" title="{_e(picture.alt)}">'
    )


def _comparison_text(lane: Lane) -> str:
    c, version = lane.comparison, lane.previous
    if c is None or version is None:
        return ""
    when = dt.datetime.fromtimestamp(version.updated, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    verdict = c.verdict
    return (
        f'<p class="comparison">previous version (v{version.calculator_version}, computed '
        f"{_e(when)}) vs current: "
        f'<span class="verdict verdict-{_e(verdict.replace(" ", "-"))}">{_e(verdict)}</span>'
        f" — {_e(summary_line(c))}</p>"
    )


def _lane(lane: Lane) -> str:
    row = lane.row
    k = row.key
    calc = (k.calculator or "(none)") + (
        f" v{row.calculator_version}" if row.calculator_version is not None else ""
    )
    caption = (
        f"{_e(k.source)} / {_e(k.feature)} "
        f'<span class="note">({_e(calc)}, profile {_e(profile_text(k.profile, row.params))};'
        f" tracks {_e(', '.join(row.tracks) or '(none)')})</span> {_state(row.state)}"
    )
    body = "".join(_img(p) for p in lane.pictures)
    if lane.pictures:
        legend = " (the pictures: " + "; ".join(_e(p.alt.split(": ", 1)[-1]) for p in lane.pictures)
        legend += "; red: beyond tolerance)" if lane.comparison is not None else ""
        body += (
            f'<p class="note axis">time 0:00.000 – {_e(clock(lane.duration))}'
            f"{legend if lane.comparison is not None else ''}</p>"
        )
    body += _comparison_text(lane)
    if lane.note:
        body += f'<p class="note">{_e(lane.note)}</p>'
    return (
        f'<figure class="lane" data-source="{_e(k.source)}" data-feature="{_e(k.feature)}">'
        f"<figcaption>{caption}</figcaption>{body}</figure>"
    )


def _lanes_section(lanes: Sequence[Lane], regenerated: bool, candidates: int, most: int) -> str:
    what = "regenerated rows (with a previous version)" if regenerated else "selected rows"
    intro = f'<p class="note">Lanes of the {_e(what)}.'
    if len(lanes) >= most and candidates > most:
        intro += f" The first {most} are shown."
    intro += "</p>"
    body = "".join(_lane(lane) for lane in lanes) or (f'<p class="note">No {_e(what)} to show.</p>')
    return f'<section id="lanes"><h2>Lanes ({len(lanes)})</h2>{intro}{body}</section>'
