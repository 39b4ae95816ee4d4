"""Window maths: epoch-aligned, closed windows only, capped per call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from gateway.delivery.windows import Window, closed_windows, window_floor


def at(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return datetime(2026, 11, 24, hour, minute, second, microsecond, tzinfo=UTC)


def test_floor_aligns_to_multiples_of_the_length_since_the_epoch():
    assert window_floor(at(10, 17, 42, 500), length_seconds=3600) == at(10)
    assert window_floor(at(10, 17, 42), length_seconds=300) == at(10, 15)
    # 7 s windows do not divide an hour: alignment is to the epoch, not the clock face.
    floored = window_floor(at(10, 17, 42), length_seconds=7)
    assert int(floored.timestamp()) % 7 == 0
    assert timedelta(0) <= at(10, 17, 42) - floored < timedelta(seconds=7)


def test_floor_of_a_boundary_is_itself():
    assert window_floor(at(10), length_seconds=60) == at(10)


def test_floor_works_in_any_time_zone():
    from zoneinfo import ZoneInfo

    paris = datetime(2026, 11, 24, 11, 17, tzinfo=ZoneInfo("Europe/Paris"))

    assert window_floor(paris, length_seconds=3600) == at(10)


def test_floor_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        window_floor(datetime(2026, 11, 24, 10), length_seconds=60)


def test_only_windows_that_ended_before_now_minus_grace_are_closed():
    windows = closed_windows(
        start=at(10), length_seconds=60, grace_seconds=30, now=at(10, 3, 29), limit=100
    )

    # 10:02-10:03 ended at 10:03, but its 30 s of grace run until 10:03:30.
    assert windows == [Window(at(10, 0), at(10, 1)), Window(at(10, 1), at(10, 2))]


def test_a_window_is_closed_exactly_when_its_grace_has_passed():
    windows = closed_windows(
        start=at(10), length_seconds=60, grace_seconds=30, now=at(10, 1, 30), limit=100
    )

    assert windows == [Window(at(10, 0), at(10, 1))]


def test_no_window_is_closed_before_the_first_one_ends():
    assert closed_windows(start=at(10), length_seconds=3600, grace_seconds=0, now=at(10, 59)) == []


def test_windows_are_consecutive_without_gaps():
    windows = closed_windows(start=at(10), length_seconds=300, grace_seconds=0, now=at(11))

    assert len(windows) == 12
    assert all(a.end == b.start for a, b in pairwise(windows))
    assert windows[-1].end == at(11)


def test_the_number_of_windows_per_call_is_capped():
    windows = closed_windows(start=at(0), length_seconds=60, grace_seconds=0, now=at(12), limit=5)

    assert windows == [Window(at(0, m), at(0, m + 1)) for m in range(5)]


def test_an_unaligned_start_gets_a_short_window_up_to_the_next_boundary():
    # The feed's window length changed from 60 s to 300 s after a batch ending at 10:01.
    windows = closed_windows(start=at(10, 1), length_seconds=300, grace_seconds=0, now=at(10, 10))

    assert windows == [Window(at(10, 1), at(10, 5)), Window(at(10, 5), at(10, 10))]


def test_a_non_positive_length_is_refused():
    with pytest.raises(ValueError, match="positive"):
        closed_windows(start=at(10), length_seconds=0, grace_seconds=0, now=at(11))
