# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
# Most tests wait on real sites (sockets, workers, timers), so they run well
# in parallel even on two cores; each test file stays on one worker.
TEST_WORKERS ?= 4
BIN := $(VENV)/bin
# What running needs (`make run`), and on top of it the test and lint tools.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: install run dist test test-under-load lint check ci clean lab lab-down bench-failover \
	bench-methods

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(RUN_STAMP) $(STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m appliance.devpair

# The wheel that "Installing on a server" (README) installs: code, pages, static files.
dist: install
	rm -rf dist
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: install
	APPLIANCE_DATA_DIR=$$(mktemp -d) $(BIN)/python manage.py check
	APPLIANCE_DATA_DIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

test: install
	tests/setup-system
	$(MAKE) --no-print-directory lint check
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The whole suite while stress-ng keeps every core busy: a test that passes only on a
# quiet machine fails here (docs/BENCHMARKS.md, "The suite under load").
# Four stress-ng workers a core: the suite keeps about ten processes runnable, and the
# scheduler shares the CPU among them, so nproc workers would get about a fifth of it
# and four a core about half (docs/BENCHMARKS.md, "How much load the runs under load had").
LOAD_WORKERS ?= $(shell echo $$((4 * $$(nproc))))
test-under-load: install
	tests/setup-system
	tests/under-load $(LOAD_WORKERS) $(MAKE) --no-print-directory test

# The namespace lab (root): two complete sites, a client and the outside world.
lab: install
	tests/setup-system
	$(BIN)/python -m tests.lab up

lab-down: install
	$(BIN)/python -m tests.lab down

bench-failover: install
	tests/setup-system
	$(BIN)/python bench/failover_time.py --trials 5 --soak-minutes 5

# IPv4, IPv6 and DNS side by side: how soon a client follows each after a takeover.
bench-methods: install
	tests/setup-system
	$(BIN)/python bench/takeover_methods.py --trials 5

clean:
	rm -rf var dist build $(VENV)
