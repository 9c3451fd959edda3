# make run   - set everything up and start the app (SQLite + local media unless configured)
# make test  - set everything up and run the whole test suite (SQLite and PostgreSQL), the
#              quick chaos soak last, on its own
# make soak  - only the quick chaos soak (bench/soak.py --quick, a few minutes)
# make procfile - run the Procfile as Heroku does (release, then web and worker) with honcho
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test soak procfile lint format bench clean check-python

check-python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.11 or python3 on PATH)"; exit 1; }

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/python -m bot run

# In parallel (pytest-xdist): most tests wait on an app process, not on the CPU.
# PYTEST_ARGS comes last, so PYTEST_ARGS="-n 0" runs them one at a time again. Then the soak,
# alone: its ack-latency goal must measure the app, not the rest of the suite beside it.
test: $(VENV)/.dev
	$(BIN)/python -m pytest -n 4 -m "not soak" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory soak

soak: $(VENV)/.dev
	$(BIN)/python -m pytest -p no:cacheprovider tests/e2e/test_soak.py

# The Procfile says `python`: the venv's, first on PATH. honcho reads .env as the app does, and
# `honcho start` alone would start `release` too, then stop everything when it exits: the
# release phase runs first, on its own, as on Heroku.
HONCHO := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho
procfile: $(VENV)/.dev
	@$(HONCHO) run sh -c 'case "$$DATABASE_URL" in postgres*) ;; *) echo "make procfile runs web and worker as on Heroku, on PostgreSQL: set DATABASE_URL=postgres://... (environment or .env)"; exit 2;; esac'
	$(HONCHO) start release
	$(HONCHO) start web worker

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.dev
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
