"""The retry policy of push delivery: what is worth retrying, and when. No Django import.

A feed's *schedule* lists the waits before attempts 2, 3, ... (the first
attempt goes at once), so a feed gets ``len(schedule) + 1`` attempts per
round. Every wait is randomised by ``jitter_pct`` percent either way, so
batches that failed together (a partner outage) do not all come back at the
same second. A ``Retry-After`` from the partner replaces the scheduled wait,
clamped to a sane range: a partner cannot park a batch for a week, nor ask
for a tight loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime

# The documented default: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
# (eight attempts over about 27 hours). ``settings.DELIVERY_RETRY_SCHEDULE``.
DEFAULT_RETRY_SCHEDULE: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_JITTER_PCT = 20

# Request timeout and rate limiting say "try later"; every other 4xx says the
# request itself is wrong, and sending it again cannot help.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
# "You are sending too much" or "I am struggling": besides the retry, the
# whole feed slows down for a while.
SLOW_DOWN_STATUSES = frozenset({429, 502, 503, 504})
# The endpoint is gone for good: the feed is disabled, not retried.
GONE_STATUS = 410


def is_success(status: int) -> bool:
    return 200 <= status < 300


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status means a later attempt may succeed (408, 429, 5xx)."""
    return status in TRANSIENT_CLIENT_STATUSES or 500 <= status < 600


def is_slow_down(status: int | None) -> bool:
    """Whether the partner asks us to send less (429, 502, 503, 504)."""
    return status in SLOW_DOWN_STATUSES


def is_gone(status: int | None) -> bool:
    return status == GONE_STATUS


def attempt_budget(schedule: Sequence[float]) -> int:
    """Attempts per round: the first one, then one after each wait of the schedule."""
    return len(schedule) + 1


def scheduled_delay(
    *,
    attempt: int,
    schedule: Sequence[float],
    jitter_pct: int,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), or None when spent.

    The wait is ``schedule[attempt - 1]`` give or take ``jitter_pct`` percent,
    uniformly: with 20 %, a 300 s wait becomes 240 to 360 s.
    """
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    if attempt > len(schedule):
        return None
    wait = float(schedule[attempt - 1])
    spread = wait * min(max(jitter_pct, 0), 100) / 100
    return max(0.0, wait - spread + 2 * spread * rand())


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; a naive result means the zone was "-0000".
        return None
    return max(0.0, (when - now).total_seconds())


def clamp_retry_after(seconds: float, *, minimum: float, maximum: float) -> float:
    """A partner's wait, kept within [minimum, maximum] seconds."""
    return min(max(seconds, minimum), max(maximum, minimum))
