"""Regenerates the README's generated parts from the code (tables, the example plugin).

Run ``python scripts/build_readme.py``; ``tests/core/test_docs.py`` fails when a generated part
of the README is empty, missing or out of date, so the documentation cannot drift from the code.

A generated part sits between two marker lines::

    <!-- NAME:begin -->
    ...generated text, replaced wholesale on every run...
    <!-- NAME:end -->
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diagnostics_app.core.docs import calculator_table, parameter_table  # noqa: E402
from diagnostics_app.core.mistakes import mistakes_table  # noqa: E402


def _plugin_example() -> str:
    return "```python\n" + (ROOT / "docs" / "example_plugin.py").read_text().rstrip() + "\n```"


BLOCKS: dict[str, Callable[[], str]] = {
    "params": parameter_table,
    "calculators": calculator_table,
    "plugin": _plugin_example,
    "mistakes": mistakes_table,
}


def _pattern(name: str) -> re.Pattern[str]:
    # The body group may be empty: the begin marker's own line break is outside it, and the
    # body's last line break is optional, so "begin\nend" and "begin\n...\nend" both match.
    return re.compile(
        rf"^(<!-- {name}:begin -->\n)(.*?)(?:\n)?(^<!-- {name}:end -->)$", re.S | re.M
    )


def generated() -> dict[str, str]:
    """What each block must hold, computed from the code alone (never from the README)."""
    out = {}
    for name, make in BLOCKS.items():
        body = make().strip("\n")
        if not body.strip():
            raise ValueError(f"block {name!r}: the code generated nothing")
        out[name] = body
    return out


def block(text: str, name: str) -> str:
    """The current body of block ``name`` in ``text``; a block that is missing, or present
    twice, is an error (a silent no-op is how an empty README once passed its test)."""
    matches = list(_pattern(name).finditer(text))
    # count the markers too: a stray second begin marker would otherwise hide inside one match
    markers = text.count(f"<!-- {name}:begin -->") + text.count(f"<!-- {name}:end -->")
    if len(matches) != 1 or markers != 2:
        raise ValueError(
            f"README must hold the block <!-- {name}:begin --> … <!-- {name}:end --> "
            f"exactly once, on lines of their own (found {len(matches)})"
        )
    return matches[0].group(2)


def render(text: str) -> str:
    """``text`` with every block's body replaced by what the code generates (empty or not)."""
    for name, body in generated().items():
        block(text, name)  # raises on a missing or duplicated block
        text = _pattern(name).sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(3), text)
    return text


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
