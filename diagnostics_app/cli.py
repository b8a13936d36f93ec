"""The command line: ``diagnostics-app`` (see interface §4 and the README).

Exit codes: 0 success / all ok; 1 issues found or a job failed; 2 bad input, with a one-line
message on stderr and never a traceback. Qt is imported only by the GUI commands, so the
headless commands run on machines without any display libraries.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from diagnostics_app import __version__

# first of this package's modules but cli: a cached check trusts only code files older than
# this import (check_cache.STARTED_NS)
from diagnostics_app.core import check_cache  # noqa: F401
from diagnostics_app.core.states import FINISHED_JOB

if TYPE_CHECKING:
    from diagnostics_app.core.events import JobUpdated

EXIT_OK, EXIT_ISSUES, EXIT_BAD_INPUT = 0, 1, 2
JSON_SCHEMA_VERSION = 1


class UsageError(Exception):
    """Bad input on the command line: exit 2 with this one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _selection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source", action="append", default=[], metavar="ID", help="a source id (repeatable)"
    )
    p.add_argument(
        "--track", action="append", default=[], metavar="ID", help="a track id (repeatable)"
    )
    p.add_argument(
        "--feature", action="append", default=[], metavar="F", help="a feature (repeatable)"
    )
    p.add_argument(
        "--calculator",
        action="append",
        default=[],
        metavar="C",
        help="a calculator id (repeatable)",
    )
    p.add_argument(
        "--profile", action="append", default=[], metavar="P", help="a profile (repeatable)"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="a request parameter (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    from diagnostics_app import cli_analyze

    parser = _Parser(prog="diagnostics-app", description="Diagnostics for audio feature caches.")
    parser.add_argument("--version", action="version", version=f"diagnostics-app {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("open", help="open the GUI on a project")
    p.add_argument("project")

    p = sub.add_parser(
        "demo", help="write a demo project with generated audio into DIR and open it"
    )
    p.add_argument("dir")
    p.add_argument("--no-gui", action="store_true", help="only write (and analyse) the demo")

    p = sub.add_parser("check", help="the diagnostics table; exit 1 if any row is not ok")
    p.add_argument("project")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verify", action="store_true", help="also check each file's checksum")
    _selection_flags(p)

    p = sub.add_parser("analyze", help="compute what the selection needs, and nothing else")
    p.add_argument("project")
    _selection_flags(p)
    p.add_argument("--all", action="store_true", help="recompute ok rows of the selection too")
    p.add_argument("--dry-run", action="store_true", help="list the jobs without running them")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="passes run in parallel")
    cli_analyze.add_cluster_flags(p)  # --scheduler ADDR, --workers N
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("explain", help="why a row has its state: stored vs current fingerprint")
    p.add_argument("project")
    _selection_flags(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("prune", help="delete extraneous entries, and only those")
    p.add_argument("project")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", help="write one row's feature data with its provenance")
    p.add_argument("project")
    _selection_flags(p)
    p.add_argument("--format", choices=("npy", "csv", "json"), required=True)
    p.add_argument("-o", "--output", required=True, metavar="PATH")

    p = sub.add_parser("screenshot", help="render the main window offscreen to a PNG, for QA")
    p.add_argument("project")
    p.add_argument("-o", "--output", required=True, metavar="PNG")
    p.add_argument("--select", metavar="SOURCE[/TRACK]")
    p.add_argument(
        "--row", metavar="FEATURE", help="select this feature's row (its lane is marked)"
    )
    p.add_argument("--size", default="1400x900", metavar="WxH")
    p.add_argument(
        "--time-selection", metavar="START:END", help="select this time range (s) in the plots"
    )

    from diagnostics_app import cli_add, cli_compare, cli_report, cli_trash, cli_verify

    cli_trash.add_parser(sub)
    cli_add.add_parsers(sub)
    cli_compare.add_parser(sub)
    cli_verify.add_parser(sub)
    cli_report.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        from diagnostics_app import cli_input  # here: after check_cache's start time

        cli_input.escape_surrogates_on_stdout()
        args = build_parser().parse_args(args_list)
        if problem := cli_input.null_byte(args):
            raise UsageError(problem)
        if args.command in ("check", "analyze", "explain", "prune", "export"):
            # one-shot commands build ~10 objects per row and free them all at exit: the
            # cyclic collector would only walk them again and again (there are no cycles)
            gc.disable()
        return _dispatch(args)
    except UsageError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        print("diagnostics-app: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (``... | head``): stop quietly
        with contextlib.suppress(OSError, ValueError, AttributeError):  # nor at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ISSUES
    except OSError as exc:  # the file system refused (e.g. demo DIR under a regular file)
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"diagnostics-app: {where}{exc.strerror or exc}")
    except Exception as exc:
        from diagnostics_app.core.errors import DiagnosticsError

        if isinstance(exc, DiagnosticsError):
            _fail(f"diagnostics-app: {exc}")
        raise
    return EXIT_BAD_INPUT


def _fail(message: str) -> None:
    print(message.splitlines()[0] if message else "diagnostics-app: error", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd is None:
        return _gui(None)
    if cmd == "open":
        if not _has_display():  # no window to say it in: the one line, exit 2
            _require_file(args.project)
        return _gui(args.project)  # the line on stderr and a message over the welcome screen
    if cmd == "demo":
        return _demo(args)
    if (run := getattr(args, "run", None)) is not None:  # a command module's (set_defaults)
        return int(run(args))
    handlers = {
        "check": _check,
        "analyze": _analyze,
        "explain": _explain,
        "prune": _prune,
        "export": _export,
        "screenshot": _screenshot,
    }
    return handlers[cmd](args)


def _require_file(path: str) -> None:
    if not Path(path).is_file():
        raise UsageError(f"diagnostics-app: {path}: project file not found")


# --- helpers ---------------------------------------------------------------------------------


def _session(path: str, registry: Any = None) -> Any:
    from diagnostics_app.core.files import printable
    from diagnostics_app.core.session import Session

    session = Session.open(path, registry)
    _warn_plugins(session.registry)
    for warning in session.project.warnings:  # unknown keys that change nothing (README)
        print(f"warning: {printable(path)}: {warning}", file=sys.stderr)
    return session


def _warn_plugins(registry: Any) -> None:
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)


def _parse_params(items: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    from diagnostics_app import cli_input

    out = []
    for item in items:
        if "=" not in item:
            raise UsageError(f"diagnostics-app: --param {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        key = key.strip()
        try:
            parsed: Any = json.loads(value)
        except (ValueError, RecursionError):
            parsed = value
        if problem := cli_input.bad_param(key, parsed, item):
            raise UsageError(problem)
        out.append((key, parsed))
    return tuple(out)


def _selection(args: argparse.Namespace, session: Any) -> Any:
    from diagnostics_app.core.planner import Selection

    project = session.project
    for sid in args.source:
        if sid not in {s.id for s in project.sources} and sid not in {
            e.key.source_id for e in session.store.entries()
        }:
            raise UsageError(
                f"diagnostics-app: unknown source {sid!r} (known: {', '.join(s.id for s in project.sources)})"
            )
    for tid in args.track:
        if tid not in {t.id for t in project.tracks}:
            raise UsageError(
                f"diagnostics-app: unknown track {tid!r} (known: {', '.join(t.id for t in project.tracks)})"
            )
    for pname in args.profile:
        if pname not in project.profile_names() and not any(  # an invalid row's, too
            r.profile == pname for t in project.tracks for r in t.requests
        ):
            raise UsageError(
                f"diagnostics-app: unknown profile {pname!r} (known: {', '.join(project.profile_names())})"
            )
    for cid in args.calculator:
        if cid not in session.registry:
            raise UsageError(f"diagnostics-app: unknown calculator {cid!r}")
    known_features = set(session.registry.features())
    for f in args.feature:
        if f not in known_features and not any(
            r.feature == f for t in project.tracks for r in t.requests
        ):
            raise UsageError(
                f"diagnostics-app: unknown feature {f!r} (known: {', '.join(sorted(known_features))})"
            )
    return Selection(
        sources=tuple(args.source),
        tracks=tuple(args.track),
        features=tuple(args.feature),
        calculators=tuple(args.calculator),
        profiles=tuple(args.profile),
        params=_parse_params(args.param),
    )


def _one_row(args: argparse.Namespace, session: Any) -> Any:
    if not args.source or not args.feature:
        raise UsageError("diagnostics-app: --source and --feature are required")
    selection = _selection(args, session)
    rows = selection.select(session.diagnose())
    if not args.param:  # without --param, prefer the row with no request params
        plain = [r for r in rows if not r.params]
        rows = plain or rows
    if not rows:
        raise UsageError("diagnostics-app: no row matches that selection")
    if len(rows) > 1:
        cands = "; ".join(_row_label(r) for r in rows)
        raise UsageError(f"diagnostics-app: ambiguous selection, {len(rows)} rows match: {cands}")
    return rows[0]


def _row_label(row: Any) -> str:
    params = " ".join(f"--param {k}={json.dumps(v)}" for k, v in row.params.items())
    return f"--source {row.key.source} --feature {row.key.feature} --calculator {row.key.calculator} --profile {row.key.profile} {params}".strip()


def _summary_json(diagnosis: Any) -> dict[str, int]:
    return dict(diagnosis.summary())


def _print_json(obj: Any) -> None:
    sys.stdout.write(_json_text(obj))


def _json_text(obj: Any) -> str:
    """Readable and fast: one top-level key per line, one list item (a row, a job) per line.
    ``json.dump(indent=...)`` would run the pure-Python encoder, 3x slower on 100,000 rows."""

    def enc(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=str)

    if not isinstance(obj, dict):
        return enc(obj) + "\n"
    parts = []
    for key, value in obj.items():
        if isinstance(value, list) and value:
            items = ",\n  ".join(enc(v) for v in value)
            parts.append(f"{enc(key)}: [\n  {items}\n ]")
        else:
            parts.append(f"{enc(key)}: {enc(value)}")
    return "{" + ",\n ".join(parts) + "}\n"


def _table(rows: Sequence[Any]) -> str:
    headers = ("source", "feature", "calculator", "v", "profile", "state", "tracks", "why")
    lines = [headers]
    for r in rows:
        profile = r.key.profile + (
            " " + json.dumps(dict(r.params), separators=(",", ":")) if r.params else ""
        )
        why = r.message or ""
        if r.state == "running" and r.progress is not None:
            why = f"{r.progress * 100:.0f}% {why}".strip()
        lines.append(
            (
                r.key.source,
                r.key.feature,
                r.key.calculator,
                str(r.calculator_version or ""),
                profile,
                r.state,
                ",".join(r.tracks),
                why,
            )
        )
    widths = [min(max(len(line[i]) for line in lines), 40) for i in range(len(headers) - 1)]
    out = []
    for line in lines:
        cells = [line[i][:40].ljust(widths[i]) for i in range(len(widths))]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(out)


# --- commands --------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    from diagnostics_app.cli_check import check

    return check(args)


class _Progress:
    """Per-job progress lines on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last: dict[str, int] = {}

    def __call__(self, event: JobUpdated) -> None:
        if not self.enabled:
            return
        job_id, state, label = event.job_id, event.state, event.label
        pct = int((event.progress or 0) * 100)
        if state == "running" and self.last.get(job_id) == pct:
            return
        self.last[job_id] = pct
        end = "\n" if state in FINISHED_JOB else ""
        sys.stderr.write(f"\r[{job_id[:6]}] {label[:50]:<50} {state:<9} {pct:3d}%" + end)
        sys.stderr.flush()


def _analyze(args: argparse.Namespace) -> int:
    from diagnostics_app import cli_analyze
    from diagnostics_app.cli_analyze import analyze_lines, planned_listing, run_listing
    from diagnostics_app.core.planner import active_elsewhere, describe_elsewhere, plan

    if args.jobs < 1:
        raise UsageError("diagnostics-app: --jobs must be at least 1")
    if problem := cli_analyze.cluster_flags_problem(args):
        raise UsageError(problem)
    session = _session(args.project)
    try:
        selection = _selection(args, session)
        before = session.diagnose()
        jobs = plan(before, selection, include_ok=args.all)
        # rows another live process has queued or runs: its work, not planned again here
        elsewhere = active_elsewhere(before, session.store.jobs(active_only=True), selection)
        if args.dry_run:
            listing = planned_listing(jobs)
            failed = False
        else:
            session.events.job_updated.connect(_Progress(sys.stderr.isatty()))
            results = cli_analyze.run_passes(session, jobs, args)  # here or on a Dask cluster
            listing = run_listing(results)
            failed = any(r.status != "done" for r in results)
        # a dry run changed nothing: its summary is the diagnosis it planned from (deriving
        # again cost ~0.6 s on 20,000 sources)
        diagnosis = before if args.dry_run else session.diagnose()
        if args.json:
            _print_json(
                {
                    "schema_version": JSON_SCHEMA_VERSION,
                    "jobs": listing,
                    "summary": _summary_json(diagnosis),
                    "elsewhere": [e.to_json() for e in elsewhere],
                }
            )
        else:
            for line in analyze_lines(listing):
                print(line)
            for line in describe_elsewhere(elsewhere):
                print(line)
            if not listing and not elsewhere:
                print("nothing to do")
        return EXIT_ISSUES if failed else EXIT_OK
    finally:
        session.close()


def _explain(args: argparse.Namespace) -> int:
    # which fields differ and how values read: core.explain, the same as the GUI's panel
    from diagnostics_app.core.explain import ABSENT, compare, format_value, profile_text

    session = _session(args.project)
    try:
        row = _one_row(args, session)
        fields = compare(row.stored, row.current)
        if args.json:
            _print_json(
                {
                    "schema_version": JSON_SCHEMA_VERSION,
                    "row": row.to_json(),
                    "stored": row.stored,
                    "current": row.current,
                    "fields": [
                        {
                            "input": f.input,
                            "stored": None if f.stored is ABSENT else f.stored,
                            "current": None if f.current is ABSENT else f.current,
                            "differs": f.differs,
                        }
                        for f in fields
                    ],
                }
            )
        else:
            calc = row.key.calculator or "no calculator"  # an invalid row may have none
            if row.calculator_version is not None:
                calc += f" v{row.calculator_version}"
            profile = profile_text(row.key.profile, row.params)
            print(f"{row.key.source} / {row.key.feature}  ({calc}, profile {profile})")
            print(f"state: {row.state}" + (f" — {row.message}" if row.message else ""))
            print(f"tracks: {', '.join(row.tracks) or '(none)'}")
            if fields:
                width = max(len(f.input) for f in fields)
                print(f"\n  {'input'.ljust(width)}  {'stored':<{_CELL}}  current")
                for f in fields:
                    stored, current = format_value(f.stored, _CELL), format_value(f.current, _CELL)
                    mark = "≠" if f.differs else " "
                    print(f"{mark} {f.input.ljust(width)}  {stored:<{_CELL}}  {current}")
        return EXIT_OK if row.state == "ok" else EXIT_ISSUES
    finally:
        session.close()


_CELL = 30  # characters of a value in explain's text table


def _prune(args: argparse.Namespace) -> int:
    from diagnostics_app.core.states import extraneous

    session = _session(args.project)
    try:
        rows = extraneous(session.diagnose().rows)
        listing = [
            {
                "source": r.key.source,
                "feature": r.key.feature,
                "calculator": r.key.calculator,
                "profile": r.key.profile,
                "params": dict(r.params),
                "bytes": r.nbytes,
            }
            for r in rows
        ]
        if not args.dry_run and rows:
            cmd = session.prune(rows)
            if cmd is not None:
                session.store.purge(cmd.prune_id)  # the CLI has no undo: delete for real
        if args.json:
            _print_json(
                {
                    "schema_version": JSON_SCHEMA_VERSION,
                    "dry_run": args.dry_run,
                    "pruned": listing,
                    "bytes": sum(i["bytes"] or 0 for i in listing),
                }
            )
        else:
            from diagnostics_app.cli_analyze import prune_lines

            for line in prune_lines(listing, args.dry_run):
                print(line)
        return EXIT_OK
    finally:
        session.close()


def _export(args: argparse.Namespace) -> int:
    from diagnostics_app.core import files
    from diagnostics_app.core.export import export_row

    session = _session(args.project)
    try:
        row = _one_row(args, session)
        if row.state != "ok":
            raise UsageError(
                f"diagnostics-app: refusing to export {row.key.source}/{row.key.feature}: state is {row.state}"
                + (f" ({row.message})" if row.message else "")
            )
        out = export_row(session, row, args.format, Path(args.output))
        print(files.printable(out), file=sys.stderr)  # one line, whatever the name holds
        return EXIT_OK
    finally:
        session.close()


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in (
        "darwin",
        "win32",
    )


def _gui(project: str | None) -> int:
    if not _has_display():
        raise UsageError(
            "diagnostics-app: no display available; set QT_QPA_PLATFORM=offscreen, run under xvfb-run, "
            "or use 'diagnostics-app screenshot PROJECT -o out.png'"
        )
    from diagnostics_app.qt.app import run_gui

    return run_gui(project)


def _demo(args: argparse.Namespace) -> int:
    from diagnostics_app.core.demo import write_demo

    path = write_demo(args.dir)
    print(path)
    if args.no_gui:
        return EXIT_OK
    return _gui(str(path))


def _screenshot(args: argparse.Namespace) -> int:
    _require_file(args.project)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        if w < 200 or h < 150:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"diagnostics-app: --size {args.size!r}: expected WxH, at least 200x150"
        ) from None
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from diagnostics_app.qt.app import screenshot

    return screenshot(
        args.project, Path(args.output), args.select, (w, h), args.time_selection, args.row
    )
