"""Silent drift: stored data that the current code no longer computes, although no input of its
fingerprint changed (``diagnostics-app verify``).

A fingerprint holds what a calculator declares (audio, parameters, its version); the numeric
libraries under it (numpy, scipy, libsndfile) are not inputs, and an upgrade of one can change
the output without any row turning stale. So a seeded sample of the ``ok`` rows is computed
again by the same code path as ``analyze`` (a job runner and a pass writer, so the same
storage encoding) into a *scratch* store in a temporary folder outside the project's store,
and each fresh feature is compared with the stored one by the comparison rules of
:mod:`.compare`. A row whose verdict is ``differs`` has drifted; the library versions that
produced it (its entry's provenance) are reported beside the current ones.

The project's store is read, never written, unless ``repair`` is asked: then each drifted
entry is marked in the store with reason ``environment`` (see
:meth:`~.store.FeatureStore.mark_environment`); diagnosis shows it ``stale`` with that reason
until it is regenerated (a new commit of the entry drops the mark).

Sampling is deterministic: the eligible rows in key order, ``random.Random(seed)`` picks
``ceil(fraction × n)`` of them (at least one when any is eligible), so a CI job checks the
same rows on every run with the same seed, and another seed checks others.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagnostics_app.core.compare import compare_sides, side_of_entry
from diagnostics_app.core.compare_rules import Comparison
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.events import SessionEvents
from diagnostics_app.core.files import printable
from diagnostics_app.core.jobs import JobRunner
from diagnostics_app.core.planner import PlannedJob
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import EntryKey, FeatureStore, StoredEntry, current_provenance
from diagnostics_app.core.store.causes import os_cause

DEFAULT_FRACTION = 0.1
DEFAULT_SEED = 0


def row_order(row: Row) -> tuple[str, str, str, str, str]:
    k = row.key
    return (k.source, k.feature, k.calculator, k.profile, k.params)


def sample_rows(rows: Iterable[Row], fraction: float, seed: int) -> list[Row]:
    """The rows to check, in key order: ``ceil(fraction × n)`` of ``rows`` (at least one if
    any), chosen by ``random.Random(seed)`` from the rows in key order."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ordered = sorted(rows, key=row_order)
    if not ordered:
        return []
    count = min(len(ordered), max(1, math.ceil(fraction * len(ordered) - 1e-9)))
    picked = random.Random(seed).sample(range(len(ordered)), count)
    return [ordered[i] for i in sorted(picked)]


@dataclass(frozen=True)
class RowCheck:
    """One sampled row: its comparison with a fresh computation, and who produced each."""

    row: Row
    comparison: Comparison | None  # None when it could not be recomputed (``message`` says why)
    produced_by: Mapping[str, Any] | None  # the stored entry's provenance (None: not recorded)
    message: str | None = None
    commit_id: str | None = None  # the stored commit that was compared (what a mark names)

    @property
    def drifted(self) -> bool:
        return self.comparison is not None and self.comparison.verdict == "differs"

    @property
    def failed(self) -> bool:
        return self.comparison is None

    @property
    def status(self) -> str:
        """``drift``, ``failed`` or the comparison's verdict (``identical``, ...)."""
        if self.comparison is None:
            return "failed"
        return "drift" if self.drifted else self.comparison.verdict

    def to_json(self, current: Mapping[str, Any]) -> dict[str, Any]:
        k = self.row.key
        return {
            "source": k.source,
            "feature": k.feature,
            "calculator": k.calculator,
            "calculator_version": self.row.calculator_version,
            "profile": k.profile,
            "params": dict(self.row.params),
            "status": self.status,
            "drift": self.drifted,
            "comparison": None if self.comparison is None else self.comparison.to_json(),
            "produced_by": None if self.produced_by is None else dict(self.produced_by),
            "changed": changed_versions(self.produced_by, current),
            "message": self.message,
        }


@dataclass(frozen=True)
class VerifyResult:
    eligible: int  # ok rows in the selection
    fraction: float
    seed: int
    checks: tuple[RowCheck, ...]
    current: Mapping[str, Any]  # this environment's versions
    repaired: tuple[Row, ...] = field(default=())

    @property
    def drifted(self) -> tuple[RowCheck, ...]:
        return tuple(c for c in self.checks if c.drifted)

    @property
    def failed(self) -> tuple[RowCheck, ...]:
        return tuple(c for c in self.checks if c.failed)

    @property
    def clean(self) -> bool:
        return not self.drifted and not self.failed

    def summary(self) -> dict[str, int]:
        out = {"eligible": self.eligible, "checked": len(self.checks)}
        for status in ("identical", "within tolerance", "drift", "failed"):
            out[status] = sum(1 for c in self.checks if c.status == status)
        return out


Progress = Callable[[str], None]


def changed_versions(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """The names whose versions differ between two provenance records ([] when the old one
    was not recorded: nothing is known to have changed)."""
    if not old:
        return []
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def verify(
    session: Session,
    rows: Sequence[Row],
    fraction: float = DEFAULT_FRACTION,
    seed: int = DEFAULT_SEED,
    *,
    repair: bool = False,
    scratch_parent: str | Path | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Recompute a sample of the ``ok`` rows among ``rows`` in a scratch store and compare.
    ``scratch_parent``: where the temporary scratch folder is made (default: the system's
    temporary folder); it is deleted when done."""
    if scratch_parent is not None:
        check_scratch(session, Path(scratch_parent))
    eligible = [r for r in rows if r.state == "ok"]
    chosen = sample_rows(eligible, fraction, seed)
    current = current_provenance()
    parent = tempfile.gettempdir() if scratch_parent is None else str(scratch_parent)
    try:
        scratch = tempfile.TemporaryDirectory(prefix="diagnostics-verify-", dir=parent)
    except OSError as exc:  # a read-only or full disk: name the folder given, not the new name
        raise DiagnosticsError(
            f"{printable(parent)}: cannot make the scratch store here ({os_cause(exc)})"
        ) from None
    with scratch as scratch_dir:
        checks = _recompute_and_compare(session, chosen, Path(scratch_dir), progress)
    repaired: tuple[Row, ...] = ()
    if repair:
        repaired = mark_drifted(session.store, [c for c in checks if c.drifted], current)
    return VerifyResult(len(eligible), fraction, seed, tuple(checks), current, repaired)


def check_scratch(session: Session, folder: Path) -> None:
    """The scratch area must be an existing folder outside the project's feature store (the
    store is read-only for verify; its sweep would also take a foreign store's files)."""
    if not folder.is_dir():
        raise DiagnosticsError(f"{folder}: not a folder (the scratch area must exist)")
    store = Path(os.path.realpath(session.project.cache_path()))
    if Path(os.path.realpath(folder)).is_relative_to(store):
        raise DiagnosticsError(f"{folder}: inside the feature store {store}; use another folder")


def _recompute_and_compare(
    session: Session, chosen: Sequence[Row], scratch_dir: Path, progress: Progress | None
) -> list[RowCheck]:
    by_entry: dict[EntryKey, list[Row]] = {}
    for row in chosen:
        by_entry.setdefault(row.key.entry_key, []).append(row)
    stored_entries = {k: session.store.get(k) for k in by_entry}
    jobs = [
        PlannedJob(
            source=k.source_id,
            calculator=k.calculator_id,
            profile=k.profile,
            params_key=k.params,
            features=tuple(sorted({r.key.feature for r in rs})),
            params=dict(rs[0].params),
        )
        for k, rs in by_entry.items()
    ]
    checks: list[RowCheck] = []
    with FeatureStore.open(scratch_dir / "store", trash_max_age=None) as scratch:
        # the same runner as analyze's, over the same project snapshot and audio facts: only
        # the store it commits into differs
        runner = JobRunner(
            lambda: session.project, session.registry, scratch, session.audio_facts, SessionEvents()
        )
        runner.enqueue(jobs, origin="verify")
        # one pass at a time, compared and deleted before the next: the scratch store holds
        # one pass's data at most, however large the sample
        while (result := runner.run_next()) is not None:
            if progress is not None:
                progress(f"{result.status:<9} {result.batch.source}  {result.batch.calculators}")
            if result.status != "done" and len(result.batch.jobs) > 1:
                # a pass fails as a whole: each of its calculators runs again on its own, so
                # that one calculator's failure is not reported as its neighbours'
                for job in result.batch.jobs:
                    runner.enqueue([job], origin="verify")
                continue
            failure = None if result.status == "done" else result.message or result.status
            for key in result.batch.keys:
                fresh = scratch.get(key)
                for row in by_entry[key]:
                    checks.append(
                        _check(session.store, scratch, row, stored_entries[key], fresh, failure)
                    )
                if fresh is not None:
                    scratch.purge(scratch.prune([(key, f) for f in fresh.features]))
    checks.sort(key=lambda c: row_order(c.row))
    return checks


def _check(
    store: FeatureStore,
    scratch: FeatureStore,
    row: Row,
    stored: StoredEntry | None,
    fresh: StoredEntry | None,
    failure: str | None,
) -> RowCheck:
    feature = row.key.feature
    produced_by = (stored.provenance or None) if stored is not None else None
    commit = stored.commit_id if stored is not None else None
    if failure is not None:
        return RowCheck(row, None, produced_by, f"recomputing failed: {failure}", commit)
    if stored is None or feature not in stored.features:
        return RowCheck(row, None, produced_by, "the stored entry changed while verifying")
    if fresh is None or feature not in fresh.features:
        return RowCheck(
            row, None, produced_by, "recomputing produced no data for this feature", commit
        )
    try:
        comparison = compare_sides(
            side_of_entry(store, stored, feature, "stored"),
            side_of_entry(scratch, fresh, feature, "recomputed"),
        )
    except DiagnosticsError as exc:  # recomputed or pruned meanwhile, or unreadable: said so
        return RowCheck(row, None, produced_by, f"cannot compare: {exc}", commit)
    return RowCheck(row, comparison, produced_by, None, commit)


def mark_drifted(
    store: FeatureStore, drifted: Sequence[RowCheck], current: Mapping[str, Any]
) -> tuple[Row, ...]:
    """Mark each drifted row's entry stale with reason ``environment`` (one transaction)."""
    marks: dict[EntryKey, tuple[str, dict[str, Any]]] = {}
    for check in drifted:
        if check.commit_id is None:
            continue
        old = dict(check.produced_by) if check.produced_by else {}
        marks[check.row.key.entry_key] = (check.commit_id, {"old": old, "new": dict(current)})
    # each mark names the commit that was compared: data recomputed meanwhile is not marked
    store.mark_environment(marks)
    marked = {k for k, (commit, _) in marks.items() if _holds(store, k, commit)}
    return tuple(c.row for c in drifted if c.row.key.entry_key in marked)


def _holds(store: FeatureStore, key: EntryKey, commit_id: str) -> bool:
    entry = store.get(key)
    return entry is not None and entry.commit_id == commit_id and entry.environment is not None
