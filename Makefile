# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
# Most tests wait on real sites (sockets, workers, timers), so they run well
# in parallel even on two cores; each test file stays on one worker.
TEST_WORKERS ?= 4
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint check ci clean lab lab-down bench-failover

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m appliance.devpair

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

# The namespace lab (root): two complete sites, a client and the outside world.
lab: install
	tests/setup-system
	$(BIN)/python -m tests.lab up

lab-down: install
	$(BIN)/python -m tests.lab down

bench-failover: install
	tests/setup-system
	$(BIN)/python bench/failover_time.py --trials 5 --soak-minutes 5

clean:
	rm -rf var $(VENV)
