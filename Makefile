# make run  : install what is missing, then open the app on a demo project
# make test : install what is missing, then run the whole suite (lint, types, tests)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= $(HOME)/.cache/diagnostics-app/demo

.PHONY: run test deps system-deps lint typecheck layers pytest bench bundle smoke clean

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

deps: system-deps $(STAMP)

run: deps
	@bash scripts/run-gui.sh $(PY) demo "$(DEMO)"

lint: deps
	$(VENV)/bin/ruff check diagnostics_app tests bench
	$(VENV)/bin/ruff format --check diagnostics_app tests bench

typecheck: deps
	$(VENV)/bin/mypy

# The import contracts in pyproject.toml ([tool.importlinter]): layers, a Qt-free core, no cycles.
layers: deps
	$(VENV)/bin/lint-imports

# Two workers; a crashed worker ends the run at once with a failure instead of being replaced
# (xdist's loadgroup scheduler can wait for ever on a replaced worker: docs/testing.md).
PYTEST_XDIST := -n 2 --dist loadgroup --max-worker-restart=0

pytest: deps
	$(PY) -m pytest $(PYTEST_XDIST) -q

test: lint typecheck layers pytest

bench: deps
	$(PY) bench/analysis.py
	$(PY) bench/diagnostics.py
	$(PY) bench/gui.py

bundle: deps
	$(PY) -m pip install -q --disable-pip-version-check -e '.[bundle]'
	bash packaging/build.sh

smoke:
	bash packaging/smoke-test

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
