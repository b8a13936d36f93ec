"""``diagnostics-app add`` and ``remove``: projects from folders (rules in ``core/library.py``).

``add PROJECT PATH... [--recursive] [--request FEATURE[:PROFILE]]... [--track-per-source]
[--dry-run] [--json]`` creates PROJECT if it does not exist and adds every audio file under the
paths as a source. Tracks: none by default (sources only); ``--request`` gives each new source
one track asking for those features; ``--track-per-source`` alone gives each one track with the
default requests (peaks, rms, spectrogram: what a file dropped on the window gets).

``remove PROJECT [SOURCE_ID...] [--missing] [--dry-run] [--json]`` removes sources, and the
tracks that read them (a track reads exactly one source); their cached features become
extraneous, for ``prune``.

Text output: one line per source added or removed, per file already present, per file skipped
(with the reason), then a summary; file names are escaped (``\\n`` for a newline) so that each
stays on its line. Exit 0; 1 when something was wrong with a file or folder (broken audio, an
unreadable folder, a link loop: not for files that are simply not audio); 2 for bad input, with
nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from diagnostics_app.cli import (
    EXIT_ISSUES,
    EXIT_OK,
    JSON_SCHEMA_VERSION,
    UsageError,
    _print_json,
    _warn_plugins,
)
from diagnostics_app.core import edits, library
from diagnostics_app.core.errors import escaped
from diagnostics_app.core.files import printable
from diagnostics_app.core.project import DEFAULT_PROFILE, Project, Request, load_project

_KNOWN_SHOWN = 8  # ids listed in an "unknown source" message


def add_parsers(sub: Any) -> None:
    """Register ``add`` and ``remove`` on ``build_parser``'s subparsers."""
    p = sub.add_parser("add", help="add the audio files under folders (or files) as sources")
    p.add_argument("project", help="the project file (created if it does not exist)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("-r", "--recursive", action="store_true", help="look inside subfolders too")
    p.add_argument(
        "--request",
        action="append",
        default=[],
        metavar="FEATURE[:PROFILE]",
        help="a track per new source asking for this feature (repeatable)",
    )
    p.add_argument(
        "--track-per-source",
        action="store_true",
        help="a track per new source (with the default requests unless --request is given)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_add)  # cli._dispatch calls it

    p = sub.add_parser("remove", help="remove sources (and their tracks) from a project")
    p.add_argument("project")
    p.add_argument("sources", nargs="*", metavar="SOURCE_ID")
    p.add_argument(
        "--missing", action="store_true", help="remove the sources whose files no longer exist"
    )
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_remove)


# --- add -------------------------------------------------------------------------------------


def _open_or_new(path: str) -> tuple[Project, bool]:
    """The project at ``path``, or a new one (not yet written) when nothing is there."""
    if os.path.lexists(path):
        return load_project(path), False
    target = Path(os.path.abspath(path))
    return Project(name=target.stem or "Untitled", path=target), True


def _requests(items: list[str], project: Project) -> tuple[Request, ...]:
    from diagnostics_app.core.calculators.registry import Registry

    registry = Registry.default()
    _warn_plugins(registry)
    known = registry.features()
    out: list[Request] = []
    for item in items:
        feature, _, profile = item.partition(":")
        feature, profile = feature.strip(), profile.strip() or DEFAULT_PROFILE
        if feature not in known:
            raise UsageError(
                f"diagnostics-app: --request {item!r}: unknown feature {feature!r} "
                f"(known: {', '.join(sorted(known))})"
            )
        if profile not in project.profile_names():
            raise UsageError(
                f"diagnostics-app: --request {item!r}: unknown profile {profile!r} "
                f"(known: {', '.join(project.profile_names())})"
            )
        req = Request(feature, profile=profile)
        if req not in out:
            out.append(req)
    return tuple(out)


def run_add(args: argparse.Namespace) -> int:
    if problems := library.missing_roots(args.paths):
        raise UsageError(f"diagnostics-app: {problems[0]}")
    project, created = _open_or_new(args.project)
    requests: tuple[Request, ...] | None = None
    if args.request:
        requests = _requests(args.request, project)
    elif args.track_per_source:
        requests = library.DEFAULT_TRACK_REQUESTS
    assert project.path is not None
    found = library.scan(
        args.paths, recursive=args.recursive, ignore=(project.path, project.cache_path())
    )
    addition = library.plan_addition(project, found, requests)
    if not args.dry_run and (created or addition.sources):
        from diagnostics_app.core.project import save_project

        after = edits.add_sources(project, addition.sources, addition.tracks)
        save_project(replace(after, path=project.path))
    _report_add(args, project, created, addition)
    return EXIT_ISSUES if addition.problems else EXIT_OK


def _report_add(
    args: argparse.Namespace, project: Project, created: bool, addition: library.Addition
) -> None:
    tracks = {t.source: t for t in addition.tracks}
    if args.json:
        _print_json(
            {
                "schema_version": JSON_SCHEMA_VERSION,
                "project": str(project.path),
                "dry_run": args.dry_run,
                "created": created,
                "added": [
                    {
                        "source": s.id,
                        "path": s.path,
                        "track": tracks[s.id].id if s.id in tracks else None,
                    }
                    for s in addition.sources
                ],
                "present": [{"path": p.path, "source": p.source_id} for p in addition.present],
                "skipped": [
                    {"path": s.path, "reason": s.reason, "problem": s.problem}
                    for s in addition.skipped
                ],
                "hidden": addition.hidden,
            }
        )
        return
    would = "would " if args.dry_run else ""
    if created:
        print(f"{would}create {printable(str(project.path))}")
    out = sys.stdout
    for s in addition.sources:
        track = tracks.get(s.id)
        extra = (
            f"  (track {track.id}: {', '.join(_request_text(r) for r in track.requests)})"
            if track
            else ""
        )
        out.write(f"{would}add {s.id}  {printable(s.path)}{extra}\n")
    for p in addition.present:
        out.write(f"already {printable(p.path)}  (source {p.source_id})\n")
    for skip in addition.skipped:
        out.write(f"skipped {escaped(skip.line())}\n")
    problems = sum(s.problem for s in addition.skipped)
    summary = (
        f"{len(addition.sources)} source(s) {'would be ' if args.dry_run else ''}added, "
        f"{len(addition.present)} already in the project, {len(addition.skipped)} skipped"
        + (f" ({problems} with a problem)" if problems else "")
    )
    if addition.hidden:
        summary += f", {addition.hidden} hidden name(s) passed over"
    print(summary)


def _request_text(r: Request) -> str:
    return r.feature if r.profile == DEFAULT_PROFILE else f"{r.feature}:{r.profile}"


# --- remove ----------------------------------------------------------------------------------


def run_remove(args: argparse.Namespace) -> int:
    if not args.sources and not args.missing:
        raise UsageError("diagnostics-app remove: give SOURCE_ID(s) or --missing (see --help)")
    project = load_project(args.project)
    known = {s.id for s in project.sources}
    for sid in args.sources:
        if sid not in known:
            track = next((t for t in project.tracks if t.id == sid), None)
            if track is not None:  # the likeliest mix-up: ids of tracks and sources look alike
                raise UsageError(
                    f"diagnostics-app: {sid!r} is a track, not a source (remove takes source "
                    f"ids; track {sid!r} reads source {track.source!r})"
                )
            shown = ", ".join(s.id for s in project.sources[:_KNOWN_SHOWN])
            more = ", ..." if len(project.sources) > _KNOWN_SHOWN else ""
            raise UsageError(
                f"diagnostics-app: unknown source {sid!r} (known: {shown or 'none'}{more})"
            )
    ids = list(dict.fromkeys(args.sources))
    if args.missing:
        ids.extend(sid for sid in library.missing_sources(project) if sid not in ids)
    tracks = edits.tracks_removed_with(project, *ids)
    if ids and not args.dry_run:
        from diagnostics_app.core.project import save_project

        save_project(edits.remove_sources(project, tuple(ids)))
    if args.json:
        _print_json(
            {
                "schema_version": JSON_SCHEMA_VERSION,
                "project": str(project.path),
                "dry_run": args.dry_run,
                "removed": [{"source": sid, "path": project.source(sid).path} for sid in ids],
                "tracks": [{"track": t.id, "source": t.source} for t in tracks],
            }
        )
        return EXIT_OK
    would = "would " if args.dry_run else ""
    for sid in ids:
        print(f"{would}remove source {sid}  {printable(project.source(sid).path)}")
    for t in tracks:
        print(f"{would}remove track {t.id}  (reads source {t.source})")
    print(
        f"{len(ids)} source(s) and {len(tracks)} track(s) {'would be ' if would else ''}removed"
        + (
            f"; their cached features {'would become' if would else 'are now'} extraneous"
            " (prune deletes them)"
            if ids
            else ""
        )
    )
    return EXIT_OK
