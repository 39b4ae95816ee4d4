"""Which local days a reconciliation run covers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.reconciliation.periods import local_days


def test_days_end_today_in_the_partners_time_zone() -> None:
    # 03:00Z on the 25th is still the 24th in New York.
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert local_days(now=now, time_zone="America/New_York", count=3) == [
        date(2026, 11, 22),
        date(2026, 11, 23),
        date(2026, 11, 24),
    ]
    assert local_days(now=now, time_zone="Asia/Tokyo", count=1) == [date(2026, 11, 25)]


def test_an_explicit_last_day_wins_over_today() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert local_days(now=now, time_zone="UTC", count=2, last=date(2026, 3, 1)) == [
        date(2026, 2, 28),
        date(2026, 3, 1),
    ]


def test_at_least_one_day_is_needed() -> None:
    with pytest.raises(ValueError):
        local_days(now=datetime(2026, 11, 25, tzinfo=UTC), time_zone="UTC", count=0)
