"""Shared test set-up. Qt must never abort the run for want of a display: force offscreen
before anything imports Qt; give this process its own numba cache before anything imports
numba (see ``tests/numba_slot.py``)."""

from __future__ import annotations

import os

from tests.numba_slot import claim_numba_cache

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
claim_numba_cache()
