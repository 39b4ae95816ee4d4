"""Circuit breakers per partner endpoint, kept in the shared store (the Django cache).

One breaker per ``scheme://host:port`` (``throttling.endpoint_key``), shared by
every feed that posts there and every worker. Attempts are counted per bucket
of a sliding window; when enough of them failed
(``throttling.BreakerPolicy.should_open``) the breaker stores an "open until"
time. Until then sends to the endpoint are not attempted. Afterwards the
breaker is half-open: the first send takes the probe key and goes, the others
keep waiting; the probe's success closes the breaker (and forgets the old
failures), its failure opens it again.

``circuit_snapshot`` is the read side for the admin and metrics.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from django.conf import settings
from django.core.cache import cache

from gateway.delivery.shared_store import counter_add, delete_if_holds
from gateway.delivery.throttling import BreakerPolicy, CircuitState, breaker_state, endpoint_key

# How long a half-open breaker stays in the store without a probe before it is
# forgotten (closed): an endpoint nobody sends to needs no breaker.
HALF_OPEN_MEMORY_SECONDS = 3600
# A send that finds the probe taken tries again this soon.
PROBE_BUSY_WAIT_SECONDS = 1.0

CircuitChange = Literal["opened", "reopened", "closed"]

# The clock of ``circuit_snapshot``; tests replace it.
clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class CircuitSnapshot:
    """A breaker as it stands: state, attempts and failures in the window, open until when."""

    state: Literal["closed", "open", "half_open"]
    failures: int
    requests: int
    open_until: datetime | None


@dataclass(frozen=True)
class Admission:
    """Whether a send may go to the endpoint now; a half-open breaker's probe holds a token."""

    allowed: bool
    state: CircuitState
    wait_seconds: float = 0.0
    probe_token: str | None = None


def breaker_policy() -> BreakerPolicy:
    return BreakerPolicy(
        failure_ratio=settings.DELIVERY_CIRCUIT_FAILURE_PERCENT / 100,
        window_seconds=settings.DELIVERY_CIRCUIT_WINDOW_SECONDS,
        min_requests=settings.DELIVERY_CIRCUIT_MIN_REQUESTS,
        open_seconds=settings.DELIVERY_CIRCUIT_OPEN_SECONDS,
    )


def _key(endpoint_url: str, *parts: object) -> str:
    # Hashed: host names are up to 253 characters, and cache keys should stay short.
    digest = hashlib.sha256(endpoint_key(endpoint_url).encode()).hexdigest()[:24]
    return ":".join(["circuit", digest, *map(str, parts)])


def circuit_snapshot(*, endpoint_url: str) -> CircuitSnapshot:
    """The breaker of ``endpoint_url``'s endpoint, now."""
    return snapshot_at(endpoint_url=endpoint_url, now=clock())


def snapshot_at(*, endpoint_url: str, now: float) -> CircuitSnapshot:
    policy = breaker_policy()
    open_until = cache.get(open_until_key(endpoint_url))
    failures, requests = _window_counts(endpoint_url=endpoint_url, policy=policy, now=now)
    return CircuitSnapshot(
        state=breaker_state(open_until=open_until, now=now),
        failures=failures,
        requests=requests,
        open_until=None if open_until is None else datetime.fromtimestamp(open_until, tz=UTC),
    )


def open_until_key(endpoint_url: str) -> str:
    """The store key of the endpoint breaker's "open until" mark (absent while closed)."""
    return _key(endpoint_url, "open_until")


def circuit_admit(*, endpoint_url: str, now: float, probe_lease_seconds: int) -> Admission:
    """May a send go to the endpoint now? A half-open breaker lets exactly one through."""
    return circuit_admit_given(
        endpoint_url=endpoint_url,
        now=now,
        probe_lease_seconds=probe_lease_seconds,
        open_until=cache.get(open_until_key(endpoint_url)),
    )


def circuit_admit_given(
    *, endpoint_url: str, now: float, probe_lease_seconds: int, open_until: float | None
) -> Admission:
    """``circuit_admit`` with the "open until" mark read already (with other keys, at once)."""
    state = breaker_state(open_until=open_until, now=now)
    if state == "closed":
        return Admission(allowed=True, state=state)
    if state == "open":
        assert open_until is not None
        return Admission(allowed=False, state=state, wait_seconds=open_until - now)
    token = uuid.uuid4().hex
    if cache.add(_key(endpoint_url, "probe"), token, timeout=probe_lease_seconds):
        return Admission(allowed=True, state=state, probe_token=token)
    return Admission(allowed=False, state=state, wait_seconds=PROBE_BUSY_WAIT_SECONDS)


def circuit_probe_release(*, endpoint_url: str, token: str) -> None:
    """Give the probe back unused (the send did not happen after all).

    Only while this send still holds it: a probe lease that expired and went
    to another send stays theirs.
    """
    delete_if_holds(_key(endpoint_url, "probe"), token)


def circuit_record(
    *, endpoint_url: str, failed: bool, now: float, probe_token: str | None = None
) -> CircuitChange | None:
    """Count one attempt's outcome; returns the state change it caused, if any."""
    policy = breaker_policy()
    if probe_token is not None:
        return _probe_record(endpoint_url=endpoint_url, failed=failed, now=now, policy=policy)
    bucket = policy.bucket(now)
    ttl = math.ceil(policy.window_seconds + 2 * policy.bucket_seconds)
    counter_add(_key(endpoint_url, "requests", bucket), timeout=ttl)
    if not failed:
        return None
    counter_add(_key(endpoint_url, "failures", bucket), timeout=ttl)
    if cache.get(_key(endpoint_url, "open_until")) is not None:
        return None  # already open or half-open: the probe decides
    failures, requests = _window_counts(endpoint_url=endpoint_url, policy=policy, now=now)
    if not policy.should_open(failures=failures, requests=requests):
        return None
    # add: of several workers seeing the threshold at once, one opens and reports it.
    opened = cache.add(
        _key(endpoint_url, "open_until"),
        now + policy.open_seconds,
        timeout=policy.open_seconds + HALF_OPEN_MEMORY_SECONDS,
    )
    return "opened" if opened else None


def _probe_record(
    *, endpoint_url: str, failed: bool, now: float, policy: BreakerPolicy
) -> CircuitChange:
    if failed:
        cache.set(
            _key(endpoint_url, "open_until"),
            now + policy.open_seconds,
            timeout=policy.open_seconds + HALF_OPEN_MEMORY_SECONDS,
        )
        cache.delete(_key(endpoint_url, "probe"))
        return "reopened"
    # Closed with a clean slate: the failures that opened it are history.
    counters = [
        _key(endpoint_url, kind, bucket)
        for bucket in policy.window(now)
        for kind in ("requests", "failures")
    ]
    cache.delete_many([_key(endpoint_url, "open_until"), _key(endpoint_url, "probe"), *counters])
    return "closed"


def _window_counts(*, endpoint_url: str, policy: BreakerPolicy, now: float) -> tuple[int, int]:
    """(failures, requests) over the sliding window ending at ``now``."""
    buckets = list(policy.window(now))
    keys = [_key(endpoint_url, kind, b) for b in buckets for kind in ("requests", "failures")]
    values = cache.get_many(keys)
    requests = sum(int(values.get(_key(endpoint_url, "requests", b), 0)) for b in buckets)
    failures = sum(int(values.get(_key(endpoint_url, "failures", b), 0)) for b in buckets)
    return failures, requests
