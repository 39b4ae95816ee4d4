"""Counters and leases in the shared store: one atomic step on Redis, the cache API elsewhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.core.cache import cache, caches
from django.test import override_settings

from config.cache import SharedRedisCache
from gateway.delivery import shared_store

pytestmark = pytest.mark.usefixtures("clean_shared_store")

FILE_CACHE = "django.core.cache.backends.filebased.FileBasedCache"


@pytest.fixture(params=["redis", "file"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Each test on the real Redis cache (CI's) and on the demo's file cache."""
    if request.param == "redis":
        if not isinstance(caches["default"], SharedRedisCache):
            pytest.fail("these tests need the real Redis cache: set REDIS_URL (make test does)")
        yield request.param
        return
    location = str(tmp_path_factory.mktemp("file-cache"))
    with override_settings(CACHES={"default": {"BACKEND": FILE_CACHE, "LOCATION": location}}):
        assert not hasattr(caches["default"], "incr_from")  # the cache API's steps, then
        yield request.param


def test_a_counter_starts_from_zero_and_counts_on(backend: str) -> None:
    assert shared_store.counter_add("probe:count", timeout=60) == 1
    assert shared_store.counter_add("probe:count", timeout=60) == 2
    assert shared_store.counter_add("probe:count", 5, timeout=60) == 7
    assert cache.get("probe:count") == 7


def test_a_new_counter_expires_and_counting_does_not_extend_it(backend: str) -> None:
    shared_store.counter_add("probe:expiring", timeout=60)
    if backend == "redis":
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        key = cache.make_and_validate_key("probe:expiring")
        assert 0 < client.ttl(key) <= 60
        client.expire(key, 30)
        shared_store.counter_add("probe:expiring", timeout=60)
        assert client.ttl(key) <= 30  # the expiry set when made stands


def test_a_counter_made_by_the_cache_api_counts_on(backend: str) -> None:
    cache.add("probe:made", 3, timeout=60)
    assert shared_store.counter_add("probe:made", timeout=60) == 4


def test_counters_added_to_at_once_lose_no_count() -> None:
    """On Redis only: the file cache's incr is not atomic (limits.py says so)."""
    assert isinstance(caches["default"], SharedRedisCache), "set REDIS_URL (make test does)"

    def add() -> None:
        for _ in range(50):
            shared_store.counter_add("probe:racing", timeout=60)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("probe:racing") == 200


def test_a_lease_is_freed_by_its_holder_only(backend: str) -> None:
    cache.set("probe:lease", "mine", timeout=60)
    shared_store.delete_if_holds("probe:lease", "theirs")
    assert cache.get("probe:lease") == "mine"
    shared_store.delete_if_holds("probe:lease", "mine")
    assert cache.get("probe:lease") is None
    shared_store.delete_if_holds("probe:lease", "mine")  # gone already: nothing to do


def test_a_lease_holding_an_integer_is_compared_as_stored(backend: str) -> None:
    cache.set("probe:number", 7, timeout=60)
    shared_store.delete_if_holds("probe:number", 8)
    assert cache.get("probe:number") == 7
    shared_store.delete_if_holds("probe:number", 7)
    assert cache.get("probe:number") is None


def test_reading_and_leasing_gives_the_values_and_takes_the_first_free_key(backend: str) -> None:
    cache.set("probe:state", {"level": 2}, timeout=60)
    cache.set("probe:number", 5, timeout=60)
    cache.set("probe:slot:0", "someone else's", timeout=60)
    keys = ["probe:slot:0", "probe:slot:1", "probe:slot:2"]

    values, taken = shared_store.read_and_lease(
        ["probe:state", "probe:missing", "probe:number"], keys, "mine", timeout=60
    )

    # Values as the cache API gives them; missing keys left out, as get_many does.
    assert values == {"probe:state": {"level": 2}, "probe:number": 5}
    assert taken == "probe:slot:1"
    assert cache.get("probe:slot:1") == "mine"  # stored as add would store it
    assert cache.get("probe:slot:0") == "someone else's"
    assert cache.get("probe:slot:2") is None
    # The next takes the next, and with all taken there is none; reads go on.
    assert shared_store.read_and_lease([], keys, "next", timeout=60) == ({}, "probe:slot:2")
    values, taken = shared_store.read_and_lease(["probe:number"], keys, "late", timeout=60)
    assert (values, taken) == ({"probe:number": 5}, None)
    # Leased as add leases: freed by its holder, with the value it holds.
    shared_store.delete_if_holds("probe:slot:1", "mine")
    assert cache.get("probe:slot:1") is None


def test_a_lease_taken_with_reads_expires(backend: str) -> None:
    _, taken = shared_store.read_and_lease(["probe:state"], ["probe:slot"], "mine", timeout=30)
    assert taken == "probe:slot"
    if backend == "redis":
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        assert 0 < client.ttl(cache.make_and_validate_key("probe:slot")) <= 30


def test_leases_taken_at_once_are_each_taken_once() -> None:
    """On Redis only (the file cache's add is not atomic): 8 takers, 5 keys, 5 leases."""
    assert isinstance(caches["default"], SharedRedisCache), "set REDIS_URL (make test does)"
    keys = [f"probe:slot:{n}" for n in range(5)]
    taken: list[str | None] = []
    start = threading.Barrier(8)

    def take(n: int) -> None:
        start.wait()
        taken.append(shared_store.read_and_lease([], keys, f"taker-{n}", timeout=60)[1])

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(key for key in taken if key) == keys
    assert taken.count(None) == 3
