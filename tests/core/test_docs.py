"""The README's generated parts (parameter and calculator tables, the plugin example) match
the code: regenerate with ``python scripts/build_readme.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_generated_parts_are_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_readme", ROOT / "scripts" / "build_readme.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "README.md").read_text()
    assert module.render(text) == text, "README is out of date: run python scripts/build_readme.py"


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("\n\n", 3)[:3]
    assert "make run" in "\n".join(head) and "make test" in "\n".join(head)


def test_every_cli_command_is_documented() -> None:
    from diagnostics_app.cli import build_parser

    text = (ROOT / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"diagnostics-app {name}" in text, name
