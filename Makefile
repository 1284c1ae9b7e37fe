# Two commands from a fresh clone: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test distributed soak venv lint format audit postgres redis sqs chromium bench lock clean

# The runtime lock (what the production image installs) and the test/dev tools' lock, synced exactly; then the
# package without dependencies (the locks hold them all), and `pip check` proves the locks satisfy its ranges.
LOCKS := requirements.txt requirements-dev.txt

$(STAMP): $(LOCKS) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv==0.13.9
	$(BIN)/uv pip sync --python $(BIN)/python $(LOCKS)
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	$(BIN)/uv pip check --python $(BIN)/python
	@touch $(STAMP)

venv: $(STAMP)

## make run: the integration in Airflow (standalone) against both sandboxes, live.
run: venv
	@scripts/run.sh

## make test: everything the tests need (PostgreSQL included), then the whole suite.
test: venv postgres chromium lint audit
	$(BIN)/pytest

## make distributed: the docker-compose topology without Docker (CeleryExecutor, two workers, PostgreSQL, Redis)
## running the full cycle through Airflow's REST API; see tests/distributed and ops/cluster.py.
distributed: venv postgres redis
	$(BIN)/pytest -m distributed tests/distributed

## make soak [MINUTES=15]: the same topology under faults and worker kills, then a reconciliation report
## (benchmarks/results/soak.md); fails on any duplicate or lost record.
MINUTES ?= 15
soak: venv postgres redis
	$(BIN)/python -m ops.soak --minutes $(MINUTES)

## make lint: ruff's lint rules; with FORMAT_CHECK=1 also `ruff format --check` and no `# fmt: skip` marker.
FORMAT_CHECK ?= 1
lint: venv
	$(BIN)/ruff check .
ifeq ($(FORMAT_CHECK),1)
	$(BIN)/ruff format --check .
	@! grep -rnE --include='*.py' --exclude-dir=.venv --exclude-dir=var '#[[:space:]]*fmt:[[:space:]]*(skip|off)' . \
		|| { echo "ruff format owns the layout: remove the # fmt: markers above" >&2; exit 1; }
endif

## make format: ruff's formatter, and its import order (ruff format leaves imports alone).
format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --select I --fix .

## make audit: the locks against the public advisory database (pip-audit, PyPI's advisories): a known vulnerability
## with a fixed release fails, one without is reported; audit-ignore.toml lists accepted ones with a review date. An
## advisory service that gives no answer fails too, unless AUDIT_UNREACHABLE=warn (README: Dependency audit).
audit: venv
	$(BIN)/python scripts/audit_dependencies.py $(LOCKS)

postgres:
	@scripts/ensure_postgres.sh

redis:
	@scripts/ensure_redis.sh

## make sqs: a local SQS (moto in server mode) on 127.0.0.1:8703, reused where one answers (Notifications tests).
sqs: venv
	@scripts/ensure_sqs.sh $(BIN)

chromium:  # Chromium and ChromeDriver (the decision test clicks in Airflow's UI); only CI insists on the driver
	@scripts/ensure_chromium.sh --driver || [ -z "$${CI:-}" ]

## make bench: the import, Sales Channel page and event-driven import benchmarks; write benchmarks/results/.
## The event-driven one needs PostgreSQL (its state stores) and starts its own moto (SQS).
bench: venv postgres
	$(BIN)/python -m benchmarks.import_orders
	$(BIN)/python -m benchmarks.page
	$(BIN)/python -m benchmarks.order_events

## make lock: re-resolve requirements.in with the package's dependencies (pyproject.toml) into requirements.txt, and
## requirements-dev.in into requirements-dev.txt
## (pip-tools format, every transitive pin with its hashes). Existing pins are kept unless an input changed;
## `make lock UPGRADE=--upgrade` re-resolves everything to the newest releases.
LOCK_FLAGS := --python-version 3.11 --generate-hashes $(UPGRADE)
lock: venv
	$(BIN)/uv pip compile requirements.in pyproject.toml $(LOCK_FLAGS) -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in $(LOCK_FLAGS) -o requirements-dev.txt

clean:
	@if [ -f var/sqs/moto.pid ]; then kill "$$(cat var/sqs/moto.pid)" 2>/dev/null || true; fi  # the local SQS run.sh started
	rm -rf $(VENV) var
