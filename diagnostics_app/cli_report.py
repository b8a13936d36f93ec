"""``diagnostics-app report PROJECT -o report.html [selection]``: the QA report, one
self-contained HTML file (see :mod:`diagnostics_app.core.report_html`).

With selection flags, the selected rows get a picture of their lane; without, the regenerated
rows (those with a previous version) do. The summary and the list of rows that are not ok
always cover the whole project. Exit 0 when written, 2 for bad input (an unknown id, an
output path that cannot be written), with a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from diagnostics_app import cli
from diagnostics_app.cli import EXIT_OK, UsageError


def add_parser(sub: Any) -> None:
    """Register the ``report`` subcommand on ``build_parser``'s subparsers."""
    p = sub.add_parser("report", help="write the QA report: one self-contained HTML file")
    p.set_defaults(run=run)  # cli._dispatch calls it
    p.add_argument("project")
    p.add_argument("-o", "--output", required=True, metavar="HTML")
    cli._selection_flags(p)


def run(args: argparse.Namespace) -> int:
    from diagnostics_app.core import files
    from diagnostics_app.core.export import check_targets
    from diagnostics_app.core.report_html import build_report

    out = Path(args.output)
    if not out.name or out.is_dir():
        raise UsageError(f"diagnostics-app: -o {args.output!r}: is a folder, not a file name")
    if not out.parent.is_dir():
        raise UsageError(
            f"diagnostics-app: -o {args.output!r}: cannot write (no folder {str(out.parent)!r})"
        )
    session = cli._session(args.project)
    try:
        # never over the project file, an audio source or anything in the store
        check_targets(session.project, [out])
        selection = cli._selection(args, session)
        selected = None if selection.empty else selection.select(session.diagnose())
        text = build_report(session, selected)
    finally:
        session.close()
    try:
        files.atomic_write(out, lambda f: f.write(text.encode("utf-8")))
    except OSError as exc:
        raise UsageError(
            f"diagnostics-app: -o {args.output!r}: cannot write ({exc.strerror or exc})"
        ) from None
    print(files.printable(out), file=sys.stderr)  # one line, whatever the name holds
    return EXIT_OK
