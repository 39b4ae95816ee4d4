"""The maths of breakers and limits: endpoint keys, GCRA, slow-down levels, when to open."""

from __future__ import annotations

import pytest

from gateway.delivery.throttling import (
    BreakerPolicy,
    breaker_state,
    endpoint_key,
    gcra_reserve,
    is_endpoint_failure,
    reached_endpoint,
    slowed_limit,
    slowed_rate,
)

POLICY = BreakerPolicy(failure_ratio=0.5, window_seconds=60, min_requests=4, open_seconds=30)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Partner.example/ingest?x=1", "https://partner.example:443"),
        ("https://partner.example:443/other", "https://partner.example:443"),
        ("http://partner.example/ingest", "http://partner.example:80"),
        ("https://partner.example:8443/ingest", "https://partner.example:8443"),
        ("http://127.0.0.1:9/ingest", "http://127.0.0.1:9"),
        ("https://[2001:db8::1]/x", "https://[2001:db8::1]:443"),
    ],
)
def test_one_breaker_guards_one_scheme_host_and_port(url: str, key: str):
    assert endpoint_key(url) == key


def test_a_burst_of_one_seconds_worth_goes_at_once_then_the_rate_holds():
    tat, allowed = None, []
    for _ in range(4):
        reservation = gcra_reserve(tat=tat, now=100.0, cost=1, rate=3)
        allowed.append(reservation.allowed)
        tat = reservation.tat if reservation.allowed else tat

    assert allowed == [True, True, True, False]
    refused = gcra_reserve(tat=tat, now=100.0, cost=1, rate=3)
    assert refused.wait_seconds == pytest.approx(1 / 3)
    assert gcra_reserve(tat=tat, now=100.34, cost=1, rate=3).allowed


def test_a_refusal_leaves_the_limit_untouched():
    first = gcra_reserve(tat=None, now=0.0, cost=10, rate=10)
    refused = gcra_reserve(tat=first.tat, now=0.0, cost=1, rate=10)

    assert not refused.allowed
    assert refused.tat == first.tat


def test_a_cost_above_the_burst_goes_when_nothing_is_owed_and_delays_what_follows():
    big = gcra_reserve(tat=None, now=0.0, cost=5000, rate=1000)
    assert big.allowed
    assert big.tat == 5.0

    after = gcra_reserve(tat=big.tat, now=1.0, cost=100, rate=1000)
    assert not after.allowed
    # Owed until t=5; a 0.1 s send fits in the 1 s burst from t=4.1.
    assert after.wait_seconds == pytest.approx(3.1)


def test_an_idle_limit_recovers_fully_but_does_not_bank_more_than_the_burst():
    reservation = gcra_reserve(tat=10.0, now=1000.0, cost=2, rate=2)

    assert reservation.allowed
    assert reservation.tat == 1001.0


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError):
        gcra_reserve(tat=None, now=0.0, cost=1, rate=0)


@pytest.mark.parametrize(("level", "expected"), [(0, 8), (1, 4), (2, 2), (3, 1), (9, 1)])
def test_each_slow_down_level_halves_the_concurrency_but_never_below_one(level, expected):
    assert slowed_limit(8, level=level) == expected


def test_each_slow_down_level_halves_the_rate():
    assert slowed_rate(100, level=0) == 100
    assert slowed_rate(100, level=2) == 25


def test_a_breaker_opens_at_the_failure_ratio_once_there_are_enough_requests():
    assert not POLICY.should_open(failures=3, requests=3)  # too few to judge
    assert POLICY.should_open(failures=2, requests=4)
    assert not POLICY.should_open(failures=1, requests=4)
    assert POLICY.should_open(failures=10, requests=10)


def test_the_sliding_window_is_the_last_ten_buckets():
    assert POLICY.bucket_seconds == 6
    window = POLICY.window(600.0)

    assert list(window) == list(range(91, 101))
    assert POLICY.bucket(600.0) == 100


def test_an_open_mark_means_open_until_its_time_then_half_open():
    assert breaker_state(open_until=None, now=5.0) == "closed"
    assert breaker_state(open_until=10.0, now=5.0) == "open"
    assert breaker_state(open_until=10.0, now=10.0) == "half_open"


@pytest.mark.parametrize(
    ("status", "network_error", "failure"),
    [
        (None, "timeout", True),
        (None, "connection", True),
        (500, None, True),
        (503, None, True),
        (408, None, True),
        (429, None, False),
        (400, None, False),
        (200, None, False),
        (None, "invalid_request", False),
    ],
)
def test_timeouts_refusals_and_server_errors_count_against_an_endpoint(
    status, network_error, failure
):
    assert is_endpoint_failure(status=status, network_error=network_error) is failure


def test_only_attempts_that_went_out_tell_anything_about_an_endpoint():
    assert reached_endpoint(status=400, network_error=None)
    assert reached_endpoint(status=None, network_error="timeout")
    assert not reached_endpoint(status=None, network_error="invalid_request")
    assert not reached_endpoint(status=None, network_error=None)
