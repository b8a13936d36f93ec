"""The calculator registry: built-ins, entry-point plugins and plugin folders.

Resolution rules live here and nowhere else: a request's feature resolves to the calculator
that produces it (built-ins first, then plugins in load order); an explicit calculator must
exist and must produce the feature. A plugin that fails to load is recorded with its path and
error and skipped; the rest keep working. Project files never load code.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from diagnostics_app.core.calculators.base import Calculator, FeatureSpec
from diagnostics_app.core.calculators.pitch import PitchCalculator
from diagnostics_app.core.calculators.spectral import (
    CentroidCalculator,
    ChromaCalculator,
    MelCalculator,
    OnsetCalculator,
    SpectrogramCalculator,
)
from diagnostics_app.core.calculators.temporal import (
    BeatRmsCalculator,
    PeaksCalculator,
    RmsCalculator,
)
from diagnostics_app.core.errors import PluginError, RegistryError
from diagnostics_app.core.params import PARAMS

ENTRY_POINT_GROUP = "diagnostics_app.calculators"
PLUGIN_PATH_ENV = "DIAGNOSTICS_APP_PLUGIN_PATH"

BUILTINS: tuple[type[Calculator], ...] = (
    PeaksCalculator,
    RmsCalculator,
    SpectrogramCalculator,
    MelCalculator,
    ChromaCalculator,
    CentroidCalculator,
    OnsetCalculator,
    PitchCalculator,
    BeatRmsCalculator,
)


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that could not be loaded: where it came from and why."""

    origin: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.origin}: {self.error}"


class Registry:
    """Calculators by id, and which calculator serves which feature."""

    def __init__(self, calculators: Iterable[Calculator] = ()) -> None:
        self._by_id: dict[str, Calculator] = {}
        self.problems: list[PluginProblem] = []
        for calc in calculators:
            self.add(calc)

    # -- building ---------------------------------------------------------------------------

    def add(self, calc: Calculator, origin: str = "") -> None:
        problem = validate_calculator(calc)
        if problem is None and calc.id in self._by_id:
            problem = f"calculator id {calc.id!r} is already registered"
        if problem is not None:
            raise PluginError(f"{origin or type(calc).__name__}: {problem}")
        self._by_id[calc.id] = calc

    @classmethod
    def builtin(cls) -> Registry:
        return cls(c() for c in BUILTINS)

    @classmethod
    def default(cls, plugin_path: str | None = None) -> Registry:
        """Built-ins plus every plugin found (entry points and ``DIAGNOSTICS_APP_PLUGIN_PATH``)."""
        reg = cls.builtin()
        reg.load_entry_points()
        folders = plugin_path if plugin_path is not None else os.environ.get(PLUGIN_PATH_ENV, "")
        for folder in filter(None, folders.split(os.pathsep)):
            reg.load_folder(Path(folder))
        return reg

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            origin = f"entry point {ep.name} ({ep.value})"
            try:
                obj = ep.load()
                for calc in _calculators_in(obj):
                    self.add(calc, origin)
            except Exception as exc:  # a broken plugin must not take the app down
                self.problems.append(PluginProblem(origin, _one_line(exc)))

    def load_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            self.problems.append(PluginProblem(str(folder), "plugin folder not found"))
            return
        for path in sorted(folder.glob("*.py")):
            try:
                module = _load_module(path)
                found = list(_calculators_in(module))
                if not found:
                    raise PluginError("defines no Calculator subclass")
                for calc in found:
                    self.add(calc, str(path))
            except Exception as exc:
                self.problems.append(PluginProblem(str(path), _one_line(exc)))

    # -- queries ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Calculator]:
        return iter(self._by_id.values())

    def __contains__(self, calculator_id: object) -> bool:
        return calculator_id in self._by_id

    def get(self, calculator_id: str) -> Calculator:
        try:
            return self._by_id[calculator_id]
        except KeyError:
            raise RegistryError(f"unknown calculator {calculator_id!r}") from None

    def features(self) -> list[str]:
        seen: dict[str, None] = {}
        for calc in self:
            for name in calc.feature_names():
                seen.setdefault(name, None)
        return list(seen)

    def resolve(self, feature: str, calculator_id: str | None = None) -> Calculator:
        """The calculator serving ``feature`` (explicit, or the first that produces it)."""
        if calculator_id is not None:
            calc = self.get(calculator_id)
            if feature not in calc.feature_names():
                raise RegistryError(
                    f"calculator {calculator_id!r} does not produce feature {feature!r} "
                    f"(it produces {', '.join(calc.feature_names())})"
                )
            return calc
        for calc in self:
            if feature in calc.feature_names():
                return calc
        raise RegistryError(f"unknown feature {feature!r} (known: {', '.join(self.features())})")


def validate_calculator(calc: Calculator) -> str | None:
    """What is wrong with a calculator's declarations, or None."""
    cid = getattr(calc, "id", None)
    if not isinstance(cid, str) or not cid:
        return "missing id"
    version = getattr(calc, "version", None)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        return f"{cid}: version must be a whole number >= 0, got {version!r}"
    features = getattr(calc, "features", ())
    if not features:
        return f"{cid}: declares no features"
    if not isinstance(features, tuple | list) or not all(
        isinstance(f, FeatureSpec) for f in features
    ):
        return f"{cid}: features must be a tuple of FeatureSpec, got {features!r}"
    names = [f.name for f in features]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        return f"{cid}: feature names must be unique, non-empty strings, got {names!r}"
    params = getattr(calc, "params", ())
    if isinstance(params, str) or not all(isinstance(p, str) for p in params):
        # a common slip: params = ("window_size") is a string, not a tuple
        return f"{cid}: params must be a tuple of parameter names, got {params!r}"
    if not isinstance(getattr(calc, "uses_tempo", False), bool):
        return f"{cid}: uses_tempo must be True or False"
    unknown = [p for p in params if p not in PARAMS]
    if unknown:
        return f"{cid}: reads unknown parameters {', '.join(unknown)}"
    return None


def _calculators_in(obj: object) -> Iterator[Calculator]:
    """Calculator instances found in a module, a class, an instance or a zero-arg factory."""
    if isinstance(obj, Calculator):
        yield obj
    elif inspect.isclass(obj) and issubclass(obj, Calculator):
        yield obj()
    elif isinstance(obj, ModuleType):
        for value in list(vars(obj).values()):
            if (
                inspect.isclass(value)
                and issubclass(value, Calculator)
                and value.__module__ == obj.__name__
                and not inspect.isabstract(value)
            ):
                yield value()
    elif callable(obj):
        yield from _calculators_in(obj())
    else:
        raise PluginError(f"{obj!r} is not a Calculator")


def _load_module(path: Path) -> ModuleType:
    name = f"diagnostics_app_plugin_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError("cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1]}" if text else type(exc).__name__
