# The two commands of README: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The test suite runs against the real PostgreSQL and Redis (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# mypy's Django plugin loads the settings, which insist on these; placeholders only.
TYPE_CHECK_ENV := SECRET_KEY=type-check-only \
	FIELD_ENCRYPTION_KEYS=dGVzdC1vbmx5LWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM=

.PHONY: run test venv lint format clean

$(BIN)/.installed: pyproject.toml requirements.lock setup.py gateway/privacy/_speedups.c gateway/privacy/_sha256.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

# Development secrets, generated once per checkout; never used in production.
var/dev.env:
	mkdir -p var
	$(PYTHON) -c 'import base64, secrets; \
print("SECRET_KEY=dev-" + secrets.token_urlsafe(40)); \
print("FIELD_ENCRYPTION_KEYS=" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())' > $@

# Starts web, Celery worker and beat, and three partner simulators on an embedded
# SQLite database and a server-less broker, with demo data. Ctrl-C stops all.
run: venv var/dev.env
	set -a && . ./var/dev.env && set +a && \
	DEBUG=true ALLOWED_HOSTS=localhost,127.0.0.1 ALLOW_PRIVATE_ENDPOINTS=true \
	DISPATCH_INTERVAL_SECONDS=$${DISPATCH_INTERVAL_SECONDS:-5} \
	RECONCILIATION_INTERVAL_SECONDS=$${RECONCILIATION_INTERVAL_SECONDS:-20} \
	$(BIN)/python manage.py run_demo

test: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TYPE_CHECK_ENV) $(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var
