"""Calculators: the versioned producers of features, their registry and plugins."""

from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    Reach,
    as_frames,
    frame_reach,
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
    "Reach",
    "Registry",
    "as_frames",
    "frame_reach",
    "uniform_meta",
]
