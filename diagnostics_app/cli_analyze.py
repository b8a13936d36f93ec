"""What ``analyze`` and ``prune`` print: the job listing with the pass each job shared, and
plain text in aligned columns.

Jobs of one pass (same source, profile and parameters) share one STFT, and every pass of a
source shares one decode (the passes of a source run together), so the pass's time cannot be
told apart per calculator, and the passes of one source share their group's time evenly. ``analyze --json`` says so instead of
repeating it: each job carries ``pass`` (the pass's number in this listing, from 1),
``pass_seconds`` (the pass's time, on the first job of the pass only; null on the others and
when nothing ran) and ``seconds`` (the pass's time divided evenly among its jobs, so that a
sum over jobs is the sum over passes, never a double count; null when nothing ran).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from typing import Any


def planned_listing(jobs: Iterable[Any]) -> list[dict[str, Any]]:
    """``analyze --dry-run --json``'s jobs (``PlannedJob``s), by pass, in the order they run."""
    from diagnostics_app.core.planner import group_passes

    out = []
    for number, group in enumerate(group_passes(jobs), 1):
        for job in group:
            out.append(
                {
                    **job.to_json(),
                    "status": "planned",
                    "seconds": None,
                    "message": None,
                    "pass": number,
                    "pass_seconds": None,
                }
            )
    return out


def run_listing(results: Iterable[Any]) -> list[dict[str, Any]]:
    """``analyze --json``'s jobs, from the passes' results (``BatchResult``s)."""
    out = []
    for number, result in enumerate(results, 1):
        jobs = result.batch.jobs
        total = round(result.seconds, 4)
        shares = [round(total / len(jobs), 4)] * len(jobs)
        shares[-1] = round(total - sum(shares[:-1]), 4)  # the shares add up to the pass
        for i, job in enumerate(jobs):
            out.append(
                {
                    **job.to_json(),
                    "status": result.status,
                    "seconds": shares[i],
                    "message": result.message,
                    "pass": number,
                    "pass_seconds": total if i == 0 else None,
                }
            )
    return out


def add_cluster_flags(p: argparse.ArgumentParser) -> None:
    """``analyze``'s ``--scheduler ADDR`` and ``--workers N`` (passes on a Dask cluster)."""
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run the passes on the Dask cluster of this scheduler (tcp://HOST:8786)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run the passes on a local Dask cluster of N processes",
    )


def cluster_flags_problem(args: argparse.Namespace) -> str | None:
    """The one-line usage error of the cluster flags, if any (nothing of Dask imported)."""
    if args.workers is None and args.scheduler is None:
        return None
    from diagnostics_app.core.cluster import ClusterError, check_address, check_local_workers

    if args.workers is not None:
        try:
            check_local_workers(args.workers)
        except ClusterError as exc:
            return f"diagnostics-app: --workers {exc}"
    if args.workers is not None and args.scheduler is not None:
        return "diagnostics-app: --scheduler and --workers exclude each other"
    if args.scheduler is not None:
        try:
            check_address(args.scheduler)
        except ClusterError as exc:
            return f"diagnostics-app: {exc}"
    return None


def run_passes(session: Any, jobs: Sequence[Any], args: argparse.Namespace) -> list[Any]:
    """Queue and run the planned ``jobs``: on this process's threads (``--jobs``), or with
    ``--scheduler``/``--workers`` on a Dask cluster (core.cluster), reached or started only
    when there is work. Returns the passes' ``BatchResult``s."""
    if args.scheduler is None and args.workers is None:
        session.enqueue(jobs, origin="cli")
        return list(session.runner.run_all(workers=args.jobs if args.jobs > 1 else 0))
    if not jobs:
        return []
    from diagnostics_app.core.cluster import ClusterPasses, open_cluster  # imports Dask

    with open_cluster(args.scheduler, args.workers) as cluster:
        passes = ClusterPasses(session.store, cluster.client)
        try:
            session.enqueue(jobs, origin="cli")
            return list(session.runner.run_all(workers=cluster.in_flight(), run=passes))
        finally:
            passes.close()


def analyze_lines(listing: Sequence[dict[str, Any]]) -> list[str]:
    """One line per job, in aligned columns: status, source, calculator, profile (and
    parameters), features, the pass and its time (on its first job), the message."""
    rows = []
    for item in listing:
        profile = item["profile"]
        if item["params"]:
            profile += " " + json.dumps(item["params"], separators=(",", ":"))
        seconds = item.get("pass_seconds")
        rows.append(
            (
                item["status"],
                item["source"],
                item["calculator"],
                profile,
                ",".join(item["features"]),
                f"pass {item['pass']}",
                "" if seconds is None else f"{seconds:.2f} s",
                item["message"] or "",
            )
        )
    return aligned(rows, right=(6,))


def aligned(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Rows of cells as lines of aligned columns (two spaces apart; the last column free)."""
    if not rows:
        return []
    n = len(rows[0])
    widths = [max(len(r[i]) for r in rows) for i in range(n - 1)]
    lines = []
    for r in rows:
        cells = [
            r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(n - 1)
        ]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return lines


def human_bytes(n: int) -> str:
    """2,411,724 → "2.3 MB" (powers of 1024, as file managers show)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "bytes":
                return "1 byte" if n == 1 else f"{n} bytes"
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def prune_lines(listing: Sequence[dict[str, Any]], dry_run: bool) -> list[str]:
    """Each extraneous entry (aligned), then "would delete 2 extraneous entries (2.3 MB)"."""
    verb = "would delete" if dry_run else "deleted"
    rows = [
        (
            verb,
            item["source"],
            item["feature"],
            item["calculator"],
            item["profile"]
            + (" " + json.dumps(item["params"], separators=(",", ":")) if item["params"] else ""),
            human_bytes(item["bytes"] or 0),
        )
        for item in listing
    ]
    lines = aligned(rows, right=(5,))
    if not listing:
        return [*lines, "no extraneous entries: nothing to delete"]
    n = len(listing)
    total = human_bytes(sum(i["bytes"] or 0 for i in listing))
    noun = "extraneous entry" if n == 1 else "extraneous entries"
    return [*lines, f"{verb} {n} {noun} ({total})"]
