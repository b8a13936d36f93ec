"""Planning a large selection stays linear: "calculate missing" on a library selects every
missing row by key (100,000 keys for 20,000 sources), and a key looked up in a tuple per row
was quadratic (hours at that size). Counted in key comparisons, not in seconds."""

from __future__ import annotations

import pytest

from diagnostics_app.core.diagnostics import Diagnosis, Row, RowKey
from diagnostics_app.core.planner import Selection, plan

N = 3000


def _rows(n: int) -> list[Row]:
    return [
        Row(RowKey(f"s{i:05d}", "rms", "core.rms", "default", "{}"), "missing", (f"t{i}",))
        for i in range(n)
    ]


def test_a_selection_of_every_row_plans_each_row_once_in_linear_comparisons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = _rows(N)
    # the selection holds equal keys, not the rows' own objects (as one made from the
    # diagnosis shown, planned against a fresh one): every lookup compares
    selection = Selection(
        rows=tuple(RowKey(r.key.source, "rms", "core.rms", "default", "{}") for r in rows),
        sources=tuple(r.key.source for r in rows),
        tracks=tuple(t for r in rows for t in r.tracks),
    )
    compared = [0]
    equal = RowKey.__eq__

    def counting(self: RowKey, other: object) -> bool:
        compared[0] += 1
        return equal(self, other)

    monkeypatch.setattr(RowKey, "__eq__", counting)
    jobs = plan(Diagnosis(tuple(rows)), selection)
    assert sorted(j.source for j in jobs) == [r.key.source for r in rows]
    assert compared[0] <= 4 * N  # a tuple's `in` made N * N / 2 (4.5 million here)


def test_a_selection_still_selects_only_its_rows() -> None:
    rows = _rows(10)
    picked = Selection(rows=(rows[3].key, rows[7].key), tracks=("t3", "t7", "t9"))
    assert [r.key.source for r in Diagnosis(tuple(rows)).rows if picked.matches(r)] == [
        "s00003",
        "s00007",
    ]
    assert not Selection(tracks=("nope",)).matches(rows[0])
    assert Selection().matches(rows[0])
