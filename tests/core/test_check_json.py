"""``check --json`` written straight from the rows (diagnostics_app/check_json.py) is
byte-identical to the generic writer over ``Row.to_json`` (cli._json_text), for real rows of
every state and for rows holding any value the encoder accepts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics_app import check_json, cli
from diagnostics_app.core.diagnostics import STATES, Row, RowKey
from diagnostics_app.core.fingerprint import Reason
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import FeatureStore, JobRecord
from tests.core.project_factory import shared_source_project


def reference(rows: list[Row], project: str = "p.json") -> str:
    return cli._json_text(
        {
            "schema_version": 1,
            "project": project,
            "summary": {s: 0 for s in STATES},
            "rows": [r.to_json() for r in rows],
        }
    )


def written(rows: list[Row], project: str = "p.json") -> str:
    head = {"schema_version": 1, "project": project, "summary": {s: 0 for s in STATES}}
    return check_json.check_text(cli._json_text({**head, "rows": []}), rows)


def test_real_rows_of_every_kind(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    with Session.open(path) as session:
        session.enqueue(session.plan())
        session.runner.run_all()
    with FeatureStore.open(path.parent / ".featurecache") as store:
        store.add_job(JobRecord.new("bass", ["core.rms"], features=["rms"]))
        running = JobRecord.new("drums", ["core.rms"], features=["rms"], state="running")
        store.add_job(running)
        store.update_job(running.id, progress=0.25)
    doc = json.loads(path.read_text())
    doc["tempo_map"][0]["bpm"] = 96.5  # stale beat_rms rows
    doc["tracks"][0]["requests"].append({"feature": "nope"})  # invalid
    doc["tracks"][2]["requests"].append(
        {"feature": "mel", "params": {"n_mels": 3, "window": "hann"}}
    )
    path.write_text(json.dumps(doc))
    with Session.open(path) as session:
        rows = list(session.diagnose().rows)
    assert {"ok", "stale", "queued", "running", "invalid"} <= {r.state for r in rows}
    assert any(r.params for r in rows) and any(r.reasons for r in rows)
    assert written(rows, str(path)) == reference(rows, str(path))


def test_no_rows() -> None:
    assert written([]) == reference([])


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
texts = st.text(alphabet=st.characters(), max_size=12)


@st.composite
def rows(draw: Any) -> Row:
    def maybe(strategy: Any) -> Any:
        return draw(st.one_of(st.none(), strategy))

    number = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True))
    key = RowKey(draw(texts), draw(texts), draw(texts), draw(texts), "{}")
    return Row(
        key,
        draw(st.sampled_from(STATES)),
        tuple(draw(st.lists(texts, max_size=3))),
        calculator_version=maybe(st.one_of(st.integers(), st.booleans())),
        params=draw(st.dictionaries(texts, values, max_size=3)),
        reasons=tuple(
            Reason(draw(texts), draw(values), draw(values)) for _ in range(draw(st.integers(0, 2)))
        ),
        message=maybe(texts),
        progress=maybe(number),
        updated=maybe(number),
        nbytes=maybe(number),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(), max_size=6), texts)
def test_any_values(drawn: list[Row], project: str) -> None:
    # the same values again, in other rows: what the writer remembers must not leak
    again = [*drawn, *drawn]
    assert written(again, project) == reference(again, project)


def test_equal_values_of_other_types_spell_as_their_own() -> None:
    """1, 1.0 and True are equal (and hash alike) but spell differently."""
    key = RowKey("s", "f", "c", "p", "{}")
    variants: list[dict[str, Any]] = [{"a": 1}, {"a": 1.0}, {"a": True}, {"a": math.nan}]
    rows = [Row(key, "ok", ("t",), params=p) for p in variants * 2]
    rows += [Row(key, "ok", ("t",), calculator_version=v) for v in (1, True, 1.0)]
    assert written(rows) == reference(rows)
