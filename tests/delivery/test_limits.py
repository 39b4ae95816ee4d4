"""Per-feed limits in the shared store: concurrency slots, request and event rates, slow-down.

Run against the real Redis cache (REDIS_URL), as every worker would share it.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from gateway.delivery.limits import (
    RateLimit,
    slot_acquire,
    slot_release,
    slots_in_use,
    slowdown_get,
    slowdown_note,
)
from gateway.delivery.limits import rate_reserve as reserve

FEED = 4242
NOW = 1_800_000_000.0

pytestmark = pytest.mark.usefixtures("clean_shared_store")


def test_the_shared_store_is_redis_when_redis_url_is_set():
    if not os.environ.get("REDIS_URL"):
        pytest.fail("these tests need the real Redis cache: set REDIS_URL (make test does)")
    assert isinstance(caches["default"], RedisCache)
    caches["default"].set("probe", 1)
    assert caches["default"].get("probe") == 1


def test_a_feed_gets_as_many_slots_as_its_limit_and_no_more():
    slots = [slot_acquire(feed_id=FEED, limit=2, lease_seconds=60) for _ in range(3)]

    assert slots[0] is not None and slots[1] is not None
    assert slots[2] is None
    assert slots_in_use(feed_id=FEED, limit=2) == 2


def test_a_released_slot_can_be_taken_again():
    first = slot_acquire(feed_id=FEED, limit=1, lease_seconds=60)
    assert slot_acquire(feed_id=FEED, limit=1, lease_seconds=60) is None

    slot_release(first)

    assert slot_acquire(feed_id=FEED, limit=1, lease_seconds=60) is not None


def test_feeds_do_not_share_slots():
    assert slot_acquire(feed_id=FEED, limit=1, lease_seconds=60) is not None

    assert slot_acquire(feed_id=FEED + 1, limit=1, lease_seconds=60) is not None


def test_the_slot_of_a_killed_worker_frees_itself_when_its_lease_ends():
    assert slot_acquire(feed_id=FEED, limit=1, lease_seconds=1) is not None
    assert slot_acquire(feed_id=FEED, limit=1, lease_seconds=1) is None

    time.sleep(1.2)

    assert slot_acquire(feed_id=FEED, limit=1, lease_seconds=60) is not None


def test_releasing_an_expired_slot_does_not_free_its_new_holder():
    stale = slot_acquire(feed_id=FEED, limit=1, lease_seconds=1)
    time.sleep(1.2)
    holder = slot_acquire(feed_id=FEED, limit=1, lease_seconds=60)

    slot_release(stale)

    assert holder is not None
    assert slot_acquire(feed_id=FEED, limit=1, lease_seconds=60) is None


def test_racing_workers_never_hold_more_slots_than_the_limit():
    won: list[object] = []
    start = threading.Barrier(12)

    def contend() -> None:
        start.wait()
        slot = slot_acquire(feed_id=FEED, limit=3, lease_seconds=60)
        if slot is not None:
            won.append(slot)

    threads = [threading.Thread(target=contend) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 3


def test_requests_per_second_let_a_seconds_worth_through_then_ask_to_wait():
    limits = [RateLimit(name="requests", rate=2, cost=1)]

    waits = [reserve(feed_id=FEED, limits=limits, now=NOW) for _ in range(3)]

    assert waits[:2] == [0, 0]
    assert waits[2] == pytest.approx(0.5)
    assert reserve(feed_id=FEED, limits=limits, now=NOW + 0.5) == 0


def test_events_per_second_count_the_events_of_each_batch():
    big = [RateLimit(name="events", rate=100, cost=300)]
    small = [RateLimit(name="events", rate=100, cost=50)]

    # A batch above the burst goes when nothing is owed, and the next waits for the debt.
    assert reserve(feed_id=FEED, limits=big, now=NOW) == 0
    assert reserve(feed_id=FEED, limits=small, now=NOW) == pytest.approx(2.5)
    assert reserve(feed_id=FEED, limits=small, now=NOW + 2.5) == 0


def test_a_refused_limit_spends_nothing_from_the_other():
    requests_only = [RateLimit(name="requests", rate=4, cost=1)]
    both = [*requests_only, RateLimit(name="events", rate=4, cost=4)]
    assert reserve(feed_id=FEED, limits=both, now=NOW) == 0

    assert reserve(feed_id=FEED, limits=both, now=NOW + 0.25) > 0
    # The refused send took no request token: a full second's worth (4) still fits.
    waits = [reserve(feed_id=FEED, limits=requests_only, now=NOW + 0.25) for _ in range(5)]
    assert waits[:4] == [0, 0, 0, 0]
    assert waits[4] > 0


def test_no_limits_means_no_wait():
    assert reserve(feed_id=FEED, limits=[], now=NOW) == 0
    assert reserve(feed_id=FEED, limits=[RateLimit("requests", rate=0, cost=1)], now=NOW) == 0


def test_a_slow_down_pauses_the_feed_and_each_one_halves_it_once_more():
    assert slowdown_get(feed_id=FEED).level == 0

    first = slowdown_note(feed_id=FEED, pause_seconds=5, now=NOW, max_level=2, hold_seconds=300)
    second = slowdown_note(
        feed_id=FEED, pause_seconds=1, now=NOW + 1, max_level=2, hold_seconds=300
    )
    third = slowdown_note(feed_id=FEED, pause_seconds=1, now=NOW + 2, max_level=2, hold_seconds=300)

    assert (first.level, second.level, third.level) == (1, 2, 2)
    # A shorter pause never shortens one already running.
    assert third.pause_until == NOW + 5
    assert slowdown_get(feed_id=FEED) == third
    assert third.pause_left(NOW + 4) == 1
    assert third.pause_left(NOW + 6) == 0


def test_a_slow_down_wears_off_after_its_hold_time():
    slowdown_note(feed_id=FEED, pause_seconds=0, now=NOW, max_level=3, hold_seconds=1)

    time.sleep(1.2)

    assert slowdown_get(feed_id=FEED).level == 0
