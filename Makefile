# Taza Koom open geodata catalog. Quick start: `make serve`, `make test` (see README.md).
VENV      := .venv
BIN       := $(VENV)/bin
HOST      ?= 127.0.0.1
PORT      ?= 5000
TAZA_HOME ?= $(CURDIR)/var
export TAZA_HOME

CLUSTER_PORT ?= 5080

.PHONY: install serve test test-postgresql test-deps lint golden data bench clean cluster cluster-stop

# The stamp is rebuilt only when the dependency list changes, so `make install` is quick after
# the first run. Publishing is idempotent: unchanged datasets are skipped.
# uv installs the same pinned packages as pip (constraints.txt pins every one) in a fraction
# of the time (a clean clone: about 15 s against pip's 52), which was most of CI's set-up; pip
# installs uv itself, pinned. --compile-bytecode as pip does: without it the sandboxed readers,
# which cannot write __pycache__, compiled every module they import each time (CI's tests took
# 1,520 s instead of about 1,280).
UV_VERSION := 0.13.9
$(BIN)/uv:
	@python=$$(scripts/find-python) && \
	  { [ -x $(BIN)/python ] || $$python -m venv $(VENV); }
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/.installed: pyproject.toml constraints.txt | $(BIN)/uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[test]'
	@touch $@

# pycsw (CSW) in a virtualenv of its own: its pins clash with ours (requirements-csw.txt).
CSW_VENV := .venv-csw
$(CSW_VENV)/bin/.installed: requirements-csw.txt | $(BIN)/uv
	@python=$$(scripts/find-python) && \
	  { [ -x $(CSW_VENV)/bin/python ] || $$python -m venv $(CSW_VENV); }
	$(BIN)/uv pip install -q --compile-bytecode --python $(CSW_VENV)/bin/python --no-deps -r requirements-csw.txt
	@touch $@

# Front-end libraries the server hands out itself (no CDN), pinned by package-lock.json.
VENDOR := catalog/portal/node_modules/.installed
$(VENDOR): catalog/portal/package.json catalog/portal/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed (apt-get install npm, or Node.js 18+)"; exit 1; }
	npm ci --prefix catalog/portal --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

install: $(BIN)/.installed $(VENDOR) $(CSW_VENV)/bin/.installed
	$(BIN)/taza publish --all

serve: install
	$(BIN)/taza serve --host $(HOST) --port $(PORT)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Everything the tests need, Debian packages included (scripts/install-system-deps).
test-deps: $(BIN)/.installed $(VENDOR) $(CSW_VENV)/bin/.installed
	scripts/install-system-deps

test: test-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	PYTHON=$(BIN)/python scripts/run-tests

# The same suite with the session's homes on the PostgreSQL profile (docs/testing.md, "The
# whole suite on the PostgreSQL profile"); tests marked embedded_only are skipped with reasons.
test-postgresql: test-deps
	TAZA_TEST_PROFILE=postgresql PYTHON=$(BIN)/python scripts/run-tests

# Re-record the golden answers (tests/golden) after a deliberate change; review git diff.
golden: $(BIN)/.installed $(VENDOR)
	$(BIN)/python -m tests.golden record

# Re-derive the sample sources in datasets/sources from the registry packages.
data: $(BIN)/.installed
	$(BIN)/python datasets/derive.py

# Two app nodes and a job worker behind nginx on this machine (catalog/cluster), in the
# background, on the PostgreSQL profile (a private PostgreSQL + PostGIS and a Ceph RGW bucket of
# its own); publishes the samples through it, prints its URL and returns. `make cluster-stop`
# stops all of it.
cluster: $(BIN)/.installed $(VENDOR) $(CSW_VENV)/bin/.installed
	scripts/install-system-deps cluster
	$(BIN)/taza cluster up --port $(CLUSTER_PORT)

cluster-stop:
	@if [ -x $(BIN)/taza ]; then $(BIN)/taza cluster down; fi

# Issue 14's comparisons (features vs tipg/pygeoapi on PostGIS, STAC vs stac-fastapi-pgstac):
# installs wrk, PostgreSQL + PostGIS and the peers' venvs under bench/.work on first use.
# Smaller runs: make bench BENCH_ARGS="--count 200000 --items 100000 --duration 10".
BENCH_ARGS ?=
bench: $(BIN)/.installed
	$(BIN)/python -m bench all $(BENCH_ARGS)

clean: cluster-stop
	rm -rf $(VENV) $(CSW_VENV) var .pytest_cache
