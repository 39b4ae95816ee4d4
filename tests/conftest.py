from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def forget_kept_policies() -> Iterator[None]:
    """No test finds a policy, with all it learnt, that another test's build kept."""
    from gateway.delivery.kept_policies import kept_policies_forget

    kept_policies_forget()
    yield
    kept_policies_forget()


@pytest.fixture
def clean_shared_store() -> Iterator[None]:
    """The shared cache (Redis in CI) empty before and after the test.

    Circuit breakers, concurrency slots, slow-downs and flush requests live
    there and outlast a test's database transaction: no test may see another's.
    Nor may it see what this process remembers of the store's answers (the
    feeds refused a send permit lately).
    """
    from django.core.cache import cache

    from gateway.delivery import health

    cache.clear()
    health.refusals_forget()
    yield
    cache.clear()
    health.refusals_forget()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


# --- moto's S3 server (tests/s3.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    from tests.s3 import s3_client_for

    return s3_client_for(s3_endpoint)


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A new, empty bucket for one test (moto keeps buckets for the whole session)."""
    name = f"drops-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI, refuse to run unless the real PostgreSQL and Redis are configured and up."""
    import os

    from config.env import env_bool

    if not env_bool("GATEWAY_TEST_REQUIRE_SERVICES", False):
        return
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(f"GATEWAY_TEST_REQUIRE_SERVICES: database is {engine}, not PostgreSQL", 1)
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url.startswith("redis://"):
        pytest.exit("GATEWAY_TEST_REQUIRE_SERVICES: REDIS_URL is not a redis:// URL", 1)
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(f"GATEWAY_TEST_REQUIRE_SERVICES: Redis unreachable: {exc}", 1)
