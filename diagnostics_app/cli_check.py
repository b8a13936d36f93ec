"""``diagnostics-app check``: the diagnostics table, as text or as JSON (interface §4).

``check --json`` without selection flags prints a cached result while nothing it depends on
has changed, and otherwise derives the rows and saves what it printed for the next time: see
:mod:`diagnostics_app.core.check_cache`. The output and the exit code are the same either way.
"""

from __future__ import annotations

import argparse
import codecs
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

from diagnostics_app import cli
from diagnostics_app.core import check_cache

SELECTION_FLAGS = ("source", "track", "feature", "calculator", "profile", "param")


def check(args: argparse.Namespace) -> int:
    # --verify reads every file: a cached result cannot stand in for that
    if not args.json or args.verify or any(getattr(args, flag) for flag in SELECTION_FLAGS):
        return _derive(args, None, None)
    project = check_cache.ProjectFile.read(args.project)
    record = check_cache.find(project) if project is not None else None
    if record is None:
        return _derive(args, project, None)
    from diagnostics_app.core.calculators.registry import Registry

    registry = Registry.default()
    if _still_valid(record, registry):
        cli._warn_plugins(registry)
        _write_utf8(record.body)
        return record.exit_code
    return _derive(args, project, registry)  # the registry is not loaded twice


def _write_utf8(body: memoryview) -> None:
    """``sys.stdout.write(text)``, without decoding 30 MB only to encode it again when
    stdout is UTF-8 and translates no newline (then the bytes are the same)."""
    out = sys.stdout
    if (
        os.linesep == "\n"
        and isinstance(out, io.TextIOWrapper)
        and codecs.lookup(out.encoding).name == "utf-8"
    ):
        out.flush()
        out.buffer.write(body)
    else:
        out.write(str(body, "utf-8"))


def _still_valid(record: check_cache.Record, registry: Any) -> bool:
    """The code, the store and the audio files of the record's key are unchanged. The store is
    opened as the full check opens it (which fails the jobs of dead processes: a change)."""
    from diagnostics_app.core.errors import DiagnosticsError
    from diagnostics_app.core.store import FeatureStore

    try:
        code = check_cache.code_key(registry)
        if code is None or code[0] != record.key["code"]:
            return False
        with FeatureStore.open(record.store_folder) as store:
            return record.matches(code[0], store)
    except (DiagnosticsError, OSError):  # the full check reports what it has to
        return False


def _derive(
    args: argparse.Namespace, project: check_cache.ProjectFile | None, registry: Any
) -> int:
    """The rows derived from the project and the store (and, with ``project``, the result
    saved for the next check when nothing changed meanwhile)."""
    from diagnostics_app import check_json
    from diagnostics_app.core.diagnostics import Diagnosis, Row

    session = cli._session(args.project, registry)
    session.store.verify_content = args.verify
    try:
        selection = cli._selection(args, session)
        before = _snapshot(session, project) if project is not None else None
        diagnosis = session.diagnose()
        if selection.empty:  # what select() would return: every row, in order
            rows: Sequence[Row] = diagnosis.rows
            shown = diagnosis
        else:
            rows = selection.select(diagnosis)
            shown = Diagnosis(tuple(rows))
        code = cli.EXIT_OK if shown.healthy else cli.EXIT_ISSUES
        if not args.json:
            print(cli._table(rows))
            summary = shown.summary()
            print(
                "\n" + ", ".join(f"{n} {s}" for s, n in summary.items() if n) if rows else "no rows"
            )
            return code
        head = {
            "schema_version": cli.JSON_SCHEMA_VERSION,
            "project": args.project,
            "summary": cli._summary_json(shown),
            # unknown keys outside requests: kept, changing nothing (README, "Mistakes")
            "warnings": list(session.project.warnings),
            "rows": [],
        }
        text = check_json.check_text(cli._json_text(head), rows)
        sys.stdout.write(text)
        if before is not None and _all_audio_read(session):
            after = _snapshot(session, check_cache.ProjectFile.read(args.project))
            if check_cache.save_allowed(before, after):
                check_cache.save(before[0], code, text)
        return code
    finally:
        session.close()


def _snapshot(session: Any, project: check_cache.ProjectFile | None) -> Any:
    """The inputs now (None: not to be saved). Keeping a result never fails a check."""
    from diagnostics_app.core.errors import DiagnosticsError

    if project is None:
        return None
    p = session.project
    try:
        return check_cache.snapshot(
            project,
            str(p.cache_path()),
            session.registry,
            session.store,
            [str(p.audio_path(s)) for s in p.sources],
        )
    except (DiagnosticsError, OSError):
        return None


def _all_audio_read(session: Any) -> bool:
    """A read error may be passing (a network share): such a result is not kept."""
    return all(session.source_status(s.id).facts is not None for s in session.project.sources)
