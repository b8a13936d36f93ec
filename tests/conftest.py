"""Shared test set-up. Qt must never abort the run for want of a display: force offscreen
before anything imports Qt."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# numba (librosa's JIT, used only by reference tests) caches compiled code between processes
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba-diagnostics-app")
)
