"""The maths of endpoint health and per-feed throttling. No Django import, no I/O.

- ``endpoint_key``: what one circuit breaker guards (scheme, host and port).
- ``gcra_reserve``: a rate limiter (the generic cell rate algorithm) that
  keeps one number per limit, the *theoretical arrival time*, so it fits a
  shared key-value store.
- ``slowed_limit`` / ``slowed_rate``: a feed the partner asked to slow down
  (429, 503...) sends at half its limits per slow-down level.
- ``BreakerPolicy`` / ``breaker_state``: when a circuit opens, and what state a
  stored "open until" means now.

``gateway.delivery.limits`` and ``gateway.delivery.circuit`` keep the numbers
in the shared store; the decisions are here, where tests need no store or clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

CircuitState = Literal["closed", "open", "half_open"]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def endpoint_key(url: str) -> str:
    """``scheme://host:port`` of ``url``, port made explicit: one breaker per key."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS.get(scheme, 0)}"


# --- Rate limits --------------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    """The answer of a rate limiter: allowed now, or how long to wait; and the new state."""

    allowed: bool
    tat: float
    wait_seconds: float


def gcra_reserve(
    *, tat: float | None, now: float, cost: float, rate: float, burst_seconds: float = 1.0
) -> Reservation:
    """Try to spend ``cost`` units of a limit of ``rate`` units per second.

    ``tat`` (theoretical arrival time) is when the limit would be fully
    recovered; a burst of ``burst_seconds`` worth of units may go at once.
    A cost larger than the burst (a batch of 10 000 events on a 1 000/s feed)
    goes when nothing else is owed, and the debt then delays what follows:
    big batches slow the feed down instead of never passing.
    When not allowed, ``tat`` is unchanged and ``wait_seconds`` says when to try again.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    current = max(tat if tat is not None else now, now)
    increment = cost / rate
    tolerance = max(burst_seconds, increment)
    new_tat = current + increment
    if new_tat - now <= tolerance:
        return Reservation(allowed=True, tat=new_tat, wait_seconds=0.0)
    return Reservation(allowed=False, tat=current, wait_seconds=new_tat - tolerance - now)


def slowed_limit(limit: int, *, level: int) -> int:
    """A concurrency limit halved ``level`` times, never below one."""
    return max(1, limit >> max(level, 0))


def slowed_rate(rate: float, *, level: int) -> float:
    """A rate halved ``level`` times."""
    return rate / 2 ** max(level, 0)


# --- Circuit breaker ------------------------------------------------------------------


@dataclass(frozen=True)
class BreakerPolicy:
    """When a circuit opens: ``failure_ratio`` of at least ``min_requests`` in the window."""

    failure_ratio: float
    window_seconds: int
    min_requests: int
    open_seconds: int
    # The sliding window is counted in this many buckets.
    buckets: int = 10

    @property
    def bucket_seconds(self) -> float:
        return max(self.window_seconds / self.buckets, 1.0)

    def bucket(self, now: float) -> int:
        """The number of the bucket ``now`` falls in."""
        return int(now // self.bucket_seconds)

    def window(self, now: float) -> range:
        """The buckets of the sliding window ending at ``now``."""
        current = self.bucket(now)
        return range(current - self.buckets + 1, current + 1)

    def should_open(self, *, failures: int, requests: int) -> bool:
        if requests < max(self.min_requests, 1):
            return False
        return failures / requests >= self.failure_ratio


def breaker_state(*, open_until: float | None, now: float) -> CircuitState:
    """Closed without an open mark; open until ``open_until``; then half-open (one probe)."""
    if open_until is None:
        return "closed"
    return "open" if now < open_until else "half_open"


def is_endpoint_failure(*, status: int | None, network_error: str | None) -> bool:
    """Whether an answer says the endpoint is unhealthy (for the breaker).

    Timeouts, refused connections, 5xx and 408 count. Other 4xx, 429
    included, mean a healthy server that disagrees with us: 429 slows the
    feed down instead.
    """
    if status is None:
        return network_error in ("timeout", "connection")
    return status >= 500 or status == 408


def reached_endpoint(*, status: int | None, network_error: str | None) -> bool:
    """Whether an attempt tells anything about the endpoint (it was tried on the network)."""
    return status is not None or network_error in ("timeout", "connection")
