"""Environment marks: entries whose data the current code no longer computes although no
fingerprint input changed (found by ``verify``, written by ``verify --repair``).

A mark names an entry *and the commit it judged* (``commit_id``): once the entry is committed
again (regenerated), the mark no longer matches and is ignored, so regenerating clears it with
no extra write; :func:`mark` deletes such outdated marks when it writes new ones. A marked
entry is listed with :attr:`StoredEntry.environment` set to the mark's detail, JSON
``{"old": {library: version}, "new": {library: version}}``; the diagnostics read it as the
staleness reason ``environment``. Writing marks bumps the ``entries`` counter, so every cache of
a listing (the GUI's watcher, ``check``'s saved result) sees the change.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.records import EntryKey, StoredEntry, key_tuple

_CURRENT_SQL: Final = (
    "SELECT m.entry_id, m.detail FROM environment_marks m "
    "JOIN entries e ON e.id = m.entry_id AND e.commit_id = m.commit_id"
)


def mark(db: IndexConnection, marks: Mapping[EntryKey, tuple[str, Mapping[str, Any]]]) -> int:
    """Mark each key's entry, if it still holds the commit given with it: ``{key: (commit_id,
    detail)}``. One transaction; returns the number of entries marked."""
    if not marks:
        return 0
    now = time.time()
    done = 0
    with db.write("cannot mark entries") as c:
        for key, (commit_id, detail) in marks.items():
            found = c.execute(
                "SELECT id FROM entries WHERE source_id = ? AND calculator_id = ? "
                "AND profile = ? AND params = ? AND commit_id = ?",
                (*key_tuple(key), commit_id),
            ).fetchone()
            if found is None:  # recomputed or pruned meanwhile: the judgement is about old data
                continue
            c.execute(
                "INSERT OR REPLACE INTO environment_marks VALUES (?, ?, ?, ?)",
                (found[0], commit_id, canonical_json(dict(detail)), now),
            )
            done += 1
        c.execute(
            "DELETE FROM environment_marks WHERE NOT EXISTS (SELECT 1 FROM entries e "
            "WHERE e.id = environment_marks.entry_id AND e.commit_id = environment_marks.commit_id)"
        )
        db.bump(c, "entries")
    return done


def current(db: IndexConnection) -> dict[int, str]:
    """``{entry_id: detail JSON}`` of the marks that still match their entry's commit."""
    with db.read("cannot read environment marks") as c:
        return {int(eid): str(detail) for eid, detail in c.execute(_CURRENT_SQL)}


def apply(entries: Sequence[StoredEntry], marks: Mapping[int, str]) -> list[StoredEntry]:
    """``entries`` with each marked one carrying its mark (the others are the same objects)."""
    if not marks:
        return list(entries)
    return [
        dataclasses.replace(e, environment=marks[e.entry_id])
        if e.entry_id in marks and e.environment != marks[e.entry_id]
        else e
        for e in entries
    ]
