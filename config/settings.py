"""Django settings, read from the environment (see docs/configuration in README).

Production defaults are the safe ones: DEBUG off, no allowed hosts, no secret key
(start-up fails until one is given). Development values are set by `make run`,
never here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from config.batch_storage import batch_storage_setting
from config.env import ImproperlyConfiguredEnv, env_bool, env_int, env_list, env_str


def _env_seconds_list(name: str, default: list[int]) -> list[int]:
    """A comma-separated list of whole seconds, each 0 to 7 days."""
    items = env_list(name, [str(value) for value in default])
    try:
        values = [int(item) for item in items]
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name}={items!r} is not a list of integers") from exc
    if not all(0 <= value <= 7 * 86400 for value in values):
        raise ImproperlyConfiguredEnv(f"{name}: every wait must be 0 to 604800 seconds")
    return values


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("GATEWAY_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "partners",
    "gateway.ingest",
    "gateway.delivery",
    "gateway.filedrop",
    "gateway.reconciliation",
    "gateway.partner_api",
    "gateway.simulator",
    "gateway.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# Embedded default: SQLite in var/, for a newcomer's first run. Production and
# the test suite set DATABASE_URL to PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'gateway.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write concurrently: WAL lets readers proceed and
    # IMMEDIATE transactions make writers queue instead of failing with
    # "database is locked" half-way through a transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The send path's few statements are prepared once per connection
    # (gateway.delivery.statements); Django's default, None, would stop psycopg
    # preparing anything. The ORM's own queries bind parameters client-side
    # and are never prepared. Behind PgBouncer, use session pooling or 1.21+
    # with max_prepared_statements.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Security ---------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Fernet keys (urlsafe base64 of 32 bytes) that encrypt partner secrets at rest.
# The first key encrypts; all keys decrypt, so keys can be rotated.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Batch bodies, written once by the build and streamed by sends and
    # downloads: a directory, or an S3 bucket (config/batch_storage.py).
    "batches": batch_storage_setting(VAR_DIR),
}
WHITENOISE_USE_FINDERS = DEBUG

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "gateway.api.problems.problem_exception_handler",
}
# Largest request body (compressed, as sent) and largest decompressed body the
# ingest API accepts; larger requests get 413 problem+json.
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
INGEST_MAX_DECOMPRESSED_BYTES = env_int(
    "INGEST_MAX_DECOMPRESSED_BYTES", 50 * 1024 * 1024, minimum=1024
)
INGEST_MAX_EVENTS = env_int("INGEST_MAX_EVENTS", 10_000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES

# --- Delivery -----------------------------------------------------------------
DELIVERY_TIMEOUT_SECONDS = env_int("DELIVERY_TIMEOUT_SECONDS", 30, minimum=1)
# Waits before attempts 2, 3, ... of a feed whose own retry_schedule is empty
# (gateway.delivery.retry.DEFAULT_RETRY_SCHEDULE): at once, 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h. A feed gets len(schedule) + 1 attempts per round.
DELIVERY_RETRY_SCHEDULE = _env_seconds_list(
    "DELIVERY_RETRY_SCHEDULE", [5, 300, 1800, 7200, 18000, 36000, 36000]
)
# The build signs a push batch's body for its first attempt, which sends those
# signatures if they are at most this old (gateway.delivery.first_signature);
# 0: builds do not sign, every attempt signs when it starts. At most 240 s:
# Standard Webhooks receivers refuse timestamps five minutes off.
DELIVERY_FIRST_SIGNATURE_MAX_AGE_SECONDS = env_int(
    "DELIVERY_FIRST_SIGNATURE_MAX_AGE_SECONDS", 60, minimum=0, maximum=240
)
# A partner's Retry-After is honoured within these bounds.
DELIVERY_RETRY_AFTER_MIN_SECONDS = env_int("DELIVERY_RETRY_AFTER_MIN_SECONDS", 1, minimum=0)
DELIVERY_RETRY_AFTER_MAX_SECONDS = env_int("DELIVERY_RETRY_AFTER_MAX_SECONDS", 3600, minimum=1)
# After a 429/502/503/504 the feed pauses (Retry-After, else this long) and
# then runs at half its concurrency and rates per slow-down level, up to
# DELIVERY_SLOWDOWN_MAX_LEVEL halvings, until DELIVERY_SLOWDOWN_SECONDS pass
# without another such answer.
DELIVERY_SLOWDOWN_PAUSE_SECONDS = env_int("DELIVERY_SLOWDOWN_PAUSE_SECONDS", 5, minimum=0)
DELIVERY_SLOWDOWN_SECONDS = env_int("DELIVERY_SLOWDOWN_SECONDS", 300, minimum=1)
DELIVERY_SLOWDOWN_MAX_LEVEL = env_int("DELIVERY_SLOWDOWN_MAX_LEVEL", 3, minimum=0)
# A send that finds its feed's concurrency slots all taken goes back to the
# queue for this long (randomised up to twice as long), without an attempt.
DELIVERY_BUSY_RETRY_SECONDS = env_int("DELIVERY_BUSY_RETRY_SECONDS", 2, minimum=1)
# Circuit breaker per endpoint (scheme, host, port): it opens when at least
# DELIVERY_CIRCUIT_FAILURE_PERCENT of the attempts of the last
# DELIVERY_CIRCUIT_WINDOW_SECONDS failed, once there were
# DELIVERY_CIRCUIT_MIN_REQUESTS; sends then wait DELIVERY_CIRCUIT_OPEN_SECONDS,
# after which one probe decides whether it closes.
DELIVERY_CIRCUIT_FAILURE_PERCENT = env_int("DELIVERY_CIRCUIT_FAILURE_PERCENT", 50, minimum=1)
DELIVERY_CIRCUIT_WINDOW_SECONDS = env_int("DELIVERY_CIRCUIT_WINDOW_SECONDS", 60, minimum=1)
DELIVERY_CIRCUIT_MIN_REQUESTS = env_int("DELIVERY_CIRCUIT_MIN_REQUESTS", 10, minimum=1)
DELIVERY_CIRCUIT_OPEN_SECONDS = env_int("DELIVERY_CIRCUIT_OPEN_SECONDS", 60, minimum=1)
# A worker process keeps the privacy policies (and all their filter has learnt)
# of its last DELIVERY_KEPT_POLICIES builds for its next builds of the same
# configuration, each at most DELIVERY_KEPT_POLICY_IDLE_SECONDS after its last
# use (gateway.delivery.kept_policies); 0 keeps none.
DELIVERY_KEPT_POLICIES = env_int("DELIVERY_KEPT_POLICIES", 2, minimum=0)
DELIVERY_KEPT_POLICY_IDLE_SECONDS = env_int("DELIVERY_KEPT_POLICY_IDLE_SECONDS", 7200, minimum=1)
DISPATCH_INTERVAL_SECONDS = env_int("DISPATCH_INTERVAL_SECONDS", 10, minimum=1)
# Alert when exposures have waited this long for the commit horizon, which an
# open write transaction anywhere on the database server holds back
# (gateway.delivery.horizon_watch).
DELIVERY_HORIZON_ALERT_SECONDS = env_int("DELIVERY_HORIZON_ALERT_SECONDS", 900, minimum=1)
# The sweeper's patience: a queued build or send not started after this long
# lost its message (broker restart); a claim older than the task time limit
# plus this margin belongs to a worker that died (SIGKILL, OOM).
DELIVERY_LOST_MESSAGE_AFTER_SECONDS = env_int("DELIVERY_LOST_MESSAGE_AFTER_SECONDS", 300, minimum=1)
DELIVERY_DEAD_CLAIM_MARGIN_SECONDS = env_int("DELIVERY_DEAD_CLAIM_MARGIN_SECONDS", 60, minimum=0)
# Batch bodies are deleted this many days after their build, once the batch is
# done with (gateway.delivery.retention); 0 keeps them forever.
BATCH_BODY_RETENTION_DAYS = env_int("BATCH_BODY_RETENTION_DAYS", 30, minimum=0)
# How often beat expires batch bodies past retention.
BATCH_BODY_RETENTION_CHECK_SECONDS = env_int("BATCH_BODY_RETENTION_CHECK_SECONDS", 3600, minimum=1)
# After a signing key rotation the old key keeps signing (a second signature in
# webhook-signature) this long, so partners can switch keys without a failure.
SIGNING_KEY_OVERLAP_HOURS = env_int("SIGNING_KEY_OVERLAP_HOURS", 24, minimum=0)
# Who signs webhooks: a dotted path to a factory of Signers (gateway.delivery.signers),
# so keys kept in a KMS or HSM can sign instead of the encrypted keys in the database.
SIGNER_FACTORY = env_str("SIGNER_FACTORY", "partners.services.signer_from_database")
# Where the JWKS document finds partners' v1a public keys: a dotted path to a
# function (*, partner, at) -> list of JWKs; keys kept in a KMS publish from there.
SIGNING_PUBLIC_KEYS = env_str("SIGNING_PUBLIC_KEYS", "partners.services.signing_public_keys")
# Push endpoints must be https on public addresses unless this is on
# (development and tests deliver to loopback).
ALLOW_PRIVATE_ENDPOINTS = env_bool("ALLOW_PRIVATE_ENDPOINTS", False)

# --- Alerts -------------------------------------------------------------------
# Where "feed disabled" and similar alerts go (gateway.delivery.alerts): mail to
# ALERT_EMAILS (else to ADMINS, if any) and a JSON POST to ALERT_WEBHOOK_URL.
ALERT_CHANNELS = env_list(
    "ALERT_CHANNELS",
    ["gateway.delivery.alerts.EmailChannel", "gateway.delivery.alerts.WebhookChannel"],
)
ALERT_EMAILS = env_list("ALERT_EMAILS", [])
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_int("ALERT_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)

# --- File drops -----------------------------------------------------------------
# How often beat checks file-drop windows against their upload deadline, and how
# far back (by window end) it looks, so a feed switched to file drops or
# backfilling old windows does not raise a notice per historic window.
FILEDROP_DEADLINE_CHECK_SECONDS = env_int("FILEDROP_DEADLINE_CHECK_SECONDS", 60, minimum=1)
FILEDROP_DEADLINE_LOOKBACK_HOURS = env_int("FILEDROP_DEADLINE_LOOKBACK_HOURS", 24, minimum=1)

# --- Reconciliation -----------------------------------------------------------
RECONCILIATION_INTERVAL_SECONDS = env_int("RECONCILIATION_INTERVAL_SECONDS", 900, minimum=1)
RECONCILIATION_LOOKBACK_DAYS = env_int("RECONCILIATION_LOOKBACK_DAYS", 7, minimum=1)

# --- Metrics (GET /metrics, gateway/delivery/metrics.py) ------------------------
# Bearer token Prometheus sends. Unset: /metrics answers only requests made
# directly on this host (loopback, no proxy headers); everything else gets 403.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Delivery latency quantiles (metrics and the Feed admin) cover batches
# delivered in this many recent hours.
METRICS_LATENCY_WINDOW_HOURS = env_int("METRICS_LATENCY_WINDOW_HOURS", 24, minimum=1)

# --- Celery -------------------------------------------------------------------
# With REDIS_URL the broker is Redis; without it, kombu's filesystem transport
# passes messages between real worker processes through files in var/broker.
REDIS_URL = env_str("REDIS_URL", "")
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport, writing each message whole (config/broker.py).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        # Exchange bindings; kombu's default is a "control" folder in the cwd.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # Check for messages ten times a second (kombu's default is once):
        # streaming flushes and sends should not wait a second per hop.
        "polling_interval": 0.1,
    }
    # The filesystem transport has no fan-out exchange for remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30 if CELERY_TASK_TIME_LIMIT > 60 else None
# One send is one HTTP request: a few timeouts' worth is plenty. A concurrency
# slot or circuit probe of a killed worker expires shortly after this.
DELIVERY_SEND_TIME_LIMIT = min(CELERY_TASK_TIME_LIMIT, DELIVERY_TIMEOUT_SECONDS * 3 + 30)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Sends have their own queue so a backlog of them never delays the scheduler
# and reconciliation, and builds theirs so a big build never delays a send
# (each can get its own workers in production).
CELERY_TASK_ROUTES = {
    "delivery.build_batch": {"queue": "build"},
    "delivery.send_batch": {"queue": "delivery"},
    "delivery.*": {"queue": "default"},
    "reconciliation.*": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

# --- Shared store ---------------------------------------------------------------
# Small state every worker process must see: concurrency slots, rate limits,
# slow-downs and circuit breakers of delivery, flush requests of streaming
# feeds. Redis when there is one; else files in var/cache, shared by the demo's
# processes (its add/incr are not atomic: limits are approximate there).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.SharedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "mg",
            "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
