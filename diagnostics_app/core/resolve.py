"""Request resolution: what a request means, or why it cannot be served, in one place.

A request (feature, optional calculator, profile, parameter overrides) resolves to a
calculator and a complete, checked set of parameters (:class:`Resolved`), or to
:class:`Invalid` with a one-line message. At a source's sample rate,
:func:`check_rate` adds the checks that need it (frequency limits below Nyquist, and the
calculator's own ``check``).

The diagnostics (an ``invalid`` row), the planner and the jobs (a pass that fails) all ask
these functions, so a job fails with exactly the message its row shows as invalid, and the
two cannot drift apart. The order is the diagnostics' precedence: the calculator, then the
parameters, then (only once the audio's facts are known) the sample-rate checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.errors import DiagnosticsError, ParamError
from diagnostics_app.core.params import Params, check_for_rate, resolve_params
from diagnostics_app.core.project import Project
from diagnostics_app.core.suggest import suggestion


@dataclass(frozen=True)
class Resolved:
    """A servable request: its calculator and its complete, checked parameters."""

    calculator: Calculator
    params: Params


@dataclass(frozen=True)
class Invalid:
    """Why a request cannot be served: the message its row shows and its job fails with."""

    message: str


def resolve_calculator(
    registry: Registry, feature: str, calculator_id: str | None
) -> Calculator | Invalid:
    """The calculator serving ``feature`` (the named one, or the first that produces it)."""
    try:
        return registry.resolve(feature, calculator_id)
    except DiagnosticsError as exc:
        message = str(exc)
    if calculator_id is None or calculator_id in registry:
        guess, known = feature, registry.features()
    else:
        guess, known = calculator_id, [c.id for c in registry]
    best = suggestion(guess, known) if guess not in known else None
    return Invalid(message if best is None else f'{message} — did you mean "{best}"?')


def resolve_params_of(
    project: Project, profile: str, overrides: Mapping[str, Any]
) -> Params | Invalid:
    """Defaults, then the profile, then the request's overrides, with the cross-checks."""
    problem = project.profile_problems.get(profile)
    if problem is not None:  # the profile's own mistake, with its path in the file
        return Invalid(f"profile {profile!r} is invalid: {problem}")
    try:
        return resolve_params(project.profile(profile), overrides)
    except DiagnosticsError as exc:
        return Invalid(str(exc))


def resolve(
    registry: Registry,
    project: Project,
    feature: str,
    calculator_id: str | None,
    profile: str,
    overrides: Mapping[str, Any],
) -> Resolved | Invalid:
    """One request: its calculator, then its parameters."""
    calc = resolve_calculator(registry, feature, calculator_id)
    if isinstance(calc, Invalid):
        return calc
    return _with_params(calc, project, profile, overrides)


def resolve_entry(
    registry: Registry,
    project: Project,
    calculator_id: str,
    features: Iterable[str],
    profile: str,
    overrides: Mapping[str, Any],
) -> Resolved | Invalid:
    """A cache entry to write (a planned job): its calculator must still produce every one of
    ``features``, and its parameters must resolve."""
    try:
        calc = registry.get(calculator_id)
    except DiagnosticsError as exc:
        return Invalid(str(exc))
    for feature in features:
        produced = resolve_calculator(registry, feature, calculator_id)
        if isinstance(produced, Invalid):
            return produced
    return _with_params(calc, project, profile, overrides)


def _with_params(
    calc: Calculator, project: Project, profile: str, overrides: Mapping[str, Any]
) -> Resolved | Invalid:
    params = resolve_params_of(project, profile, overrides)
    return params if isinstance(params, Invalid) else Resolved(calc, params)


def check_rate(
    calculators: Calculator | Iterable[Calculator],
    params: Params,
    sample_rate: int,
    where: str = "",
) -> Invalid | None:
    """The checks that need the audio's sample rate: the frequency limits (``where`` prefixes
    their message), then each calculator's own ``check``; the first problem, or None.

    ``params`` may be any :class:`Params`, also one that notes which values are read (the
    diagnostics remember which parameters a row's state depends on)."""
    calcs = (calculators,) if isinstance(calculators, Calculator) else tuple(calculators)
    try:
        check_for_rate(params, sample_rate, where)
        for calc in calcs:
            calc.check(params, sample_rate)
    except ParamError as exc:
        return Invalid(str(exc))
    return None
