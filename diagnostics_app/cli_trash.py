"""``diagnostics-app trash PROJECT [--restore ID | --purge [ID]] [--json]``: what prunes left.

A prune moves features to the store's trash in one transaction and purges them in a second
(the CLI's ``prune``) or later (the GUI keeps them for undo; the store purges trash older than
a week at open). A process killed between the two leaves data that no row lists: this command
lists it, puts it back, or deletes it for real, so nothing a prune did is ever unreachable.

Output follows ``prune``'s: text by default, or with ``--json`` one object with
``schema_version`` and the items, each ``{source, feature, calculator, profile, params,
bytes}``. Exit 0, or 2 with a one-line message for an unknown prune id.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Sequence
from typing import Any

from diagnostics_app.cli import EXIT_OK, JSON_SCHEMA_VERSION, UsageError, _print_json
from diagnostics_app.core.project import load_project
from diagnostics_app.core.store import EntryKey, FeatureStore, TrashItem


def add_parser(sub: Any) -> None:
    """Register the ``trash`` subcommand on ``build_parser``'s subparsers."""
    p = sub.add_parser("trash", help="list, restore or purge what prune moved to the trash")
    p.add_argument("project")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--restore", metavar="ID", help="put back what prune ID moved")
    what.add_argument(
        "--purge",
        nargs="?",
        const="",
        metavar="ID",
        help="delete the trash for real: all of it, or prune ID's",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)  # cli._dispatch calls it


def run(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    with FeatureStore.open(project.cache_path()) as store:
        if args.restore is not None:
            return _restore(store, args.restore, args.json)
        if args.purge is not None:
            return _purge(store, args.purge or None, args.json)
        return _list(store, args.json)


def _item(key: EntryKey, feature: str, nbytes: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": key.source_id,
        "feature": feature,
        "calculator": key.calculator_id,
        "profile": key.profile,
        "params": key.params_dict,
    }
    if nbytes is not None:
        out["bytes"] = nbytes
    return out


def _by_prune(items: Iterable[TrashItem]) -> list[dict[str, Any]]:
    """One object per prune, oldest first: ``{prune_id, pruned, bytes, items}``."""
    prunes: dict[str, dict[str, Any]] = {}
    for t in items:
        group = prunes.setdefault(
            t.prune_id, {"prune_id": t.prune_id, "pruned": t.pruned, "bytes": 0, "items": []}
        )
        group["bytes"] += t.nbytes
        group["items"].append(_item(t.key, t.feature, t.nbytes))
    return list(prunes.values())


def _known(store: FeatureStore, prune_id: str) -> list[TrashItem]:
    items = store.trash(prune_id)
    if not items:
        ids = sorted({t.prune_id for t in store.trash()})
        known = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "") if ids else "it is empty"
        raise UsageError(f"diagnostics-app: no prune {prune_id!r} in the trash (known: {known})")
    return items


def _list(store: FeatureStore, as_json: bool) -> int:
    prunes = _by_prune(store.trash())
    total = sum(p["bytes"] for p in prunes)
    if as_json:
        _print_json({"schema_version": JSON_SCHEMA_VERSION, "trash": prunes, "bytes": total})
        return EXIT_OK
    for p in prunes:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p["pruned"]))
        print(f"{p['prune_id']}  {when}  {len(p['items'])} feature(s)  {p['bytes']:,} bytes")
        for item in p["items"]:
            print(f"    {_label(item)}")
    print(f"{len(prunes)} prune(s) in the trash, {total:,} bytes" if prunes else "trash is empty")
    return EXIT_OK


def _restore(store: FeatureStore, prune_id: str, as_json: bool) -> int:
    before = _known(store, prune_id)
    restored = [_item(key, feature) for key, feature in store.restore(prune_id)]
    # what stays: its entry was recomputed since the prune (the newer data wins)
    kept = [_item(t.key, t.feature, t.nbytes) for t in store.trash(prune_id)]
    if as_json:
        _print_json(
            {
                "schema_version": JSON_SCHEMA_VERSION,
                "prune_id": prune_id,
                "restored": restored,
                "kept": kept,
            }
        )
        return EXIT_OK
    _print_items("restored", restored)
    _print_items("kept in the trash (recomputed since the prune)", kept)
    print(f"{len(restored)} of {len(before)} feature(s) of {prune_id} restored")
    return EXIT_OK


def _purge(store: FeatureStore, prune_id: str | None, as_json: bool) -> int:
    items = _known(store, prune_id) if prune_id is not None else store.trash()
    store.purge(prune_id)
    purged = [_item(t.key, t.feature, t.nbytes) for t in items]
    total = sum(t.nbytes for t in items)
    if as_json:
        _print_json({"schema_version": JSON_SCHEMA_VERSION, "purged": purged, "bytes": total})
        return EXIT_OK
    _print_items("purged", purged)
    print(f"{len(purged)} feature(s) purged, {total:,} bytes freed")
    return EXIT_OK


def _label(item: dict[str, Any]) -> str:
    params = f" {item['params']}" if item["params"] else ""
    return f"{item['source']}  {item['feature']}  {item['calculator']}  {item['profile']}{params}"


def _print_items(verb: str, items: Sequence[dict[str, Any]]) -> None:
    for item in items:
        print(f"{verb} {_label(item)}")
