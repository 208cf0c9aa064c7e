# civicair — the two commands of a fresh machine: `make run` and `make test`.
# Installs are reproducible: requirements/*.lock pin every package with its hashes
# (`make lock` regenerates them from pyproject.toml's ranges).
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
FOLDERS := core gateway ingest calibration readmodel api open_export firmware_tools migrations web demo bench sta
# The public web's front-end (frontend/: npm lock, esbuild) is bundled into web/static/dist at install.
NODE    ?= node
NPM     ?= npm
WEB_DIST := web/static/dist
HAVE_NODE := $(shell command -v $(NODE) >/dev/null 2>&1 && command -v $(NPM) >/dev/null 2>&1 && echo yes)
WEB_SRC := $(wildcard frontend/src/*) frontend/build.mjs

# The real portal harvesters (udata; CKAN + ckanext-dcat) in venvs of their own: their
# dependencies clash with ours and with each other (tests/open_export/harvesters/README.md).
HARVEST_UDATA := .venv-harvest-udata
HARVEST_CKAN  := .venv-harvest-ckan
# ESPHome, whose pins clash with ours: the bundle tests run its `esphome config`
# (tests/firmware_tools/esphome_check.py; build time in BENCHMARKS.md#esphome-venv-issue-17v-make-esphome).
ESPHOME_VENV  := .venv-esphome

.PHONY: run test install lint typecheck lock bench clean web harvesters esphome

$(STAMP): pyproject.toml setup.py requirements/dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP) web

## The map, chart and widget scripts (npm ci only when the lock changed; esbuild only when a source did).
ifeq ($(HAVE_NODE),yes)
web: $(WEB_DIST)/manifest.json

frontend/node_modules/.package-lock.json: frontend/package.json frontend/package-lock.json
	cd frontend && $(NPM) ci --prefer-offline --no-audit --no-fund --loglevel=error

$(WEB_DIST)/manifest.json: frontend/node_modules/.package-lock.json $(WEB_SRC)
	cd frontend && OUT=$(abspath $(WEB_DIST)) $(NODE) build.mjs
else
web:
	@echo "civicair: Node.js/npm not found: the map, chart and widget scripts are not built; the API, /docs and the pages (without their scripts) still serve (apt-get install nodejs npm, then make install)."
endif

## Run the whole service with simulated sensors (embedded PostgreSQL + MQTT broker unless configured).
run: $(STAMP) web
	$(VENV)/bin/civicair up --demo

## Lint, type-check and run every test (real PostgreSQL + MQTT: the machine's, else embedded).
test: lint web harvesters esphome
	$(PY) -m pytest

## The harvester venvs, from their hash-pinned lock files (rebuilt when a lock changes).
harvesters: $(HARVEST_UDATA)/.installed $(HARVEST_CKAN)/.installed

$(HARVEST_UDATA)/.installed: requirements/harvest-udata.lock
	rm -rf $(HARVEST_UDATA) && $(PYTHON) -m venv $(HARVEST_UDATA)
	$(HARVEST_UDATA)/bin/pip install --quiet --require-hashes --no-deps -r requirements/harvest-udata.lock
	$(HARVEST_UDATA)/bin/pip check
	touch $@

esphome: $(ESPHOME_VENV)/.installed

$(ESPHOME_VENV)/.installed: requirements/esphome.lock
	rm -rf $(ESPHOME_VENV) && $(PYTHON) -m venv $(ESPHOME_VENV)
	$(ESPHOME_VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements/esphome.lock
	$(ESPHOME_VENV)/bin/pip check
	touch $@

# psycopg2 is built from source: needs pg_config (libpq-dev)
$(HARVEST_CKAN)/.installed: requirements/harvest-ckan.lock
	rm -rf $(HARVEST_CKAN) && $(PYTHON) -m venv $(HARVEST_CKAN)
	$(HARVEST_CKAN)/bin/pip install --quiet --require-hashes --no-deps -r requirements/harvest-ckan.lock
	$(HARVEST_CKAN)/bin/pip check
	$(HARVEST_CKAN)/bin/ckan generate config $(HARVEST_CKAN)/ckan.ini > /dev/null
	touch $@

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
	$(VENV)/bin/uv pip compile requirements/esphome.in --python-version 3.11 --generate-hashes --quiet \
	    -o requirements/esphome.lock
	for h in udata ckan; do $(VENV)/bin/uv pip compile requirements/harvest-$$h.in --python-version 3.11 \
	    --generate-hashes --quiet -o requirements/harvest-$$h.lock; done

clean:
	rm -rf $(VENV) $(HARVEST_UDATA) $(HARVEST_CKAN) $(ESPHOME_VENV) build .civicair .pytest_cache .ruff_cache .mypy_cache $(WEB_DIST) frontend/node_modules
