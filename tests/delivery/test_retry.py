"""Retry policy: which statuses are transient, backoff with full jitter, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.delivery.retry import (
    is_success,
    is_transient_status,
    parse_retry_after,
    retry_delay,
)

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_timeouts_rate_limits_and_server_errors_are_transient(status: int):
    assert is_transient_status(status)


@pytest.mark.parametrize("status", [301, 302, 400, 401, 403, 404, 409, 410, 413, 422])
def test_redirects_and_other_client_errors_are_not_transient(status: int):
    assert not is_transient_status(status)


@pytest.mark.parametrize(
    ("status", "expected"), [(200, True), (204, True), (299, True), (300, False)]
)
def test_only_2xx_is_success(status: int, expected: bool):
    assert is_success(status) is expected


def test_the_delay_ceiling_doubles_with_each_attempt():
    ceilings = [
        retry_delay(attempt=n, base_seconds=5, max_seconds=3600, rand=lambda: 1.0)
        for n in range(1, 6)
    ]

    assert ceilings == [5, 10, 20, 40, 80]


def test_full_jitter_spreads_the_delay_between_zero_and_the_ceiling():
    assert retry_delay(attempt=3, base_seconds=5, max_seconds=3600, rand=lambda: 0.0) == 0
    assert retry_delay(attempt=3, base_seconds=5, max_seconds=3600, rand=lambda: 0.5) == 10


def test_the_real_jitter_stays_within_bounds():
    delays = [retry_delay(attempt=4, base_seconds=5, max_seconds=3600) for _ in range(200)]

    assert all(0 <= delay <= 40 for delay in delays)
    assert len(set(delays)) > 1


def test_the_delay_never_exceeds_the_cap_even_after_many_attempts():
    assert retry_delay(attempt=500, base_seconds=5, max_seconds=3600, rand=lambda: 1.0) == 3600


def test_retry_after_wins_over_the_backoff():
    assert retry_delay(attempt=1, base_seconds=5, max_seconds=3600, retry_after=120) == 120


def test_retry_after_beyond_the_cap_is_capped():
    assert retry_delay(attempt=1, base_seconds=5, max_seconds=3600, retry_after=86400) == 3600


def test_attempt_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        retry_delay(attempt=0, base_seconds=5, max_seconds=60)


def test_retry_after_in_seconds_is_parsed():
    assert parse_retry_after("120", now=NOW) == 120


def test_retry_after_as_an_http_date_is_seconds_from_now():
    assert parse_retry_after("Tue, 24 Nov 2026 10:02:00 GMT", now=NOW) == 120


def test_retry_after_in_the_past_means_now():
    assert parse_retry_after("Tue, 24 Nov 2026 09:00:00 GMT", now=NOW) == 0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5"])
def test_unusable_retry_after_is_ignored(value: str | None):
    assert parse_retry_after(value, now=NOW) is None
