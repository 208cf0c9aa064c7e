# civicair — the two commands of a fresh machine: `make run` and `make test`.
# Installs are reproducible: requirements/*.lock pin every package with its hashes
# (`make lock` regenerates them from pyproject.toml's ranges).
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
FOLDERS := core gateway ingest calibration readmodel api open_export firmware_tools migrations demo bench sta

.PHONY: run test install lint typecheck lock bench clean

$(STAMP): pyproject.toml setup.py requirements/dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Run the whole service with simulated sensors (embedded PostgreSQL + MQTT broker unless configured).
run: $(STAMP)
	$(VENV)/bin/civicair up --demo

## Lint, type-check and run every test (real PostgreSQL + MQTT: the machine's, else embedded).
test: lint
	$(PY) -m pytest

lint: $(STAMP) typecheck
	$(VENV)/bin/ruff check .

## mypy over the installed names (civicair.*): a tree of links in build/typecheck.
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/civicair
	for f in $(FOLDERS); do ln -s ../../../$$f build/typecheck/civicair/$$f; done
	for f in civicair/*.py; do ln -s ../../../$$f build/typecheck/$$f; done
	cd build/typecheck && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml -p civicair

## Regenerate the lock files from pyproject.toml (needs the network).
lock: $(STAMP)
	$(PY) -m pip install --quiet uv==0.13.9
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet \
	    -o requirements/main.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
	    --quiet -o requirements/dev.lock

clean:
	rm -rf $(VENV) build .civicair .pytest_cache .ruff_cache .mypy_cache
