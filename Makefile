# resolvd developer commands. `make run` and `make test` set up what they need on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup run test test-tools lint format openapi conformance bench redis run-cluster clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## API + one in-process worker on 127.0.0.1:8000 (Redis if reachable, else in-process store)
run: setup
	$(VENV)/bin/resolvd serve --host 127.0.0.1 --port 8000

## the whole test suite (unit, API, end-to-end with real processes, Redis and a browser);
## nothing is skipped: what it drives is installed first (test-tools)
test: setup test-tools
	$(VENV)/bin/pytest

## Debian's redis-server and chromium, installed when missing (as root; else names the command)
test-tools:
	@bash tests/support/ensure-tools.sh

lint: setup
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/ruff format --check service tests
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format service tests
	$(VENV)/bin/ruff check --fix service tests

## regenerate openapi/openapi.json from the app (a test fails when the two drift)
openapi: setup
	$(VENV)/bin/resolvd openapi > openapi/openapi.json

## the external scenario corpus in ../shared/corpora; fails below tests/conformance/MIN_MATCH
## (Redis: db 14 of RESOLVD_TEST_REDIS_URL's server, or a throwaway redis-server)
conformance: setup
	$(PY) -m tests.conformance.run

## resolvd vs uv pip compile vs pip install --dry-run on loopback indexes (BENCH_ARGS=--quick)
bench: setup
	$(PY) -m tests.bench $(BENCH_ARGS)

## deploy/compose.yaml as local processes (2 API, 3 workers, 2 Redis) until Ctrl-C; its
## end-to-end check is tests/deploy/test_run_cluster.py (part of `make test`)
run-cluster: setup
	$(PY) -m deploy.run_cluster

## start a throwaway Redis on 127.0.0.1:6379 when none answers (CI and fresh machines)
redis:
	@bash deploy/ensure-redis.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .bench
