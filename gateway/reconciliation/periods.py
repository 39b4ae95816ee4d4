"""Which local days to reconcile, without Django."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def local_days(
    *, now: datetime, time_zone: str, count: int, last: date | None = None
) -> list[date]:
    """``count`` days ending with ``last`` (default: today in ``time_zone``), oldest first.

    Today is included although it is not over: partners that report
    intra-day get compared early, and the row is recomputed on every run.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    end = last or now.astimezone(ZoneInfo(time_zone)).date()
    return [end - timedelta(days=offset) for offset in range(count - 1, -1, -1)]
