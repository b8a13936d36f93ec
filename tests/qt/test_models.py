"""Every item model passes pytest-qt's model tester, and updates keep selections."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QPersistentModelIndex,
    Qt,
)

from diagnostics_app.core.session import Session
from diagnostics_app.core.store import JobRecord
from diagnostics_app.qt.models import (
    DescriptorFilterProxy,
    DescriptorTableModel,
    FingerprintModel,
    JobTableModel,
    ReasonsModel,
    SourceFilterProxy,
    SourceTreeModel,
)
from diagnostics_app.qt.models.descriptors import COL_STATE, COLUMNS
from diagnostics_app.qt.models.roles import CountsRole, KeyRole, StateRole
from diagnostics_app.qt.models.sources import build_tree


def _session(path: Path) -> Session:
    return Session.open(path)


def test_source_tree_model(qtmodeltester, demo_project: Path) -> None:  # type: ignore[no-untyped-def]
    session = _session(demo_project)
    try:
        model = SourceTreeModel()
        qtmodeltester.check(model)  # empty
        tree = build_tree(
            session.project, session.diagnose(), session.source_info, session.source_status
        )
        model.set_tree(tree)
        qtmodeltester.check(model)
        assert model.rowCount() == 3
        drums = model.index_of(("source", "drums"))
        assert model.rowCount(drums) == 2
        kick = model.index_of(("track", "kick"))
        assert kick.parent() == drums
        counts = kick.data(CountsRole)
        assert counts["stale"] == 2  # beat_rms (tempo) and rms (fine hop) of the shared source
        proxy = SourceFilterProxy()
        proxy.setSourceModel(model)
        qtmodeltester.check(proxy)
        proxy.set_issues_only(True)
        qtmodeltester.check(proxy)
        keys = {proxy.index(r, 0).data(KeyRole) for r in range(proxy.rowCount())}
        assert keys == {("source", "drums"), ("source", "pad")}  # bass is all ok
        proxy.set_issues_only(False)
        proxy.set_text("snare")
        assert proxy.rowCount() == 1
        assert proxy.rowCount(proxy.index(0, 0)) == 1
    finally:
        session.close()


def test_source_tree_updates_in_place(qtmodeltester, demo_project: Path) -> None:  # type: ignore[no-untyped-def]
    session = _session(demo_project)
    try:
        model = SourceTreeModel()
        tree = build_tree(
            session.project, session.diagnose(), session.source_info, session.source_status
        )
        model.set_tree(tree)
        kick = QPersistentModelIndex(model.index_of(("track", "kick")))
        changed = [
            (
                dataclasses.replace(n, counts={"ok": 9}),
                [dataclasses.replace(c, counts={"running": 1}) for c in cs],
            )
            for n, cs in tree
        ]
        resets: list[int] = []
        model.modelReset.connect(lambda: resets.append(1))
        model.set_tree(changed)
        assert not resets
        assert kick.isValid()
        assert kick.data(CountsRole) == {"running": 1}
        qtmodeltester.check(model)
    finally:
        session.close()


def test_descriptor_model_keeps_selection(qtmodeltester, demo_project: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QTableView

    session = _session(demo_project)
    try:
        rows = session.diagnose().for_source("drums")
        model = DescriptorTableModel()
        qtmodeltester.check(model)
        model.set_rows(rows)
        qtmodeltester.check(model)
        proxy = DescriptorFilterProxy()
        proxy.setSourceModel(model)
        qtmodeltester.check(proxy)
        view = QTableView()
        qtbot.addWidget(view)
        view.setModel(proxy)
        beat = next(r for r in rows if r.key.feature == "beat_rms")
        idx = proxy.mapFromSource(model.index(model.row_of(beat.key), 0))
        view.selectionModel().select(
            idx,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        # the same rows with new states: updated in place, the selection stays on beat_rms
        running = [
            dataclasses.replace(r, state="running", progress=0.5) if r.key == beat.key else r
            for r in rows
        ]
        model.set_rows(running)
        selected = view.selectionModel().selectedRows()
        assert [i.data(KeyRole) for i in selected] == [beat.key]
        assert selected[0].data(StateRole) == "running"
        # a row that goes away is removed; a new one is appended; the selection survives
        others = [r for r in running if r.key.feature != "centroid"]
        model.set_rows(others)
        assert model.rowCount() == len(rows) - 1
        assert [i.data(KeyRole) for i in view.selectionModel().selectedRows()] == [beat.key]
        model.set_rows(running)
        assert model.rowCount() == len(rows)
        qtmodeltester.check(model)
    finally:
        session.close()


def _job(job_id: str, state: str, progress: float | None, pid: int) -> JobRecord:
    now = time.time()
    return JobRecord(
        job_id,
        "drums",
        ("core.rms",),
        "fine",
        "{}",
        ("rms",),
        state,
        progress,
        state,
        None,
        "cli",
        pid,
        "",
        now,
        now,
    )


def test_job_model(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    model = JobTableModel()
    qtmodeltester.check(model)
    model.set_jobs([_job("a", "running", 0.25, os.getpid()), _job("b", "queued", None, 1)])
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    assert "pid 1" in model.index(1, 4).data()
    model.set_jobs([_job("b", "running", 0.5, 1)])
    assert model.rowCount() == 1
    assert model.index(0, 3).data() == "50%"
    qtmodeltester.check(model)


def test_explain_models(qtmodeltester, demo_project: Path) -> None:  # type: ignore[no-untyped-def]
    session = _session(demo_project)
    try:
        beat = next(r for r in session.diagnose().rows if r.key.feature == "beat_rms")
        reasons, fps = ReasonsModel(), FingerprintModel()
        qtmodeltester.check(reasons)
        qtmodeltester.check(fps)
        reasons.set_row(beat)
        fps.set_row(beat)
        qtmodeltester.check(reasons)
        qtmodeltester.check(fps)
        assert [i[0] for i in reasons.items()] == ["tempo_map"]
        assert "16 s: 96 BPM" in reasons.index(0, 2).data()
        differing = [name for name, _, _, differs in fps.items() if differs]
        assert differing == ["tempo_map"]
        assert reasons.index(0, 0).parent() == QModelIndex()
    finally:
        session.close()


def _multi(model: Any, index: QModelIndex, role: int, stale: object = "left over") -> object:
    """What ``multiData`` answers for one role (Qt reuses its role buffers: ``stale`` is in
    the buffer before the call, as the value of the previous cell would be)."""
    item = QModelRoleData(role)
    item.setData(stale)
    model.multiData(index, QModelRoleDataSpan(item))
    return item.data()


def test_multi_data_answers_like_data(demo_project: Path) -> None:
    """Delegates ask for every role of a cell in one call (multiData): the answers are
    data()'s, through the proxies too, and a role without a value is cleared."""
    session = _session(demo_project)
    try:
        diagnosis = session.diagnose()
        model = DescriptorTableModel()
        model.set_rows(diagnosis.for_source("drums"))
        proxy = DescriptorFilterProxy()
        proxy.setSourceModel(model)
        roles = (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.TextAlignmentRole,
            Qt.ItemDataRole.ForegroundRole,
            StateRole,
        )
        for m in (model, proxy):
            for row in range(m.rowCount()):
                for col in range(m.columnCount()):
                    idx = m.index(row, col)
                    for role in roles:
                        assert _multi(m, idx, role) == idx.data(role), (row, col, role)
        # no alignment for the feature column: the buffer's previous value is not kept
        assert _multi(proxy, proxy.index(0, 0), Qt.ItemDataRole.TextAlignmentRole, 130) is None
        tree = SourceTreeModel()
        tree.set_tree(
            build_tree(session.project, diagnosis, session.source_info, session.source_status)
        )
        tree_proxy = SourceFilterProxy()
        tree_proxy.setSourceModel(tree)
        top = tree_proxy.index(0, 0)
        assert _multi(tree_proxy, top, Qt.ItemDataRole.DisplayRole) == "drums"
        assert _multi(tree_proxy, top, CountsRole) == top.data(CountsRole)
    finally:
        session.close()


def test_updates_announce_only_changed_cells(demo_project: Path) -> None:
    """A row whose state changed announces its changed cells one by one (views repaint just
    those); a tree node whose counts changed announces itself alone."""
    session = _session(demo_project)
    try:
        diagnosis = session.diagnose()
        rows = diagnosis.for_source("drums")
        model = DescriptorTableModel()
        model.set_rows(rows)
        changes: list[tuple[int, int, int, int]] = []
        model.dataChanged.connect(
            lambda a, b, roles=(): changes.append((a.row(), a.column(), b.row(), b.column()))
        )
        beat = next(r for r in rows if r.key.feature == "beat_rms")
        i = model.row_of(beat.key)
        model.set_rows(
            [
                dataclasses.replace(r, progress=0.5, state="running") if r is beat else r
                for r in rows
            ]
        )
        assert changes
        assert all(a == b == i and c == d for a, c, b, d in changes)  # single cells of that row
        assert COL_STATE in {c for _, c, _, _ in changes}
        assert len(changes) < len(COLUMNS)

        tree = SourceTreeModel()
        nodes = build_tree(session.project, diagnosis, session.source_info, session.source_status)
        tree.set_tree(nodes)
        announced: list[tuple[int, int, int]] = []
        tree.dataChanged.connect(
            lambda a, b, roles=(): announced.append((a.parent().row(), a.row(), b.row()))
        )
        (drums, tracks), *rest = nodes
        changed = [(drums, [dataclasses.replace(tracks[1], counts={"running": 1}), *tracks[2:]])]
        changed[0][1].insert(0, tracks[0])
        assert not tree.set_tree(changed + rest)  # updated in place, not reset
        assert announced == [(0, 1, 1)]  # the snare track of drums, alone
    finally:
        session.close()
