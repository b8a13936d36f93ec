"""The end of a collector pause never walks the frozen objects: ``gc.get_freeze_count()``
is a walk of the whole frozen list with the GIL held (~14 ms at the GUI's 120,000 frozen
objects: a GUI stall at each re-derivation, found by bench/gui.py)."""

from __future__ import annotations

import gc

import pytest

from diagnostics_app.core import _gc


def test_a_pause_after_a_freeze_does_not_count_the_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gc, "_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # no real freeze in a shared test process
    _gc.freeze_long_lived()
    assert _gc._frozen is True

    def walk() -> int:
        raise AssertionError("gc.get_freeze_count() walked the frozen list")

    monkeypatch.setattr(gc, "get_freeze_count", walk)
    was = gc.isenabled()
    gc.enable()
    try:
        with _gc.gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled()
    finally:
        if not was:
            gc.disable()


def test_without_a_freeze_a_pause_moves_what_it_built_to_the_oldest_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_gc, "_frozen", False)
    calls: list[str] = []
    monkeypatch.setattr(gc, "get_freeze_count", lambda: 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    was = gc.isenabled()
    gc.enable()
    try:
        with _gc.gc_paused():
            pass
    finally:
        if not was:
            gc.disable()
    assert calls == ["freeze", "unfreeze"]
