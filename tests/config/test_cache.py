"""The shared store's Redis backend keeps one client per connection pool."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import caches

from config.cache import SharedRedisCache


@pytest.fixture
def shared() -> SharedRedisCache:
    store = caches["default"]
    if not isinstance(store, SharedRedisCache):
        pytest.fail("these tests need the real Redis cache: set REDIS_URL (make test does)")
    return store


def test_a_thread_gets_the_same_client_for_every_call(shared: SharedRedisCache) -> None:
    first = shared._cache.get_client(write=True)

    shared.set("cache-probe", 3, timeout=30)

    assert shared._cache.get_client(write=True) is first
    assert shared.get("cache-probe") == 3


def test_each_thread_has_its_own_client(shared: SharedRedisCache) -> None:
    mine = shared._cache.get_client(write=True)
    theirs: list[object] = []

    def use() -> None:
        other = caches["default"]
        other.set("cache-probe-thread", 1, timeout=30)
        theirs.append(other._cache.get_client(write=True))

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()

    assert theirs and theirs[0] is not mine
    assert shared.get("cache-probe-thread") == 1
