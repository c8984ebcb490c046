# The verbs a person types. `make up` runs the whole stack locally; `make test-all` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv from PATH, else the module pip installed (scripts/bootstrap.sh); expanded when used.
UV = $(shell command -v uv >/dev/null && echo uv || echo python3 -m uv)
PYTEST = $(UV) run pytest
TIMED = scripts/timed.sh
export UV_PYTHON_DOWNLOADS := never

.PHONY: help deps up fmt lint types test test-all bench bench-deps bench-smoke bench-record \
	bench-memory soak

help:
	@echo "make up        run PostgreSQL, Redis, tasks-api (:8000), stats-api (:8001) and the UI (:8080) locally"
	@echo "make test      format, lint, types, unit and integration tests (no Docker)"
	@echo "make test-all  everything in 'make test' plus container and end-to-end tests"
	@echo "make fmt       apply ruff's formatting and safe fixes"
	@echo "make bench     each API beside its ceiling at 1,000 and 1,000,000 tasks: one table (~12 min)"
	@echo "make bench-smoke   the same at 1,000 tasks, short runs (~2 min): the harness works"
	@echo "make bench-record  make bench, then write bench/reference.json (README and deploy tests)"
	@echo "make bench-memory  the APIs' RSS through load, a burst and database faults; the memory requests it gives (~2 min)"
	@echo "make soak      steady mixed load for SOAK_MINUTES (30): RSS per process over time and its trend"
	@echo "make images    build tasks-api, stats-api, loadgen, web (:dev); offline: PYTHON_IMAGE=taskflow-ci/python-base:bookworm NGINX_IMAGE=taskflow-ci/nginx-base:trixie"
	@echo "make cluster   kind cluster with Calico (enforces NetworkPolicy) and metrics-server"

deps:
	@scripts/bootstrap.sh

up: deps
	$(UV) run python -m devstack.up

fmt: deps
	$(UV) run ruff format . && $(UV) run ruff check --fix .

lint: deps
	@$(TIMED) format $(UV) run ruff format --check .
	@$(TIMED) lint $(UV) run ruff check .

# Every Python file we own, tests and benchmarks included, as strictly as the services.
types: deps
	@$(TIMED) types $(UV) run mypy libs services devstack alembic tests bench

# Debian's Prometheus (promtool) and the exporters the dashboards read: tests/deploy checks the
# shipped configuration and rules with them, tests/e2e scrapes the local stack with them.
OBSERVABILITY_TOOLS = prometheus prometheus-postgres-exporter prometheus-redis-exporter

test: lint types
	@BOOTSTRAP_TOOLS="$(OBSERVABILITY_TOOLS)" scripts/bootstrap.sh
	@$(TIMED) unit-and-integration $(PYTEST) -m "not container and not e2e" --durations=15

test-all: test
	@BOOTSTRAP_TOOLS="chromium curl $(OBSERVABILITY_TOOLS)" scripts/bootstrap.sh
	@$(TIMED) container-and-e2e $(PYTEST) -m "container or e2e" --durations=15

# The side-by-side harness (bench/): wrk and py-spy come with the project's setup.
bench-deps:
	@BOOTSTRAP_TOOLS=wrk scripts/bootstrap.sh

bench: bench-deps
	$(UV) run python -m bench

bench-smoke: bench-deps
	@$(TIMED) bench-smoke $(UV) run python -m bench --smoke

bench-record: bench-deps
	$(UV) run python -m bench --record

bench-memory: deps
	@$(TIMED) bench-memory $(UV) run python -m bench.memory

SOAK_MINUTES ?= 30
soak: deps
	$(UV) run python -m bench.soak --minutes $(SOAK_MINUTES)

include mk/images.mk mk/cluster.mk
