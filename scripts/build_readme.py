"""Regenerates the README's generated parts from the code (tables, the example plugin).

Run ``python scripts/build_readme.py``; ``tests/core/test_docs.py`` fails when the README is out
of date, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diagnostics_app.core.docs import calculator_table, parameter_table  # noqa: E402

BLOCKS = {
    "params": parameter_table,
    "calculators": calculator_table,
    "plugin": lambda: (
        "```python\n" + (ROOT / "docs" / "example_plugin.py").read_text().rstrip() + "\n```"
    ),
}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(\n<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + m.group(2), text)
    return text


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
