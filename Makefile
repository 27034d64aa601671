# Loket: `make run` starts everything on a fresh machine; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist): CI's machine has 2 cores; `make test TEST_WORKERS=0` runs in one.
TEST_WORKERS ?= 2

.PHONY: run test lint format bench install clean messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/loket migrate
	$(BIN)/loket demo
	$(BIN)/loket serve

test: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)
	$(BIN)/python -m loket.checks.imports
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py $(if $(ONLY),--only $(ONLY),)

# Extract translatable strings into the Dutch catalogue and compile it (needs GNU gettext).
messages: $(STAMP)
	cd src/loket && DJANGO_SETTINGS_MODULE=loket.settings ../../$(BIN)/python -P -m django \
		makemessages -l nl --no-obsolete --no-location --ignore 'static/*'
	cd src/loket && DJANGO_SETTINGS_MODULE=loket.settings ../../$(BIN)/python -P -m django \
		compilemessages -l nl

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
