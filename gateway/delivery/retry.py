"""The retry policy of push delivery: what is worth retrying, and when. No Django import."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime

# Request timeout and rate limiting say "try later"; every other 4xx says the
# request itself is wrong, and sending it again cannot help.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})


def is_success(status: int) -> bool:
    return 200 <= status < 300


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status means a later attempt may succeed (408, 429, 5xx)."""
    return status in TRANSIENT_CLIENT_STATUSES or 500 <= status < 600


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; a naive result means the zone was "-0000".
        return None
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    *,
    attempt: int,
    base_seconds: float,
    max_seconds: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential backoff with full jitter: uniform in [0, min(max, base * 2**(attempt-1))],
    so partners recovering from an outage are not hit by every retry at once.
    A Retry-After from the partner wins, but never beyond ``max_seconds``.
    """
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, max_seconds)
    # Cap the exponent before multiplying: 2**attempt grows without bound.
    ceiling = min(max_seconds, base_seconds * 2 ** min(attempt - 1, 62))
    return rand() * ceiling
