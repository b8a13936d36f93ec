"""Calculators: the versioned producers of features, their registry and plugins."""

from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    as_frames,
    uniform_meta,
)
from diagnostics_app.core.calculators.registry import Registry

__all__ = [
    "AnalysisContext",
    "Block",
    "Calculator",
    "CalculatorRun",
    "FeatureSpec",
    "OutputMeta",
    "Outputs",
    "Registry",
    "as_frames",
    "uniform_meta",
]
