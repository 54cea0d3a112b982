# The two set-up commands: `make run` and `make test`. Each makes .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CREDWARDEN_HOME ?= $(CURDIR)/.credwarden

.PHONY: run test lint typecheck unit soak bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@PATH="$(CURDIR)/$(BIN):$$PATH" sh scripts/quickstart.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy src/credwarden

# The real OAuth servers the tests start (tests/peers): reinstalled when the lock changes.
tests/peers/node_modules/.package-lock.json: tests/peers/package-lock.json
	npm ci --prefix tests/peers --no-audit --no-fund

unit: $(VENV)/.installed-dev tests/peers/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q

test: lint typecheck unit

# The long runs of the reliability harnesses (the corruption fuzzer: 240 seeds of each kind).
soak: $(VENV)/.installed-dev
	CREDWARDEN_FUZZ_SEEDS=240 $(BIN)/python -m pytest -q -s tests/reliability

bench: $(VENV)/.installed-dev tests/peers/node_modules/.package-lock.json
	$(BIN)/python bench/read.py
	$(BIN)/python bench/refresh_storm.py
	$(BIN)/python bench/grants.py
	$(BIN)/python bench/rest.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
