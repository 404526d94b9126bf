# AI Monitor — everything starts here. Only Python 3.11+ is needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-partitioned lint format install db-stop bench load clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## Serve the console with demo data on http://127.0.0.1:8000, and the worker
	DJANGO_DEBUG=1 $(PY) manage.py setup_console
	DJANGO_DEBUG=1 $(PY) manage.py run_console 127.0.0.1:8000

test: $(STAMP)  ## Lint, check the layers, then the whole suite on real PostgreSQL (plain and partitioned tables)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-partitioned

# The figure, list and action tests again, on the partitioned variant of the AI tables
# (create_ai_tables --partitioned), so both variants are proven by the same tests.
PARTITIONED_TESTS := tests/test_dashboard_figures.py tests/test_rollup.py tests/test_runs.py \
	tests/test_jobs.py tests/test_cache.py tests/test_alerts.py tests/test_batch.py \
	tests/test_dashboard.py tests/test_scoping.py tests/test_create_ai_tables.py \
	tests/test_concurrency.py tests/test_admin.py tests/test_replica.py tests/test_pgbouncer.py \
	tests/test_retention.py tests/test_failures.py tests/test_range_figures.py

test-partitioned: $(STAMP)  ## The figure, list and action tests on partitioned AI tables
	AIMONITOR_TEST_PARTITIONED=1 $(PY) -m pytest $(PARTITIONED_TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)  ## Seed a throwaway database and time the pages against the reference SQL
	$(PY) -m bench.run $(ARGS)

load: $(STAMP)  ## gunicorn on a 1,000,000-run database, 50 logged-in clients for 60 s
	$(PY) -m load.run $(ARGS)

db-stop: $(STAMP)  ## Stop the embedded PostgreSQL
	$(PY) -c "from aimonitor.embedded_db import stop; stop()"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
