# Two commands: `make run` sets up and starts the service; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The TypeScript SDK: `npm ci` from its lockfile, again only when the lockfile changes.
TS := typescript
TS_STAMP := $(TS)/node_modules/.installed
# Debian packages the engine and the tests use: espeak-ng makes test speech (and its library reports
# phoneme timings), sox is used by the benchmarks, chromium is the browser the Studio's tests drive
# (Playwright never downloads one). Installed only when missing.
APT_PACKAGES := espeak-ng libespeak-ng1 sox libgl1 libglib2.0-0 chromium
PYTEST_ARGS ?=
# Two test processes (pytest-xdist), a test module never split between them (its servers are
# started once): most of the suite's time is spent waiting on the servers it starts, so two
# overlap on two cores. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: setup run test test-postgres lint bench clean system-packages openapi

setup: system-packages $(STAMP) $(TS_STAMP)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# Node.js 18+ for the TypeScript SDK: Debian's, unless a node is already on the PATH.
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "installing Debian packages: nodejs npm"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[server,dev]'
	touch $(STAMP)

$(TS_STAMP): $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund
	touch $(TS_STAMP)

run: setup
	$(BIN)/chamelaion serve

# Everything on SQLite (the scale-out tests always use PostgreSQL and Redis on 127.0.0.1), then
# the server's tests again on PostgreSQL, a fresh database per server, dropped at the end: all
# but those marked `store_independent` (their outcome cannot depend on the database; see
# tests/server/conftest.py), so a new test runs on both unless it says otherwise. The
# TypeScript SDK: a strict `tsc --noEmit` first; tests/typescript builds it (ESM, CommonJS,
# declarations), type-checks and runs its suites and the seed's examples against the service.
test: setup
	cd $(TS) && npm run --silent check
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-postgres

test-postgres: setup
	CHAMELAION_TEST_DATABASE=postgresql $(BIN)/python -m pytest $(PARALLEL) tests/server \
		--ignore=tests/server/test_scaleout.py -m "not store_independent"

# mypy strict over src, tests and train, then over bench in a second run with bench/ on its path
# (pyproject.toml's [tool.mypy] says why two; its own cache, as the module "engine" differs).
lint: setup
	$(BIN)/ruff check src tests bench train
	$(BIN)/ruff format --check src tests bench train
	$(BIN)/mypy
	MYPYPATH=bench $(BIN)/mypy --cache-dir .mypy_cache/bench bench

# The service's OpenAPI document, committed at the repository root; tests/test_openapi.py fails
# when it is stale, and the SDKs' types are checked against it.
openapi: setup
	$(BIN)/python -m chamelaion.server.openapi openapi.json

bench: setup
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(TS)/node_modules $(TS)/dist $(TS)/build
