"""Pausing the cyclic garbage collector while building many small acyclic objects.

Loading a 10,000-track project, listing 100,000 store entries or deriving 100,000 rows builds
hundreds of thousands of small objects, none of them part of a reference cycle (reference
counting frees them). With the collector on, every 700 allocations start a collection, and the
older generations are traversed again and again as the heap grows: that was more than half
the time of each step. :func:`gc_paused` turns the collector off for the step, and at the end
moves what it built straight to the oldest generation (``gc.freeze()`` + ``gc.unfreeze()``)
instead of letting the next young collection traverse all of it at once (a further 0.3-0.5 s
at that scale). Nothing is freed or kept differently; cyclic garbage of the period is found
by the next full collection instead of the next young one. When the application froze objects
itself (``gc.get_freeze_count() > 0``) they are left frozen: the ordinary young collection
runs instead.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Whether this process froze objects (:func:`freeze_long_lived`). Asked at the end of every
# pause instead of ``gc.get_freeze_count()``, which walks the whole frozen list with the GIL
# held: ~14 ms at the GUI's 120,000 frozen objects, a GUI stall at every re-derivation.
_frozen = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # (when nothing was frozen here, the count is of an empty list: no walk)
            if not _frozen and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


# From this many sources, what a project's loading, diagnosis or a large addition built is
# worth freezing (below, the collector's passes over it are short)
FREEZE_SOURCES = 2000


def freeze_long_lived() -> None:
    """Put every object tracked now out of the collector's reach (``gc.freeze()``), for the
    state of a large project that is built once and then kept (the project, its sources'
    facts, the rows and the diagnoser's memo): at 20,000 sources each full collection
    traversed it all again, 200-560 ms with the GIL held, whichever thread triggered it (a
    GUI stall while a worker diagnosed). Frozen objects are still freed by reference
    counting when dropped; only cyclic garbage already present is kept, once per freeze: so
    it is called for large states only (:data:`FREEZE_SOURCES`), not per re-derivation.
    Without it, in the GUI (which froze its modules at start, so :func:`gc_paused` leaves what
    it built in the young generation), the first young collection after loading or adding
    20,000 sources traversed them all: 150-220 ms with the GIL held. Every freeze of this
    process goes through here (the GUI's at start too), so :func:`gc_paused` knows of it."""
    global _frozen
    gc.freeze()
    _frozen = True
