"""Worker-process targets for tests of core/pass_process.py (imported by name in the worker, so
they live in a module, not in a test function)."""

from __future__ import annotations

import threading

from diagnostics_app.core import pass_process
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import CancelToken
from diagnostics_app.core.jobs import PassWork, Report, run_work
from diagnostics_app.core.store import FeatureStore

HOLD_S = 60.0  # the longest a held pass waits for its cancel request (a failed test, not a hang)


def _held(
    store: FeatureStore, registry: Registry, work: PassWork, report: Report, cancel: CancelToken
) -> None:
    """``run_work`` holding after each progress report mid-pass until the store has a cancel
    request for the pass."""

    def report_then_hold(fraction: float, label: str) -> None:
        report(fraction, label)
        idle = threading.Event()
        waited = 0.0
        while 0.0 < fraction < 1.0 and waited < HOLD_S and not store.cancel_requested(work.job_id):
            idle.wait(0.01)
            waited += 0.01

    run_work(store, registry, work, report_then_hold, cancel)


def run_until_cancel_requested(cache_dir: str, work: PassWork) -> tuple[str, str | None]:
    """``_child_run`` whose pass holds after its first report until it is asked to cancel: the
    cancel lands mid-pass on any machine, however fast."""
    setattr(pass_process, "run_work", _held)  # noqa: B010 (only in this worker process)
    try:
        return pass_process._child_run(cache_dir, work)
    finally:
        setattr(pass_process, "run_work", run_work)  # noqa: B010


def report_priority(cache_dir: str, work: PassWork) -> tuple[str, str | None]:
    """A pass that only tells this worker's niceness, as its failure message."""
    import os

    return "failed", f"nice={os.nice(0)}"
