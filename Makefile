# One command per task. Every target creates (or reuses) the virtualenv itself, so a fresh machine with
# only Python 3.10+ and git needs nothing else. The venv is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
PYTEST_ARGS ?=
KEEP ?= 0

.PHONY: help venv demo test test-unit test-integration e2e faults check lint format typecheck docs bench screenshot clean compat

help:
	@echo "make demo     run the whole product on real Airflow against the embedded emulator"
	@echo "make test     run every test suite (unit, emulator, integration, faults, e2e) and build the docs"
	@echo "make check    lint + typecheck + test (what CI runs)"
	@echo "make docs     build the Sphinx docs with warnings as errors"
	@echo "make bench    run the benchmarks and print their figures"
	@echo "make faults   run the fault suite and print its summary"
	@echo "make race     run the deferral-race reproduction 20 times on real Airflow (~10 min)"
	@echo "make compat   unit + dag.test() suites + a triggerer restart on every (Airflow, Python) pair of the table"
	@echo "              (AIRFLOW_VERSION=3.0.6 one line, PYTHON_VERSION=3.12 one Python; from constraints/)"
	@echo "make distributed  PostgreSQL + Redis + CeleryExecutor (2 workers) + 2 triggerers, one killed, one frozen"
	@echo "                  (installs postgresql and redis-server with apt if absent; ~5 min)"

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev,docs]"
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: venv
	KEEP=$(KEEP) $(BIN)/python scripts/demo.py

test: venv
	$(BIN)/python scripts/run_pytest.py $(PYTEST_ARGS)
	$(MAKE) --no-print-directory docs

test-unit: venv
	$(BIN)/python scripts/run_pytest.py tests/unit tests/emulator $(PYTEST_ARGS)

test-integration: venv
	$(BIN)/python scripts/run_pytest.py tests/integration $(PYTEST_ARGS)

e2e: venv
	$(BIN)/python scripts/run_pytest.py tests/e2e $(PYTEST_ARGS)

faults: venv
	$(BIN)/python scripts/run_pytest.py tests/faults -s $(PYTEST_ARGS)

# Issue 18: Airflow's stale-executor-event race, 20 runs (the normal e2e suite runs 2).
.PHONY: race
race: venv
	ALTINN_E2E_RACE_RUNS=20 $(BIN)/python scripts/run_pytest.py tests/e2e/test_defer_race.py -s $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

check: lint typecheck test

docs: venv
	AIRFLOW_HOME=$(CURDIR)/.airflow-docs $(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench: venv
	$(BIN)/python benchmarks/run_all.py

screenshot: venv
	$(BIN)/python scripts/screenshot_connection_form.py

# The compatibility matrix (docs/compatibility.rst): one venv per (Airflow, Python) pair, built from the pinned
# constraints/airflow-<version>-py<python>.txt by scripts/compat.py and reused until those files change.
# `make compat` runs every pair that has a constraints file; AIRFLOW_VERSION=3.0.6 keeps the pairs of one line,
# PYTHON_VERSION=3.12 those on one Python (both: one pair). COMPAT_LINES="3.0.6 3.3.2" runs several lines.
COMPAT_LINES ?=
COMPAT_VENVS ?= .venv-compat
COMPAT_TESTS ?= tests/unit tests/emulator tests/integration tests/e2e/test_watcher_restart.py
PYTHON_VERSION ?=
ifeq ($(origin AIRFLOW_VERSION),file)
COMPAT_VERSIONS := $(COMPAT_LINES)
else
COMPAT_VERSIONS := $(AIRFLOW_VERSION)
endif

compat:
	$(PYTHON) scripts/compat.py $(COMPAT_VERSIONS) $(if $(PYTHON_VERSION),--python "$(PYTHON_VERSION)") \
		--venvs "$(COMPAT_VENVS)" --tests "$(COMPAT_TESTS)" -- $(PYTEST_ARGS)

clean:
	rm -rf docs/_build .mypy_cache .ruff_cache .demo .airflow-test

# `make distributed`: the provider on a distributed Airflow (PostgreSQL, Redis, CeleryExecutor with two
# workers, two triggerers; docs/guides/distributed.rst). Installs Debian's postgresql and redis-server if
# absent (as root), and the `distributed` extra into its own venv, rebuilt only when what it installs changes.
# DIST_ARGS="--runs 12 --events 120" runs the shorter variant CI runs.
.PHONY: distributed distributed-venv
DIST_VENV ?= .venv-distributed
DIST_ARGS ?=
DIST_STAMP := $(DIST_VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)-$(AIRFLOW_VERSION)

distributed-venv: $(DIST_STAMP)

$(DIST_STAMP): pyproject.toml
	@test -x $(DIST_VENV)/bin/python || $(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DIST_VENV)/bin/python -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[distributed]"
	@rm -f $(DIST_VENV)/.installed-*
	@touch $@

distributed: distributed-venv
	$(DIST_VENV)/bin/python scripts/distributed.py $(DIST_ARGS)
