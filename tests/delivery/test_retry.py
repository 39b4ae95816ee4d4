"""Retry policy: which statuses are transient, the schedule with jitter, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from gateway.delivery.retry import (
    DEFAULT_RETRY_SCHEDULE,
    attempt_budget,
    clamp_retry_after,
    is_gone,
    is_slow_down,
    is_success,
    is_transient_status,
    parse_retry_after,
    scheduled_delay,
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


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_rate_limits_and_overloaded_gateways_ask_us_to_slow_down(status: int):
    assert is_slow_down(status)


@pytest.mark.parametrize("status", [None, 200, 408, 500, 501, 410])
def test_other_answers_do_not_slow_the_feed_down(status: int | None):
    assert not is_slow_down(status)


def test_only_410_means_gone():
    assert is_gone(410)
    assert not is_gone(404)
    assert not is_gone(None)


def test_the_default_schedule_is_the_documented_one():
    # At once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts.
    assert DEFAULT_RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert attempt_budget(DEFAULT_RETRY_SCHEDULE) == 8


def test_the_default_setting_matches_the_documented_schedule():
    from config import settings as config_settings

    assert tuple(config_settings.DELIVERY_RETRY_SCHEDULE) == DEFAULT_RETRY_SCHEDULE


def test_an_empty_schedule_means_a_single_attempt():
    assert attempt_budget([]) == 1
    assert scheduled_delay(attempt=1, schedule=[], jitter_pct=20) is None


def test_without_jitter_each_wait_is_the_schedule_entry():
    waits = [
        scheduled_delay(attempt=n, schedule=DEFAULT_RETRY_SCHEDULE, jitter_pct=0)
        for n in range(1, 9)
    ]

    assert waits == [5, 300, 1800, 7200, 18000, 36000, 36000, None]


@pytest.mark.parametrize(
    ("rand", "expected"),
    [(lambda: 0.0, 240.0), (lambda: 0.5, 300.0), (lambda: 1.0, 360.0)],
)
def test_jitter_spreads_a_wait_by_its_percentage_either_way(rand, expected: float):
    wait = scheduled_delay(attempt=2, schedule=[5, 300], jitter_pct=20, rand=rand)

    assert wait == pytest.approx(expected)


def test_the_real_jitter_stays_within_twenty_percent():
    rng = random.Random(7)
    waits = [
        scheduled_delay(attempt=3, schedule=DEFAULT_RETRY_SCHEDULE, jitter_pct=20, rand=rng.random)
        for _ in range(500)
    ]

    assert all(1440 <= wait <= 2160 for wait in waits)
    assert len(set(waits)) > 100


def test_a_jitter_of_a_hundred_percent_never_gives_a_negative_wait():
    assert scheduled_delay(attempt=1, schedule=[10], jitter_pct=100, rand=lambda: 0.0) == 0
    assert scheduled_delay(attempt=1, schedule=[10], jitter_pct=100, rand=lambda: 1.0) == 20


def test_attempt_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        scheduled_delay(attempt=0, schedule=[5], jitter_pct=0)


def test_retry_after_in_seconds_is_parsed():
    assert parse_retry_after("120", now=NOW) == 120


def test_retry_after_as_an_http_date_is_seconds_from_now():
    assert parse_retry_after("Tue, 24 Nov 2026 10:02:00 GMT", now=NOW) == 120


def test_retry_after_in_the_past_means_now():
    assert parse_retry_after("Tue, 24 Nov 2026 09:00:00 GMT", now=NOW) == 0


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1.5", "Tue, 99 Nov 2026 10:02:00 GMT", "Mon, 32"]
)
def test_unusable_retry_after_is_ignored(value: str | None):
    assert parse_retry_after(value, now=NOW) is None


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0, 1), (0.2, 1), (120, 120), (3600, 3600), (10**12, 3600)]
)
def test_retry_after_is_clamped_to_the_configured_range(seconds: float, expected: float):
    assert clamp_retry_after(seconds, minimum=1, maximum=3600) == expected
