# make run  : install what is missing (the app only), then open the app on a demo project
# make test : install what is missing (the app and its test tools), then run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# One stamp per install step, so each runs once and again only when pyproject.toml changes:
# `make run` installs the app alone; the test tools (librosa, numba, mypy, ...) come with
# `make test` (or any target that runs them).
APP_STAMP  := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
DEMO   ?= $(HOME)/.cache/diagnostics-app/demo

.PHONY: run test deps test-deps system-deps lint typecheck layers pytest bench bundle smoke clean

system-deps:
	@bash scripts/system-deps.sh

$(APP_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e .
	@touch $(APP_STAMP)

$(TEST_STAMP): $(APP_STAMP)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(TEST_STAMP)

deps: system-deps $(APP_STAMP)

test-deps: deps $(TEST_STAMP)

run: deps
	@bash scripts/run-gui.sh $(PY) demo "$(DEMO)"

lint: test-deps
	$(VENV)/bin/ruff check diagnostics_app tests bench
	$(VENV)/bin/ruff format --check diagnostics_app tests bench

typecheck: test-deps
	$(VENV)/bin/mypy

# The import contracts in pyproject.toml ([tool.importlinter]): layers, a Qt-free core, no cycles.
layers: test-deps
	$(VENV)/bin/lint-imports

# Two workers; a crashed worker ends the run at once with a failure instead of being replaced
# (xdist's loadgroup scheduler can wait for ever on a replaced worker: docs/testing.md).
PYTEST_XDIST := -n 2 --dist loadgroup --max-worker-restart=0

pytest: test-deps
	$(PY) -m pytest $(PYTEST_XDIST) -q

test: lint typecheck layers pytest

bench: test-deps
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
