"""A source tree of many sources is laid out without asking Python for every node: the
structure is a skeleton of C++ items (built with the tree, in the diagnosis worker), the view
goes through the Python filter proxy only while a filter is on, and the data of a node is
asked only for the rows painted (bench/library.py: 20,000 sources laid out in ~0.5 s of Python
calls on the GUI thread before)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex

from diagnostics_app.qt.models import sources
from diagnostics_app.qt.models.roles import KeyRole
from diagnostics_app.qt.models.sources import BuiltTree, SourceTreeModel, Tree, TreeNode
from diagnostics_app.qt.widgets.source_tree import SourceTreePanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

N = 3000


def _nodes(n: int, state: str = "missing") -> Tree:
    return [
        (
            TreeNode("source", f"s{i:05d}", f"s{i:05d}", f"s{i:05d}", {state: 1}),
            [TreeNode("track", f"t{i:05d}", f"take {i}", f"s{i:05d}", {state: 1})],
        )
        for i in range(n)
    ]


def _tree(n: int = N) -> BuiltTree:
    return sources.built_tree(_nodes(n))


def _count_python_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"filterAcceptsRow": 0, "data": 0}
    real_filter = sources.SourceFilterProxy.filterAcceptsRow
    real_data = SourceTreeModel.data

    def counting_filter(self: Any, row: int, parent: Any) -> bool:
        calls["filterAcceptsRow"] += 1
        return real_filter(self, row, parent)

    def counting_data(self: Any, index: Any, role: int = 0) -> Any:
        calls["data"] += 1
        return real_data(self, index, role)

    monkeypatch.setattr(sources.SourceFilterProxy, "filterAcceptsRow", counting_filter)
    monkeypatch.setattr(SourceTreeModel, "data", counting_data)
    return calls


def test_a_large_tree_is_shown_and_selected_without_a_python_call_per_node(
    qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_python_calls(monkeypatch)
    panel = SourceTreePanel()
    qtbot.addWidget(panel)
    panel.resize(300, 400)
    panel.show()
    tree = _tree()
    panel.set_tree(tree)
    assert tree.items is None  # the skeleton built with the tree went to the model
    assert panel.select(("track", f"t{N - 7:05d}"))  # lays the whole tree out
    qtbot.waitExposed(panel)
    panel.view.viewport().repaint()
    assert calls["filterAcceptsRow"] == 0
    # the layout's questions (asked per node) are answered by Qt's item model, not Python's
    for name in ("index", "parent", "rowCount", "hasChildren", "flags"):
        assert name not in vars(SourceTreeModel), name
    assert 0 < calls["data"] < 300  # the rows painted, not the 6,000 nodes
    assert panel.current_key() == ("track", f"t{N - 7:05d}")
    assert panel.model.rowCount() == N
    assert panel.model.rowCount(panel.model.index_of(("source", "s00042"))) == 1


def test_a_filter_goes_through_the_filter_proxy_and_the_selection_stays(qtbot: Any) -> None:
    panel = SourceTreePanel()
    qtbot.addWidget(panel)
    panel.set_tree(_tree(50))
    assert panel.select(("source", "s00012"))
    assert panel.view.model() is panel.unfiltered
    panel.filter_edit.setText("s0001")
    assert panel.view.model() is panel.filter_proxy
    assert panel.proxy.rowCount() == 10  # s00010 .. s00019
    assert panel.current_key() == ("source", "s00012")
    panel.filter_edit.setText("take 4")  # s00012 hidden: nothing selected, nothing emitted
    assert panel.current_key() is None
    panel.filter_edit.clear()
    assert panel.view.model() is panel.unfiltered
    assert panel.proxy.rowCount() == 50
    assert panel.current_key() == ("source", "s00012")  # what was shown is selected again
    seen: list[Any] = []
    panel.selectionChanged.connect(seen.append)
    panel.view.setCurrentIndex(panel.proxy.index(3, 0))  # the view's new selection model
    assert seen == [("source", "s00003")]


def test_the_same_tree_in_two_models_and_a_plain_list(qtbot: Any) -> None:
    tree = _tree(5)
    first, second = SourceTreeModel(), SourceTreeModel()
    assert first.set_tree(tree)
    assert second.set_tree(tree)  # its own skeleton (items belong to one model)
    plain: Tree = list(tree)[:3]
    third = SourceTreeModel()
    assert third.set_tree(plain)
    for model, n in ((first, 5), (second, 5), (third, 3)):
        assert model.rowCount() == n
        for key in (("source", "s00001"), ("track", f"t{n - 1:05d}"), ("track", "nope")):
            # the built tree's key map (first, second) and the walk of a plain list agree
            index = model.index_of(key)
            assert (index.data(KeyRole) if index.isValid() else None) == (
                key if key[1] != "nope" else None
            )
        kid = model.index(0, 0, model.index(n - 1, 0))
        assert kid.data(KeyRole) == ("track", f"t{n - 1:05d}")
        assert model.node(kid) is tree[n - 1][1][0]
        assert model.node(QModelIndex()) is None
        assert not model.index_of(("source", ["not", "a", "key"])).isValid()  # type: ignore[arg-type]


def test_an_update_in_place_compares_facts_not_nodes(
    qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = SourceTreeModel()
    model.set_tree(_tree(N))
    announced: list[tuple[int, int, int]] = []
    model.dataChanged.connect(
        lambda a, b, roles=(): announced.append((a.parent().row(), a.row(), b.row()))
    )
    compared: list[int] = []
    real_eq = TreeNode.__eq__

    def counting_eq(self: TreeNode, other: object) -> bool:
        compared.append(1)
        return real_eq(self, other)

    monkeypatch.setattr(TreeNode, "__eq__", counting_eq)
    assert not model.set_tree(_tree(N))  # equal: nothing announced
    assert announced == []
    nodes = _nodes(N)
    source, tracks = nodes[1234]
    nodes[1234] = (source, [dataclasses.replace(tracks[0], counts={"running": 1})])
    assert not model.set_tree(sources.built_tree(nodes))
    assert announced == [(1234, 0, 0)]  # that track alone
    assert compared == []  # no node compared in Python


def test_a_large_tree_of_a_new_shape_is_frozen_once(
    demo_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full collections traversed a 20,000-source tree again and again: frozen when built
    with a new shape (after an edit), not at every re-derivation."""
    from diagnostics_app.core import edits
    from diagnostics_app.core.session import Session

    frozen: list[int] = []
    monkeypatch.setattr(sources, "freeze_long_lived", lambda: frozen.append(1))
    monkeypatch.setattr(sources, "_frozen_shape", [])
    monkeypatch.setattr(sources, "FREEZE_SOURCES", 3)
    with Session.open(demo_project) as session:

        def build() -> BuiltTree:
            tree = sources.build_tree(
                session.project, session.diagnose(), session.source_info, session.source_status
            )
            assert isinstance(tree, BuiltTree)
            return tree

        build()
        assert frozen == [1]
        build()  # the same shape (counts may change): not again
        assert frozen == [1]
        session.edit("Remove bass", lambda p: edits.remove_source(p, "bass"))
        build()  # a new shape (bass an orphan)
        assert frozen == [1, 1]
        build()
        assert frozen == [1, 1]
        monkeypatch.setattr(sources, "FREEZE_SOURCES", 4)
        session.undo()
        build()  # a new shape, but below the size worth it
        assert frozen == [1, 1]
