"""``diagnostics-app verify PROJECT [selection] [--sample FRACTION | --all] [--seed N] [--json]
[--repair]``: is the stored data still what the current code computes? (see
:mod:`diagnostics_app.core.verify_drift`).

Exit 0 when every checked row matches (identical or within tolerance), 1 when some row drifted
or could not be recomputed, 2 for bad input. ``--repair`` marks drifted rows stale with reason
``environment``; without it the project's store is never written.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from diagnostics_app import cli
from diagnostics_app.cli import EXIT_ISSUES, EXIT_OK, JSON_SCHEMA_VERSION, UsageError


def add_parser(sub: Any) -> None:
    """Register the ``verify`` subcommand on ``build_parser``'s subparsers."""
    from diagnostics_app.core.verify_drift import DEFAULT_FRACTION, DEFAULT_SEED

    p = sub.add_parser(
        "verify",
        help="recompute a sample of ok rows in a scratch store and report silent drift",
    )
    p.set_defaults(run=run)  # cli._dispatch calls it
    p.add_argument("project")
    cli._selection_flags(p)
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument(
        "--sample",
        default=str(DEFAULT_FRACTION),
        metavar="FRACTION",
        help=f"share of the ok rows to recompute, in (0, 1] (default {DEFAULT_FRACTION})",
    )
    how_many.add_argument("--all", action="store_true", help="recompute every ok row")
    p.add_argument(
        "--seed",
        default=str(DEFAULT_SEED),
        metavar="N",
        help=f"which sample: the same seed checks the same rows (default {DEFAULT_SEED})",
    )
    p.add_argument(
        "--scratch",
        metavar="DIR",
        help="where the temporary scratch store is made (default: the system's temporary folder)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--repair", action="store_true", help="mark drifted rows stale (reason: environment)"
    )


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise UsageError(f"diagnostics-app: --sample {text!r}: expected a fraction in (0, 1]")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"diagnostics-app: --seed {text!r}: expected an integer") from None


def run(args: argparse.Namespace) -> int:
    from diagnostics_app.core.verify_drift import verify

    fraction = 1.0 if args.all else _fraction(args.sample)
    seed = _seed(args.seed)
    session = cli._session(args.project)
    try:
        selection = cli._selection(args, session)
        rows = selection.select(session.diagnose())
        progress = None if args.json or not sys.stderr.isatty() else _progress
        result = verify(
            session,
            rows,
            fraction,
            seed,
            repair=args.repair,
            scratch_parent=args.scratch,
            progress=progress,
        )
    finally:
        session.close()
    if args.json:
        cli._print_json(
            {
                "schema_version": JSON_SCHEMA_VERSION,
                "project": args.project,
                "sample": {"fraction": fraction, "seed": seed},
                "environment": dict(result.current),
                "summary": result.summary(),
                "rows": [c.to_json(result.current) for c in result.checks],
                "repaired": [_row_id(r) for r in result.repaired],
            }
        )
    else:
        _print_text(result)
    return EXIT_OK if result.clean else EXIT_ISSUES


def _progress(line: str) -> None:
    print(line, file=sys.stderr)


def _row_id(row: Any) -> dict[str, Any]:
    k = row.key
    return {
        "source": k.source,
        "feature": k.feature,
        "calculator": k.calculator,
        "profile": k.profile,
        "params": dict(row.params),
    }


def _versions(values: Any, names: Any) -> str:
    if not values:
        return "not recorded"
    return ", ".join(f"{n} {values.get(n, '?')}" for n in names)


def _print_text(result: Any) -> None:
    from diagnostics_app.core.compare_text import summary_line
    from diagnostics_app.core.verify_drift import changed_versions

    s = result.summary()
    print(
        f"verified {s['checked']} of {s['eligible']} ok row{'s' if s['eligible'] != 1 else ''}"
        f" (sample {result.fraction:g}, seed {result.seed})"
    )
    for check in result.checks:
        k = check.row.key
        line = f"{check.status:<16} {k.source}  {k.feature}  {k.calculator}  {k.profile}"
        if check.comparison is not None:
            line += f"  {summary_line(check.comparison)}"
        if check.message:
            line += f"  {check.message}"
        print(line)
        if check.drifted:
            names = sorted(set(result.current) | set(check.produced_by or {}))
            print(f"    produced by: {_versions(check.produced_by, names)}")
            print(f"    now:         {_versions(result.current, names)}")
            changed = changed_versions(check.produced_by, result.current)
            if changed:
                print(f"    changed:     {', '.join(changed)}")
    counts = [f"{n} {status}" for status, n in s.items() if status not in ("eligible", "checked")]
    print(", ".join(c for c in counts if not c.startswith("0 ")) or "nothing to verify")
    for row in result.repaired:
        k = row.key
        print(f"marked stale (environment): {k.source}  {k.feature}  {k.calculator}  {k.profile}")
