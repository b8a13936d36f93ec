"""One analysis pass as a plain value (:class:`PassWork`): what running it needs besides a
store and a registry, so that it can be sent to a worker process or a cluster. Prepared by the
job runner (:mod:`~diagnostics_app.core.jobs`), run by :mod:`~diagnostics_app.core.pass_work`
(whole) and :mod:`~diagnostics_app.core.partial_work` (only the frames an edit touches)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from diagnostics_app.core.params import Params
from diagnostics_app.core.tempo import TempoMap


@dataclass(frozen=True)
class PassWork:
    """One pass, prepared (fingerprints from the project snapshot taken when it started): all
    :func:`run_work` needs besides a store and a registry. A plain value, so it can be sent to
    another process."""

    job_id: str
    source: str
    profile: str
    params_key: str
    fingerprints: Mapping[str, Mapping[str, Any]]
    versions: Mapping[str, int]
    wanted: Mapping[str, frozenset[str]]  # features kept, per calculator
    path: str
    params: Params
    tempo: TempoMap
    calculators: tuple[str, ...]
    progress_interval: float
    # the calculators planned partial (PlannedJob.partial): the runner tries only these
    # (core.partial_work), so a pass of fresh or otherwise changed rows costs it nothing
    partial: frozenset[str] = frozenset()
