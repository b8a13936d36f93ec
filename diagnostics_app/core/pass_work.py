"""One analysis pass as a value (:class:`PassWork`), and running passes into a store:
:func:`run_work` (one), :func:`run_works` (several, one decode per source) and
:func:`compute_work` (into any sink: a cluster worker stages instead of committing). The job
runner (:mod:`~diagnostics_app.core.jobs`) prepares the values and keeps the records."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from diagnostics_app.core import hashing
from diagnostics_app.core.audio import content_blocks
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.compare import record_regenerations
from diagnostics_app.core.engine import (
    CancelToken,
    FeatureSink,
    PassPlan,
    run_pass,
    run_source_passes,
)
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.partial_work import run_partial
from diagnostics_app.core.pass_spec import PassWork as PassWork
from diagnostics_app.core.ranges import BlockHasher
from diagnostics_app.core.store import FeatureStore


class _FilteredSink:
    """Passes on only the features the jobs asked for: a run replaces an entry with exactly its
    requested features, so it never leaves unrequested (extraneous) outputs behind."""

    def __init__(self, inner: FeatureSink, wanted: Mapping[str, set[str]]) -> None:
        self.inner = inner
        self.wanted = wanted

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        if feature in self.wanted.get(calculator_id, ()):
            self.inner.write(calculator_id, feature, frames)

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        keep = self.wanted.get(calculator_id, set())
        self.inner.close(
            calculator_id,
            {f: m for f, m in metas.items() if f in keep},
            {f: t for f, t in times.items() if f in keep},
        )

    def expect(self, calculator_id: str, metas: Mapping[str, OutputMeta]) -> None:
        """Passes the layout told at a run's start on (see ``PassWriter.expect``)."""
        keep = self.wanted.get(calculator_id, set())
        expect = getattr(self.inner, "expect", None)
        if expect is not None:
            expect(calculator_id, {f: m for f, m in metas.items() if f in keep})

    def abort(self) -> None:
        self.inner.abort()


Report = Callable[[float, str], None]  # a running pass's progress: fraction, label
PassRun = Callable[[PassWork, Report, CancelToken], None]


class PassRunner(Protocol):
    """A :data:`PassRun` that holds resources (worker processes, a cluster's client)."""

    def __call__(self, work: PassWork, report: Report, cancel: CancelToken) -> None: ...

    def close(self) -> None: ...


def run_work(
    store: FeatureStore,
    registry: Registry,
    work: PassWork,
    report: Report,
    cancel: CancelToken,
    partial: bool = True,
) -> None:
    """Compute ``work`` and commit its entries into ``store``. Progress goes to ``report`` at
    most every ``work.progress_interval`` s (and at the end); a cancel request in the store
    (another process, or the process that handed this pass to a worker process) is checked
    per block. Raises :class:`Cancelled` or the pass's error."""
    error = run_works(store, registry, [work], [report], [cancel], partial=partial)[0]
    if error is not None:
        raise error


def run_works(
    store: FeatureStore,
    registry: Registry,
    works: Sequence[PassWork],
    reports: Sequence[Report],
    cancels: Sequence[CancelToken],
    notes: list[str | None] | None = None,
    partial: bool = True,
) -> list[Exception | None]:
    """:func:`run_work` for several passes, with one decode per source: the passes reading
    the same file run together (:func:`~core.engine.run_source_passes`). Per pass, None when it
    committed, or the error that ended it (:class:`Cancelled` for a cancelled one); a pass
    failing or cancelled never ends another.

    Each pass is first offered to :func:`~core.partial_work.run_partial`: the calculators
    whose entries need only the frames an edit touches are recomputed and spliced there, and
    only the rest of the pass decodes the whole file. ``notes`` (when given) receives, per
    pass, what the partial attempt did ("partial: 0:01.200 of 60:00.000 recomputed"), or
    None; ``partial=False`` recomputes everything whole (a benchmark's other side)."""
    errors: list[Exception | None] = [None] * len(works)
    if notes is not None:
        notes[:] = [None] * len(works)
    rest: list[PassWork | None] = list(works)
    for i, work in enumerate(works if partial else ()):
        progress = _progress(work, reports[i], cancels[i], _asked_of(store, work.job_id))
        try:
            tried = run_partial(store, registry, work, progress, cancels[i])
        except Exception as exc:  # Cancelled, or the store refused the commit
            errors[i], rest[i] = exc, None
            continue
        rest[i] = tried.rest
        if notes is not None:
            notes[i] = tried.note
        if tried.note is not None:  # the job's record says it (core.partial_work.is_note)
            reports[i](1.0 if tried.rest is None else 0.0, tried.note)
    by_path: dict[str, list[int]] = {}
    for i, left in enumerate(rest):
        if left is not None:
            by_path.setdefault(left.path, []).append(i)
    for path, indices in by_path.items():
        plans, progresses, tokens, kept = [], [], [], []
        for i in indices:
            left = rest[i]
            assert left is not None
            try:
                calcs = tuple(registry.get(c) for c in left.calculators)
                sink = store.pass_writer(
                    left.source, left.profile, left.params_key, left.fingerprints, left.versions
                )
            except Exception as exc:
                errors[i] = exc
                continue
            wanted = {c: set(f) for c, f in left.wanted.items()}
            plans.append(PassPlan(path, left.params, left.tempo, calcs))
            asked = _asked_of(store, left.job_id)
            progresses.append(_progress(left, reports[i], cancels[i], asked))
            tokens.append(cancels[i])
            kept.append((i, sink, _FilteredSink(sink, wanted)))
        if not kept:
            continue
        hasher = _block_hasher(store, works[kept[0][0]])
        done = run_source_passes(
            path,
            plans,
            [f for _, _, f in kept],
            progresses,
            tokens,
            on_block=hasher.feed if hasher is not None else None,
        )
        for (i, sink, _), error in zip(kept, done.errors, strict=True):
            errors[i] = error
            if error is None:
                try:
                    record_regenerations(store, sink.committed)  # see core.compare
                except Exception as exc:
                    errors[i] = exc
        if hasher is not None and done.complete:
            digest = _content_digest(works[kept[0][0]])
            with contextlib.suppress(DiagnosticsError):  # only the ranges go unreported
                if digest is not None:
                    store.put_blocks(digest, hasher.result())
    return errors


def _content_digest(work: PassWork) -> str | None:
    digest = next(iter(work.fingerprints.values()), {}).get("audio.content")
    return digest if isinstance(digest, str) else None


def _block_hasher(store: FeatureStore, work: PassWork) -> BlockHasher | None:
    """The block digests of the audio the passes read (core.ranges: when the file changes
    later, its rows name the changed ranges), fed by the passes' own decode: None when this
    version of the file has them already with the current algorithm (or its facts are not in
    the fingerprints). Digests of an older algorithm (a store from before schema 9) are made
    again, at no decoding cost: the next version of the file can then be compared with this
    one."""
    digest = _content_digest(work)
    fp = next(iter(work.fingerprints.values()), {})
    rate, channels = fp.get("audio.sample_rate"), fp.get("audio.channels")
    if digest is None or not isinstance(rate, int) or not isinstance(channels, int):
        return None
    try:
        known = store.get_blocks(digest)
        if known is not None and known.algorithm == hashing.CURRENT:
            return None
    except DiagnosticsError:
        return None
    return BlockHasher(rate, channels)


def remember_blocks(store: FeatureStore, work: PassWork) -> None:
    """The block digests of ``work``'s audio by a decode of their own, once per version of
    the file: for passes whose decode was elsewhere (a cluster's workers)."""
    digest = _content_digest(work)
    if digest is None:
        return
    # undecodable, or the store refused: the rows are still right
    with contextlib.suppress(DiagnosticsError):
        content_blocks(work.path, digest, store)


def _asked_of(store: FeatureStore, job_id: str) -> Callable[[], bool]:
    return lambda: store.cancel_requested(job_id)


def compute_work(
    registry: Registry,
    work: PassWork,
    sink: FeatureSink,
    report: Report,
    cancel: CancelToken,
    asked: Callable[[], bool],
) -> None:
    """One pass into any sink (a cluster worker stages into the store's staging area instead
    of committing), with any source of cancel requests ``asked`` (checked per block)."""
    calcs = tuple(registry.get(c) for c in work.calculators)
    plan = PassPlan(work.path, work.params, work.tempo, calcs)
    wanted = {c: set(f) for c, f in work.wanted.items()}
    progress = _progress(work, report, cancel, asked)
    run_pass(plan, _FilteredSink(sink, wanted), progress=progress, cancel=cancel)


def _progress(
    work: PassWork, report: Report, cancel: CancelToken, asked: Callable[[], bool]
) -> Callable[[float, str], None]:
    """A pass's progress callback: reports at most every ``work.progress_interval`` s, and
    checks (per block) for a cancel asked by another process (``asked``)."""
    last_write = [0.0]

    def progress(fraction: float, label: str) -> None:
        now = time.perf_counter()
        if now - last_write[0] >= work.progress_interval or fraction >= 1.0:
            last_write[0] = now
            report(fraction, label)
        if fraction >= 1.0:
            # the end: every entry is committed, so a cancel arriving now is too late, and
            # the pass is done (raising would call a committed pass "cancelled")
            return
        if asked():  # asked by another process (per block)
            cancel.cancel()
        cancel.raise_if_cancelled()

    return progress
