"""`make run` installs the app alone; `make test` adds the test tools (librosa, numba, mypy...),
each step once (a stamp per extra), and the app never imports a test-only package."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = {"librosa", "numba", "pytest", "hypothesis", "mypy", "ruff", "importlinter"}


def _dry_run(target: str, venv: Path) -> list[str]:
    """The commands `make -n TARGET` would run, for a venv that does not exist yet."""
    if shutil.which("make") is None:  # pragma: no cover - make is part of the toolchain
        pytest.fail("make is not installed")
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def _installs(lines: list[str]) -> list[str]:
    return [line for line in lines if "pip install" in line]


def test_make_run_installs_the_app_without_test_tools(tmp_path: Path) -> None:
    installs = _installs(_dry_run("run", tmp_path / "venv"))
    assert installs, "make run installs the app into a fresh venv"
    assert all("[test]" not in line for line in installs), installs
    assert any(re.search(r"install .*-e \.$", line) for line in installs), installs


@pytest.mark.parametrize("target", ["test", "pytest", "lint", "typecheck", "layers"])
def test_make_test_adds_the_test_tools(tmp_path: Path, target: str) -> None:
    lines = _dry_run(target, tmp_path / "venv")
    installs = _installs(lines)
    assert any("'.[test]'" in line for line in installs), installs
    # one stamp per extra: the app's, then the test tools'
    assert any(".installed-app" in line for line in lines)
    assert any(".installed-test" in line for line in lines)


def test_installed_stamps_make_steps_idempotent(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # stamps newer than pyproject.toml: nothing is installed again
    for stamp in (".installed-app", ".installed-test"):
        (venv / stamp).touch()
    assert _installs(_dry_run("run", venv)) == []
    assert _installs(_dry_run("pytest", venv)) == []


def test_test_tools_are_only_in_the_test_extra() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]

    def names(reqs: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}

    app = names(project["dependencies"])
    test = names(project["optional-dependencies"]["test"])
    assert {"librosa", "mypy", "ruff", "pytest", "hypothesis", "import-linter"} <= test
    assert not app & test


def test_the_app_imports_no_test_only_package() -> None:
    found: dict[str, str] = {}
    for path in (ROOT / "diagnostics_app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            found.update({top: str(path) for top in tops if top in TEST_ONLY})
    assert found == {}
