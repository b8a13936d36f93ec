"""Waveform and feature plots over a shared time axis (pyqtgraph)."""

from diagnostics_app.qt.plots.features import FeaturePlot, LaneKind, lane_kind
from diagnostics_app.qt.plots.lanes import Lane
from diagnostics_app.qt.plots.plot_area import PlotArea
from diagnostics_app.qt.plots.waveform import Band, PeaksPyramid

__all__ = ["Band", "FeaturePlot", "Lane", "LaneKind", "PeaksPyramid", "PlotArea", "lane_kind"]
