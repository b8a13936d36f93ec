"""Which mistake in a project file gives which outcome, shown by running the code itself.

The README's table of mistakes (``scripts/build_readme.py``, block ``mistakes``) is generated
from :data:`EXAMPLES`: each example edits a small valid project, loads it with the real loader
and diagnoses it with the built-in calculators, so the state and message the table shows are
the ones ``check`` and the GUI show. The rules themselves live in :mod:`core.project` (what is
refused, what is an invalid request or profile, what is a warning) and :mod:`core.resolve`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics import diagnose
from diagnostics_app.core.errors import ProjectError
from diagnostics_app.core.project import project_from_json

Doc = dict[str, Any]


@dataclass(frozen=True)
class Example:
    mistake: str
    change: Callable[[Doc], None]


def _base() -> Doc:
    return {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "profiles": {"fine": {"window_size": 1024, "hop_size": 256}},
        "sources": [{"id": "drums", "path": "drums.wav"}],
        "tracks": [
            {"id": "kick", "source": "drums", "requests": [{"feature": "rms"}]},
            {"id": "snare", "source": "drums", "requests": [{"feature": "centroid"}]},
        ],
    }


def _request(doc: Doc, request: Any) -> None:
    doc["tracks"][1]["requests"].append(request)


def _bad_fine_profile(doc: Doc) -> None:
    doc["profiles"]["fine"]["window_size"] = -3
    _request(doc, {"feature": "rms", "profile": "fine"})


EXAMPLES: tuple[Example, ...] = (
    Example("misspelt key in a request", lambda d: _request(d, {"feture": "mel"})),
    Example("request without a feature", lambda d: _request(d, {"profile": "fine"})),
    Example("unknown feature", lambda d: _request(d, {"feature": "specrogram"})),
    Example(
        "unknown calculator",
        lambda d: _request(d, {"feature": "pitch", "calculator": "core.pich"}),
    ),
    Example(
        "calculator that does not produce the feature",
        lambda d: _request(d, {"feature": "rms", "calculator": "core.pitch"}),
    ),
    Example("unknown profile", lambda d: _request(d, {"feature": "rms", "profile": "fien"})),
    Example(
        "bad parameter in a request",
        lambda d: _request(d, {"feature": "mel", "params": {"n_mels": "many"}}),
    ),
    Example(
        "unknown parameter in a request",
        lambda d: _request(d, {"feature": "mel", "params": {"n_mel": 64}}),
    ),
    Example(
        "bad parameter in a profile (every request using it)",
        _bad_fine_profile,
    ),
    Example(
        "parameters that contradict each other",
        lambda d: _request(d, {"feature": "mel", "params": {"fmin": 900.0, "fmax": 300.0}}),
    ),
    Example("unknown key in a track", lambda d: d["tracks"][0].update(colour="red")),
    Example("unknown key at the top level", lambda d: d.update(tempo_mpa=[])),
    Example(
        "key starting with `_` (a note)", lambda d: _request(d, {"feature": "mel", "_why": "x"})
    ),
    Example("track of an unknown source", lambda d: d["tracks"][0].update(source="drum")),
    Example("source without a path", lambda d: d["sources"][0].pop("path")),
    Example("bad tempo map", lambda d: d.update(tempo_map=[{"time": 0, "bpm": 0}])),
    Example("`sources` not a list", lambda d: d.update(sources={})),
    Example("another `format`", lambda d: d.update(format="something/else")),
    Example("newer `schema_version`", lambda d: d.update(schema_version=2)),
)


def outcome(example: Example) -> tuple[str, str]:
    """(what you get, the message) for one example, as ``check`` reports it."""
    doc = _base()
    example.change(doc)
    try:
        project = project_from_json(copy.deepcopy(doc))
    except ProjectError as exc:
        return "file refused (exit 2)", str(exc)
    rows = diagnose(project, Registry.builtin(), {}, []).rows
    invalid = [r for r in rows if r.state == "invalid"]
    if invalid:
        return f"{len(invalid)} row{'s' if len(invalid) > 1 else ''} `invalid`", str(
            invalid[0].message
        )
    if project.warnings:
        return "a warning, no state changes", project.warnings[0]
    return "nothing: the rows are as without it", ""


def mistakes_table() -> str:
    lines = ["| mistake | what you get | message |", "|---|---|---|"]
    for example in EXAMPLES:
        got, message = outcome(example)
        shown = f"`{message}`" if message else "—"
        lines.append(f"| {example.mistake} | {got} | {shown} |")
    return "\n".join(lines)
