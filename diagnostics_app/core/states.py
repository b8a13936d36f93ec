"""The states of a row and of a job, their named sets and the one ordering by severity.

Every rule about states is here, once: which states mean "a job is on it", which rows a
command may plan or regenerate, which rows have data to plot, what goes first when the cache
is over its limit, and in what order problems are listed. The diagnostics derive the states;
the CLI and the GUI only ask these sets (the Qt theme keeps the colours, glyphs and help texts
keyed by state, nothing else).

It is a leaf of the core (it imports nothing of it), so that the store's SQL and every layer
above can use the same sets.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final, Literal, Protocol, TypeVar

State = Literal["ok", "missing", "stale", "extraneous", "queued", "running", "failed", "invalid"]

# The interface's order (§3): the keys of every ``summary`` object, in this order.
STATES: Final[tuple[State, ...]] = (
    "ok",
    "missing",
    "stale",
    "extraneous",
    "queued",
    "running",
    "failed",
    "invalid",
)

# The one ordering: most severe first. The table sorts its state column by it and the source
# tree lists its badges in it (problems first, ok last).
SEVERITY: Final[tuple[State, ...]] = (
    "failed",
    "invalid",
    "running",
    "queued",
    "stale",
    "missing",
    "extraneous",
    "ok",
)
_RANK: Final[dict[str, int]] = {s: i for i, s in enumerate(SEVERITY)}


def severity_rank(state: str) -> int:
    """The position of ``state`` in :data:`SEVERITY` (an unknown state sorts last)."""
    return _RANK.get(state, len(SEVERITY))


# --- job records -------------------------------------------------------------------------------

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
JOB_STATES: Final[tuple[JobState, ...]] = ("queued", "running", "done", "failed", "cancelled")

# A job record in one of these is active, and so is a row it will produce: the same two words
# for both (a row is ``queued``/``running`` exactly while such a job exists).
ACTIVE_JOB: Final = frozenset({"queued", "running"})
FINISHED_JOB: Final = frozenset({"done", "failed", "cancelled"})


def sql_list(states: Collection[str]) -> str:
    """``states`` as an SQL value list, e.g. ``('queued', 'running')`` for ``WHERE state IN``;
    in :data:`JOB_STATES` order, then :data:`STATES` order, so the text is stable."""
    order: dict[str, int] = {s: i for i, s in enumerate(dict.fromkeys((*JOB_STATES, *STATES)))}
    for state in states:  # the words are ours, never user input: refuse anything else
        if state not in order:
            raise ValueError(f"not a state: {state!r}")
    return "(" + ", ".join(f"'{s}'" for s in sorted(states, key=order.__getitem__)) + ")"


# --- which rows a command acts on --------------------------------------------------------------

# What "analyze" plans by default: rows whose data is absent, out of date or failed.
PLANNABLE: Final = frozenset({"missing", "stale", "failed"})
# What "regenerate selected" recomputes: the plannable rows and ok ones (forced).
REGENERABLE: Final = PLANNABLE | {"ok"}
# What "regenerate stale" recomputes: data that is out of date, or whose last attempt failed.
OUTDATED: Final = frozenset({"stale", "failed"})
# Rows no job writes: nobody requests them, or the request cannot be served.
NOT_PRODUCED: Final = frozenset({"extraneous", "invalid"})
# Everything that is not ``ok`` is an issue (``check`` exits 1, the tree counts it).
ISSUES: Final = frozenset(STATES) - {"ok"}

# --- which rows have data ----------------------------------------------------------------------

# States in which a row may hold cached data (its ``updated`` says whether it does).
WITH_DATA: Final = frozenset({"ok", "stale", "extraneous", "running", "queued", "failed"})
# Requested and without data yet, or on their way: an empty lane until the data comes.
PENDING: Final = frozenset({"missing", "queued", "running"})
# States whose cached data is taken as describing the audio as it is now: ok, or being
# recomputed (the waveform shows such peaks; otherwise it reduces the audio itself).
CURRENT_DATA: Final = frozenset({"ok", "queued", "running"})

# What cache eviction deletes first, in this order: data nobody asked for, then data that is
# out of date, then a failed row's old data; everything else after, least recently computed
# first; never the data of an active row.
EVICT_FIRST: Final[tuple[State, ...]] = ("extraneous", "stale", "failed")
_EVICT_RANK: Final[dict[str, int]] = {s: i for i, s in enumerate(EVICT_FIRST)}


def eviction_rank(state: str) -> int:
    """Rows with a lower rank are evicted first (see :data:`EVICT_FIRST`)."""
    return _EVICT_RANK.get(state, len(EVICT_FIRST))


class HasState(Protocol):
    @property
    def state(self) -> str: ...


R = TypeVar("R", bound=HasState)


def is_extraneous(row: HasState) -> bool:
    """Cached, requested by no track: the only rows a prune deletes."""
    return row.state == "extraneous"


def extraneous(rows: Iterable[R]) -> list[R]:
    """The extraneous rows of ``rows``, in order: what every prune (CLI, GUI, session) acts on."""
    return [r for r in rows if is_extraneous(r)]
