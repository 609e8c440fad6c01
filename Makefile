# Backchannel — the two commands are `make run` and `make test`.
# The interpreter .venv is made with: see scripts/pick-python.sh for the choice and why.
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck pytest bench clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: install
	BACKCHANNEL_DEV_MODE=true $(BIN)/backchannel serve --seed-demo

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install
	$(BIN)/mypy --strict src

# Two processes (pytest-xdist, one test file each at a time): most tests wait on servers,
# subprocesses and the browser (5m49 -> 3m48 for the tests on one machine). Tests marked
# `alone` (the quick benchmark, which loads both cores) run after them, by themselves.
PYTEST_WORKERS ?= 2
pytest: install
# Exit status 5 is "no test selected": PYTEST_ARGS may pick tests of one phase only.
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -m 'not alone' --cov --cov-report=term $(PYTEST_ARGS) || test $$? -eq 5
	$(BIN)/pytest -m alone $(PYTEST_ARGS) || test $$? -eq 5

test: lint typecheck browser pytest

# Debian's chromium for the browser tests (tests/e2e); never a Playwright browser download.
browser:
	sh scripts/install-browser.sh

bench: install
	$(BIN)/python bench/run_bench.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) var .coverage
