"""Counters and leases in the shared store (the Django cache), each one step on Redis.

Every send reads its feed's and endpoint's state and takes a concurrency
slot, counts its outcome for its endpoint's circuit breaker and frees the
slot. With the Redis backend (``config.cache.SharedRedisCache``) each is one
atomic round trip; with another backend (the demo's file cache) the cache
API's steps do the same, without the atomicity, as ``limits`` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache import cache


def counter_add(key: str, delta: int = 1, *, timeout: int) -> int:
    """Add ``delta`` to the counter at ``key`` (made, expiring in ``timeout`` s, when missing).

    Returns the counter's new value.
    """
    incr_from = getattr(cache, "incr_from", None)
    if incr_from is not None:
        return int(incr_from(key, delta, timeout=timeout))
    # The counter usually exists (a breaker bucket lives for seconds): incr first.
    try:
        return int(cache.incr(key, delta))
    except ValueError:  # missing
        if cache.add(key, delta, timeout=timeout):
            return delta
        return int(cache.incr(key, delta))  # another worker made it meanwhile


def delete_if_holds(key: str, value: Any) -> None:
    """Delete ``key`` only while it holds ``value``: a lease freed by its holder alone.

    A lease that expired and was taken by another worker stays theirs.
    """
    delete_if = getattr(cache, "delete_if", None)
    if delete_if is not None:
        delete_if(key, value)
    elif cache.get(key) == value:
        cache.delete(key)


def read_and_lease(
    read_keys: Sequence[str], lease_keys: Sequence[str], value: Any, *, timeout: int
) -> tuple[dict[str, Any], str | None]:
    """``cache.get_many(read_keys)``, and the first of ``lease_keys`` that ``cache.add`` took.

    The key taken holds ``value`` for ``timeout`` (> 0) seconds; None when
    all of ``lease_keys`` are held.
    """
    in_one_step = getattr(cache, "read_and_lease", None)
    if in_one_step is not None:
        return in_one_step(read_keys, lease_keys, value, timeout=timeout)
    values = cache.get_many(read_keys) if read_keys else {}
    for key in lease_keys:
        if cache.add(key, value, timeout=timeout):
            return values, key
    return values, None
