from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def clean_shared_store() -> Iterator[None]:
    """The shared cache (Redis in CI) empty before and after the test.

    Circuit breakers, concurrency slots, slow-downs and flush requests live
    there and outlast a test's database transaction: no test may see another's.
    """
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


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
