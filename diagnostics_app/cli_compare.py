"""``diagnostics-app compare PROJECT [selection] [--against previous|FILE.npy] [--json]``.

Compares each selected row's cached data with its previous version (the data it had before
its last regeneration: the default), or one row's data with a ``.npy`` file, by the rules of
:mod:`diagnostics_app.core.compare` (verdicts, tolerances per unit, common time grid).

Rows: those of the selection (the flags of ``check``) that have cached data; with
``--against previous`` a row whose previous version is not kept is listed as such and not
compared; with ``--against FILE.npy`` the selection must name exactly one row.

Output per row: the verdict, frames compared, how many are beyond tolerance and their share,
max and RMS absolute difference, max relative difference (linear units), correlation, the
first and worst differing times and the differing ranges in ``m:ss.mmm``, and the note when
compared on a common time grid. ``--json``: one object with ``schema_version``, ``project``,
``against``, ``rows`` (each row's key, ``against`` details and every field of
:meth:`Comparison.to_json`, plus the times as ``m:ss.mmm`` text) and ``summary`` (rows per
verdict).

Exit codes: 0 when every compared row is ``identical`` or ``within tolerance``; 1 when one
``differs`` (or its data cannot be read: that row says why); 2 bad input, one line on stderr:
an unknown source, track, feature…, a selection with no cached row, ``--against previous``
with no previous version for any selected row, a file that is not a usable ``.npy``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diagnostics_app.cli import (
    EXIT_ISSUES,
    EXIT_OK,
    JSON_SCHEMA_VERSION,
    UsageError,
    _one_row,
    _print_json,
    _selection,
    _selection_flags,
    _session,
)
from diagnostics_app.core.compare import (
    Comparison,
    clock,
    compare_sides,
    side_of_entry,
    side_of_npy,
    side_of_previous,
)
from diagnostics_app.core.errors import DiagnosticsError

VERDICTS = ("identical", "within tolerance", "differs")


def add_parser(sub: Any) -> None:
    """Register the ``compare`` subcommand on ``build_parser``'s subparsers."""
    p = sub.add_parser(
        "compare",
        help="compare rows' data with their previous version (or a .npy file); exit 1 if "
        "something differs beyond tolerance",
    )
    p.add_argument("project")
    _selection_flags(p)
    p.add_argument(
        "--against",
        default="previous",
        metavar="previous|FILE.npy",
        help="what to compare with: the previous version (default) or a .npy file (one row)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)  # cli._dispatch calls it


def run(args: argparse.Namespace) -> int:
    session = _session(args.project)
    try:
        if args.against != "previous":
            rows = [_one_row(args, session)]
        else:
            selection = _selection(args, session)
            rows = selection.select(session.diagnose())
        rows = [r for r in rows if r.nbytes is not None]
        if not rows:
            raise UsageError("diagnostics-app: no row with cached data matches that selection")
        results = [_compare_row(session.store, row, args.against) for row in rows]
    finally:
        session.close()
    if args.against == "previous" and all(r.get("against") is None for r in results):
        if len(results) == 1:
            r = results[0]
            raise UsageError(
                f"diagnostics-app: {r['source']}/{r['feature']} ({r['calculator']}, profile "
                f"{r['profile']}): no previous version kept (it was never regenerated, or "
                "the cache limit evicted it)"
            )
        raise UsageError(
            f"diagnostics-app: none of the {len(results)} selected rows has a previous version kept"
        )
    if args.json:
        counts = Counter(r["verdict"] for r in results if r["verdict"] is not None)
        _print_json(
            {
                "schema_version": JSON_SCHEMA_VERSION,
                "project": str(args.project),
                "against": args.against,
                "summary": {v: counts.get(v, 0) for v in VERDICTS},
                "rows": results,
            }
        )
    else:
        sys.stdout.write("".join(_text(r) for r in results))
    bad = any(r["verdict"] == "differs" or r.get("error") for r in results)
    return EXIT_ISSUES if bad else EXIT_OK


def _compare_row(store: Any, row: Any, against: str) -> dict[str, Any]:
    key = row.key
    out: dict[str, Any] = {
        "source": key.source,
        "feature": key.feature,
        "calculator": key.calculator,
        "calculator_version": row.stored_version,
        "profile": key.profile,
        "params": dict(row.params),
        "state": row.state,
        "verdict": None,
    }
    entry = store.get(key.entry_key)
    if entry is None or key.feature not in entry.features:
        out["against"] = {"what": against}
        out["error"] = "its data was removed since the table was read"
        return out
    if against != "previous":  # one row against a file: any problem is bad input (exit 2)
        current = side_of_entry(store, entry, key.feature)
        out["against"] = {"what": "file", "path": against}
        result = compare_sides(side_of_npy(against, current, label=Path(against).name), current)
    else:
        version = store.previous(key.entry_key, key.feature)
        if version is None:
            out["against"] = None
            out["note"] = "no previous version kept"
            return out
        out["against"] = {
            "what": "previous",
            "calculator_version": version.calculator_version,
            "updated": version.updated,
            "replaced": version.replaced,
            "provenance": version.provenance,
        }
        try:
            result = compare_sides(
                side_of_previous(store, version), side_of_entry(store, entry, key.feature)
            )
        except DiagnosticsError as exc:  # unreadable data: this row says why (exit 1)
            out["error"] = str(exc)
            return out
    out.update(result.to_json())
    out.update(_clock_fields(result))
    return out


def _clock_fields(c: Comparison) -> dict[str, Any]:
    return {
        "first_diff": None if c.first_diff_s is None else clock(c.first_diff_s),
        "worst_diff": None if c.worst_diff_s is None else clock(c.worst_diff_s),
        "ranges_text": [f"{clock(a)}–{clock(b)}" for a, b in c.ranges],
    }


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _text(r: dict[str, Any]) -> str:
    params = " ".join(f"{k}={v}" for k, v in r["params"].items())
    head = "  ".join(
        x for x in (r["source"], r["feature"], r["calculator"], r["profile"], params) if x
    )
    if r.get("error"):
        return f"error     {head}\n  {r['error']}\n"
    if r["verdict"] is None:
        return f"—         {head}\n  {r.get('note') or 'not compared'}\n"
    lines = [f"{r['verdict']:<9} {head}"]
    against = r.get("against") or {}
    if against.get("what") == "previous":
        lines.append(
            f"  against the previous version (v{against['calculator_version']}), "
            f"current v{r['calculator_version']}"
        )
    elif against.get("what") == "file":
        lines.append(f"  against {against['path']}")
    lines.append(
        f"  frames {r['frames_compared']}, beyond tolerance {r['frames_beyond']} "
        f"({r['share_beyond']:.1%}); tolerance {r['tolerance']}"
    )
    lines.append(
        f"  max abs {_num(r['max_abs_diff'])}, rms {_num(r['rms_abs_diff'])}, "
        f"max rel {_num(r['max_rel_diff'])}, correlation {_num(r['correlation'], 6)}"
    )
    if r["first_diff"] is not None:
        shown: Sequence[str] = r["ranges_text"][:10]
        more = r["ranges_total"] - len(shown)
        lines.append(f"  first {r['first_diff']}, worst {r['worst_diff']}")
        lines.append(f"  ranges {', '.join(shown)}" + (f" (+{more} more)" if more > 0 else ""))
    if r.get("note"):
        lines.append(f"  note: {r['note']}")
    return "\n".join(lines) + "\n"
