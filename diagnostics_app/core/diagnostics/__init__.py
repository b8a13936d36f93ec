"""Diagnostics: (project, registry, store entries, job records, audio facts) → rows with states.

Nothing is ever "marked": every state is derived here, from fingerprints and job records.

- One row per (source, feature, calculator, profile + params); every track that requests it is
  listed on that row, so tracks sharing a source can never disagree.
- ``queued``/``running`` come from the store's job records, whoever started the job (GUI, CLI
  in another process, auto-analysis), so running work never shows as ``missing``.
- ``stale`` carries the field-by-field diff of stored vs current fingerprint; because a
  fingerprint holds only what its calculator declared, a tempo change stales only
  tempo-dependent rows, a version bump only that calculator's rows, and so on.
- ``invalid`` rows name what cannot be served; there is no silent fallback to a full analysis.

:class:`Diagnoser` memoises per entry group (source, calculator, profile, params): after an
edit only the groups whose inputs changed are evaluated again (``last_evaluated`` counts rows).

Modules: :mod:`.rows` (the values: states, rows, a diagnosis), :mod:`.diagnoser` (the
:class:`Diagnoser`), :mod:`.evaluation` (a group's parameters and current fingerprint),
:mod:`.row_states` (each row's state), :mod:`.job_index` (job records by entry group).
"""

from diagnostics_app.core.diagnostics.diagnoser import Diagnoser, diagnose
from diagnostics_app.core.diagnostics.rows import Diagnosis, Row, RowKey, SourceStatus
from diagnostics_app.core.states import STATES, State  # re-exported: the home is core.states

__all__ = [
    "STATES",
    "Diagnoser",
    "Diagnosis",
    "Row",
    "RowKey",
    "SourceStatus",
    "State",
    "diagnose",
]
