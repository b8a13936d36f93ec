"""Thin Qt item models over the core's :class:`~diagnostics_app.core.diagnostics.Diagnosis`.

Each model is fed plain values (rows, job records, fingerprints) by its owner and updates in
place: rows that keep their key are changed with ``dataChanged`` (so selections and persistent
indexes survive re-derivation), and only rows that come or go are inserted or removed.
"""

from diagnostics_app.qt.models.descriptors import DescriptorFilterProxy, DescriptorTableModel
from diagnostics_app.qt.models.explain import FingerprintModel, ReasonsModel
from diagnostics_app.qt.models.jobs import JobTableModel
from diagnostics_app.qt.models.sources import SourceFilterProxy, SourceTreeModel

__all__ = [
    "DescriptorFilterProxy",
    "DescriptorTableModel",
    "FingerprintModel",
    "JobTableModel",
    "ReasonsModel",
    "SourceFilterProxy",
    "SourceTreeModel",
]
