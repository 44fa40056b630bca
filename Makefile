# Two commands for a new user: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
ML_LOCAL_PORT ?= 9090
STRIPE_LOCAL_PORT ?= 12111
TEST_ENV := DJANGO_SETTINGS_MODULE=marketplace.settings.test
BENCHES := $(patsubst bench/%.py,%,$(filter-out bench/_%.py,$(wildcard bench/*.py)))

.PHONY: run test test-fast lint format bench services install install-dev clean $(addprefix bench-,$(BENCHES))

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q ".[dev,bench]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: embedded database, demo data, the local Stripe server (Checkout's test payment page
## and signed webhooks to this server) and the development server on http://127.0.0.1:8000
run: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	@echo "To see the marketplace live (a simulated crowd, funding, consensus, payouts, exports): $(PY) manage.py demo"
	@echo "Serving on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs/)"
	@echo "Local Stripe on http://127.0.0.1:$(STRIPE_LOCAL_PORT)/  (test card 4242 4242 4242 4242)"
	@echo "Local model backend (Label Studio ML protocol) on http://127.0.0.1:$(ML_LOCAL_PORT)/ok/"
	@$(PY) -m stripe_local.server --port $(STRIPE_LOCAL_PORT) \
	    --webhook http://$(HOST):$(PORT)/stripe/webhook/ \
	    --connect-webhook http://$(HOST):$(PORT)/stripe/webhook/connect/ & \
	  stripe_pid=$$!; $(PY) -m ml_local.server --port $(ML_LOCAL_PORT) & \
	  ml_pid=$$!; trap 'kill $$stripe_pid $$ml_pid 2>/dev/null' EXIT INT TERM; \
	  STRIPE_LOCAL_PORT=$(STRIPE_LOCAL_PORT) ML_LOCAL_PORT=$(ML_LOCAL_PORT) $(PY) manage.py runserver --noreload $(HOST):$(PORT)

services:
	@scripts/ensure-services.sh

## make lint: ruff, and the import contracts of pyproject.toml (docs/architecture.md)
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## make test: lint and the whole suite on the real PostgreSQL and Redis (the JavaScript's
## node --test suite runs inside it: tests/js/test_node.py)
test: install-dev services lint
	@scripts/ensure-chromium.sh
	@scripts/ensure-node.sh
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS)

## make test-fast: only the pure tests (no database, services or browser; tests/tiers.py), seconds
test-fast: install-dev
	@scripts/ensure-node.sh
	$(TEST_ENV) $(VENV)/bin/pytest -m pure $(PYTEST_ARGS)

bench: install-dev services
	@set -e; for b in $(BENCHES); do $(MAKE) --no-print-directory bench-$$b; done

$(addprefix bench-,$(BENCHES)): bench-%: install-dev services
	@scripts/ensure-ffmpeg.sh
	$(TEST_ENV) $(PY) bench/$*.py

clean:
	rm -rf var/media var/db.sqlite3
