"""The README's generated parts (parameter and calculator tables, the plugin example) hold
what the code generates: regenerate with ``python scripts/build_readme.py``.

Each block is compared with what the code generates on its own, never with a re-rendering of
the README itself: that comparison once passed with every block empty, because the renderer
could not fill an empty block and so returned the README unchanged."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.params import param_table

ROOT = Path(__file__).resolve().parents[2]
HINT = "run python scripts/build_readme.py"


def _build_readme() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_readme", ROOT / "scripts" / "build_readme.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_readme = _build_readme()
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", ["params", "calculators", "plugin", "mistakes"])
def test_readme_block_holds_what_the_code_generates(name: str) -> None:
    expected = build_readme.generated()[name]
    found = build_readme.block(README, name)  # raises if the block is missing or doubled
    assert found.strip(), f"README block {name!r} is empty: {HINT}"
    assert found == expected, f"README block {name!r} is out of date: {HINT}"


def test_every_block_is_checked() -> None:
    # a block added to the script but not to the parametrized test above would go unchecked
    assert set(build_readme.BLOCKS) == {"params", "calculators", "plugin", "mistakes"}


def test_generated_parts_cover_the_code() -> None:
    """What the generators produce, checked against their sources (not their own output)."""
    made = build_readme.generated()
    params = made["params"].splitlines()[2:]
    assert [row.split(" | ")[0] for row in params] == [
        f"| `{name}`" for name, _, _ in param_table()
    ]
    calculators = made["calculators"].splitlines()[2:]
    assert [row.split(" | ")[0] for row in calculators] == [
        f"| `{c.id}`" for c in Registry.builtin()
    ]
    example = (ROOT / "docs" / "example_plugin.py").read_text().rstrip()
    assert made["plugin"] == f"```python\n{example}\n```"


def test_render_fills_empty_blocks_and_keeps_the_prose() -> None:
    text = "".join(
        f"Prose before {name}.\n\n<!-- {name}:begin -->\n<!-- {name}:end -->\n\nProse after.\n"
        for name in build_readme.BLOCKS
    )
    rendered = build_readme.render(text)
    assert {
        n: build_readme.block(rendered, n) for n in build_readme.BLOCKS
    } == build_readme.generated()
    assert build_readme.render(rendered) == rendered  # a second run changes nothing
    for name in build_readme.BLOCKS:
        assert f"Prose before {name}.\n\n<!-- {name}:begin -->\n" in rendered
        assert f"<!-- {name}:end -->\n\nProse after.\n" in rendered


def test_render_refuses_a_missing_block() -> None:
    text = README.replace("<!-- plugin:end -->", "")
    with pytest.raises(ValueError, match="plugin"):
        build_readme.render(text)


def test_readme_starts_with_the_two_commands() -> None:
    head = README.split("\n\n", 3)[:3]
    assert "make run" in "\n".join(head) and "make test" in "\n".join(head)


def test_every_cli_command_is_documented() -> None:
    from diagnostics_app.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"diagnostics-app {name}" in README, name
