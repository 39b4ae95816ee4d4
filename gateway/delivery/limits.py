"""Per-feed limits kept in the shared store (the Django cache), seen by every worker.

- Concurrency: a feed has ``max_concurrency`` slot keys; a send takes one with
  an atomic ``add`` that expires (``lease_seconds``), so the slot of a worker
  killed mid-send frees itself.
- Rates: requests and events per second, as GCRA "theoretical arrival times"
  (``gateway.delivery.throttling.gcra_reserve``) updated under a short lock.
- Slow-down: after a 429/502/503/504 the feed pauses, then runs at halved
  limits for a while (``slowdown_note``).

Nothing here decides about a batch; ``gateway.delivery.health`` does. With
the file-based cache of the demo, ``add`` is not atomic and the limits are
approximate; with Redis they hold across all workers.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from gateway.delivery.shared_store import delete_if_holds, read_and_lease
from gateway.delivery.throttling import gcra_reserve

# The rate-limit lock is held for two cache round trips; it expires on its own
# if its holder dies in between.
_LOCK_SECONDS = 2
_LOCK_TRIES = 5
_LOCK_PAUSE_SECONDS = 0.01
# Waiting this long is the answer when the lock stays busy: another send of
# the feed is spending tokens right now.
LOCK_BUSY_WAIT_SECONDS = 0.5


def _key(feed_id: int, *parts: object) -> str:
    return ":".join(["limits", str(feed_id), *map(str, parts)])


# --- Concurrency slots ----------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One of a feed's concurrency slots, held by one send until released or expired.

    Sends take the free slot of the lowest ``index``: a send holding slot
    ``n`` found slots 0 to n-1 taken.
    """

    key: str
    token: str
    index: int = 0


def slot_acquire(*, feed_id: int, limit: int, lease_seconds: int) -> Slot | None:
    """Take a free slot among the feed's first ``limit``; None when all are taken."""
    slot, _ = slot_acquire_reading(feed_id=feed_id, limit=limit, lease_seconds=lease_seconds)
    return slot


def slot_acquire_reading(
    *, feed_id: int, limit: int, lease_seconds: int, read_keys: Sequence[str] = ()
) -> tuple[Slot | None, dict[str, Any]]:
    """``slot_acquire``, and the values of ``read_keys`` read in the same step.

    One round trip on Redis for both (``shared_store.read_and_lease``).
    """
    token = uuid.uuid4().hex
    keys = [_key(feed_id, "slot", index) for index in range(max(limit, 1))]
    values, taken = read_and_lease(read_keys, keys, token, timeout=lease_seconds)
    slot = None if taken is None else Slot(key=taken, token=token, index=keys.index(taken))
    return slot, values


def slot_release(slot: Slot) -> None:
    """Free ``slot``, unless it expired and another send holds it by now."""
    delete_if_holds(slot.key, slot.token)


def slots_in_use(*, feed_id: int, limit: int) -> int:
    keys = [_key(feed_id, "slot", index) for index in range(limit)]
    return len(cache.get_many(keys))


# --- Rates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """A limit of ``rate`` units per second, of which this send spends ``cost``."""

    name: str
    rate: float
    cost: float


def rate_reserve(*, feed_id: int, limits: list[RateLimit], now: float) -> float:
    """Spend from every limit at once, or from none; returns 0, or the seconds to wait."""
    limits = [limit for limit in limits if limit.rate > 0]
    if not limits:
        return 0.0
    lock = _lock_acquire(_key(feed_id, "rate-lock"))
    if lock is None:
        return LOCK_BUSY_WAIT_SECONDS
    try:
        keys = {limit.name: _key(feed_id, "tat", limit.name) for limit in limits}
        tats = cache.get_many(list(keys.values()))
        reservations = {
            limit.name: gcra_reserve(
                tat=tats.get(keys[limit.name]), now=now, cost=limit.cost, rate=limit.rate
            )
            for limit in limits
        }
        refused = [r.wait_seconds for r in reservations.values() if not r.allowed]
        if refused:
            return max(refused)
        latest = max(r.tat for r in reservations.values())
        cache.set_many(
            {keys[name]: r.tat for name, r in reservations.items()},
            timeout=math.ceil(latest - now) + 60,
        )
        return 0.0
    finally:
        _lock_release(lock)


def _lock_acquire(key: str) -> Slot | None:
    token = uuid.uuid4().hex
    for attempt in range(_LOCK_TRIES):
        if cache.add(key, token, timeout=_LOCK_SECONDS):
            return Slot(key=key, token=token)
        if attempt + 1 < _LOCK_TRIES:
            time.sleep(_LOCK_PAUSE_SECONDS)
    return None


def _lock_release(lock: Slot) -> None:
    slot_release(lock)


# --- Slow-down ------------------------------------------------------------------------


@dataclass(frozen=True)
class Slowdown:
    """How much a feed is slowed down: halvings of its limits, and a pause."""

    level: int = 0
    pause_until: float | None = None

    def pause_left(self, now: float) -> float:
        return max(0.0, (self.pause_until or 0.0) - now)


def slowdown_key(feed_id: int) -> str:
    """The store key of the feed's slow-down state (absent when not slowed down)."""
    return _key(feed_id, "slowdown")


def slowdown_get(*, feed_id: int) -> Slowdown:
    return slowdown_from(cache.get(slowdown_key(feed_id)))


def slowdown_from(state: dict[str, Any] | None) -> Slowdown:
    """The slow-down of a state read from ``slowdown_key``."""
    if not state:
        return Slowdown()
    return Slowdown(level=int(state["level"]), pause_until=state.get("pause_until"))


def slowdown_note(
    *, feed_id: int, pause_seconds: float, now: float, max_level: int, hold_seconds: int
) -> Slowdown:
    """The partner asked us to slow down: pause the feed and halve its limits once more.

    The state expires ``hold_seconds`` after the last such answer, restoring
    the full limits. Read-modify-write without a lock: two answers at the same
    moment may count as one halving, which is fine for a soft signal.
    """
    current = slowdown_get(feed_id=feed_id)
    state = Slowdown(
        level=min(current.level + 1, max_level),
        pause_until=max(current.pause_until or 0.0, now + pause_seconds),
    )
    cache.set(
        slowdown_key(feed_id),
        {"level": state.level, "pause_until": state.pause_until},
        timeout=math.ceil(pause_seconds) + hold_seconds,
    )
    return state
