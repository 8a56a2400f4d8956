# Set-up and operations. Every target installs what it needs from uv.lock first.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif

VENV := .venv/bin

.PHONY: install clients browser pgbouncer run dev migrate test lint k8s-lint fmt clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)" \
		|| $(PYTHON) -m pip install --quiet --user "uv==$(UV_VERSION)"
	$(UV) sync --locked

# The generated-client checks' own environments, locked apart from the service's: clients/python
# (the generator pins typer and pydantic versions the service does not use) and
# clients/typescript (npm, package-lock.json; Node.js from Debian's packages when missing and
# we are root).
clients: install
	cd clients/python && UV_PROJECT_ENVIRONMENT=.venv $(UV) sync --locked
	@command -v npm >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] \
		|| apt-get install -y nodejs npm || { apt-get update && apt-get install -y nodejs npm; }
	cd clients/typescript && npm ci --no-audit --no-fund

# Headless Chromium for tests/integration/test_browser.py, from Debian's packages when missing
# and we are root (otherwise those tests skip, saying why; under CI they fail).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
		|| [ "$$(id -u)" != 0 ] || apt-get install -y chromium chromium-driver \
		|| { apt-get update && apt-get install -y chromium chromium-driver; }

# PgBouncer for tests/integration/test_multi_host.py (which runs its own process with a generated
# ini, never the packaged service), from Debian's packages when missing and we are root.
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] \
		|| apt-get install -y pgbouncer || { apt-get update && apt-get install -y pgbouncer; }

migrate: install
	$(VENV)/alembic upgrade head

run: migrate
	$(VENV)/gunicorn -c gunicorn.conf.py app.main:app

# BIND as for make run (host:port), one auto-reloading Uvicorn.
BIND ?= 127.0.0.1:8000
dev: migrate
	$(VENV)/uvicorn app.main:app --reload --host $(firstword $(subst :, ,$(BIND))) \
		--port $(lastword $(subst :, ,$(BIND)))

# The API tests run twice: as configured by default, then with the read cache on (CACHE_URL).
TEST_CACHE_URL ?= redis://127.0.0.1:6379/12
test: install clients browser pgbouncer
	$(VENV)/pytest
	TEST_CACHE_URL=$(TEST_CACHE_URL) $(VENV)/pytest tests/api

lint: install k8s-lint
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/hadolint Dockerfile
	$(VENV)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

# The Kubernetes manifests (deploy/k8s), checked offline by tools locked apart from the service
# (deploy/k8s/tools: kubectl for kustomize, kubernetes-validate, checkov), whose dependency trees
# would pin the service's.
k8s-lint: install
	cd deploy/k8s/tools && UV_PROJECT_ENVIRONMENT=.venv $(UV) sync --locked
	deploy/k8s/tools/check.sh

.PHONY: bench
# Load benchmark (bench/README.md): the app vs the same work in raw SQL in FastAPI routes
# (and /health vs a bare FastAPI route) under wrk, on SQLite and PostgreSQL.
# Installs wrk from Debian's packages when it is missing and we are root.
bench: install
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] \
		|| apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
	$(VENV)/python -m bench.run

.PHONY: openapi
# The committed OpenAPI document (docs/openapi.json) that clients are generated from.
openapi: install
	$(VENV)/python -m app.cli openapi > docs/openapi.json

fmt: install
	$(VENV)/ruff check --fix .
	$(VENV)/ruff format .

clean:
	rm -rf .venv .mypy_cache .pytest_cache .ruff_cache
