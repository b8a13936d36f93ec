"""What a group of rows is derived from: the requested features of one entry key, its
parameters, and their evaluation at a sample rate (parameter checks and the calculator part of
the current fingerprint), noting which parameters were read so that the
:class:`~diagnostics_app.core.diagnostics.Diagnoser` re-evaluates a group only when one of those
changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.params import Params
from diagnostics_app.core.project import Project, Request
from diagnostics_app.core.resolve import Invalid, check_rate, resolve_params_of
from diagnostics_app.core.states import State
from diagnostics_app.core.store import StoredEntry
from diagnostics_app.core.tempo import TempoMap


@dataclass
class Group:
    """Requested features of one entry key, with the tracks requesting each."""

    calc: Calculator
    params: Params
    overrides: Mapping[str, Any]
    features: dict[str, list[str]] = field(default_factory=dict)


class ReadLog(Mapping[str, Any]):
    """A parameter mapping that notes which names are read (iterating reads them all)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.names.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        self.names.update(self._values)
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class Evaluation:
    """What a group's rows need from (calculator, parameters, sample rate, tempo): the
    parameter problem if any, else the calculator part of the current fingerprint; and the
    parameter names that were read to find out (the rows depend on nothing else of them)."""

    problem: tuple[State, str] | None
    part: dict[str, Any] | None
    tail: str | None  # canonical JSON of ``part`` without its "{" (None: compare values)
    names: tuple[str, ...]
    values: tuple[Any, ...]  # of the parameters named


def params_for(project: Project, request: Request) -> Params | str:
    """A request's parameters (profile and overrides), or why they cannot be resolved (the
    one resolution: core.resolve, which jobs and the planner use too)."""
    params = resolve_params_of(project, request.profile, request.params)
    return params.message if isinstance(params, Invalid) else params


def evaluate(calc: Calculator, params: Params, sample_rate: int, tempo: TempoMap) -> Evaluation:
    """Parameter checks at this sample rate, then the calculator part of the fingerprint,
    noting which parameters were read."""
    log = ReadLog(params.mapping)
    logged = Params(log)
    problem: tuple[State, str] | None = None
    part: dict[str, Any] | None = None
    invalid = check_rate(calc, logged, sample_rate)  # the same checks a job makes
    if invalid is not None:
        problem = ("invalid", invalid.message)
    else:
        part = fpr.calculator_part(calc, logged, tempo)
    names = tuple(sorted(log.names))
    values = tuple(params.mapping[n] for n in names)
    text = usable_text(part) if part is not None else None
    return Evaluation(problem, part, None if text is None else text[1:], names, values)


def usable_text(part: Mapping[str, Any]) -> str | None:
    """The canonical text of a fingerprint part, if equal texts mean equal values: not when
    a number is NaN or infinite (they do not equal themselves; ``fingerprint.diff`` decides)."""
    text = fpr.canonical_text(part)
    return None if "NaN" in text or "Infinity" in text else text


def entry_token(entry: StoredEntry | None) -> tuple[Any, ...] | None:
    """What identifies an entry's content: equal tokens, equal rows."""
    if entry is None:
        return None
    return (
        entry.entry_id,
        entry.commit_id,
        entry.calculator_version,
        tuple(sorted(entry.features)),
        entry.problems,  # a file that fails verification changes the row
        tuple(f.regenerated for f in entry.features.values()),  # recorded after the commit
        entry.environment,  # so does a drift mark (verify --repair)
    )
