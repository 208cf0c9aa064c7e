# civicair — the two commands of a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole service with simulated sensors (embedded PostgreSQL + MQTT broker unless configured).
run: $(STAMP)
	$(VENV)/bin/civicair up --demo

## Lint, type-check and run every test (real PostgreSQL + MQTT: the machine's, else embedded).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core gateway ingest calibration api open_export firmware_tools
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core gateway ingest calibration api open_export firmware_tools

clean:
	rm -rf $(VENV) .civicair .pytest_cache .ruff_cache .mypy_cache
