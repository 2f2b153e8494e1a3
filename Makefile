# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo serve test quick lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/continuity demo

# The web app and the HTTP API (the dev extra holds the service extra's packages).
serve: $(STAMP)
	$(BIN)/continuity serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src/agent_continuity

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# The inner loop: no durability suites (tests/chaos, the Hypothesis properties)
# and no slow tests, stop at the first failure. `make test` runs everything.
quick: $(STAMP)
	$(BIN)/pytest -x -q -m "not slow" --ignore=tests/chaos --ignore=tests/test_properties.py

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The README's screenshots of the web app (docs/screenshots/), taken with real Chromium.
.PHONY: screenshots
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py
