"""The import contracts in ``pyproject.toml`` (``[tool.importlinter]``) hold: the layers of the
core and the front ends, a core free of Qt, audio devices and front ends, no cycles in the core.

``make layers`` runs the same check for humans; this test makes CI enforce it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), "lint-imports is missing: pip install -e '.[test]'"
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    # From the repo root: lint-imports reads pyproject.toml there and puts that directory first
    # on sys.path, so it checks this checkout even when the installed package points elsewhere.
    # No cache: two runs in one checkout (xdist, another shell) must not share a cache file.
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # every contract in the file was checked, none was dropped by a configuration slip
    assert f"Contracts: {len(contracts)} kept, 0 broken." in report, report
