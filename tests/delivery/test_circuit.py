"""Circuit breakers in the shared store, with an injected clock: closed, open, half-open, closed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.delivery import circuit
from gateway.delivery.circuit import (
    CircuitSnapshot,
    circuit_admit,
    circuit_probe_release,
    circuit_record,
    circuit_snapshot,
)

URL = "https://partner.example/ingest"
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
LEASE = 60


@pytest.fixture(autouse=True)
def breaker_settings(settings, clean_shared_store: None):
    settings.DELIVERY_CIRCUIT_FAILURE_PERCENT = 50
    settings.DELIVERY_CIRCUIT_WINDOW_SECONDS = 60
    settings.DELIVERY_CIRCUIT_MIN_REQUESTS = 4
    settings.DELIVERY_CIRCUIT_OPEN_SECONDS = 30


def record(outcomes: str, *, now: float = T0, url: str = URL) -> list[str | None]:
    """Record attempts: "f" a failure, "s" a success; returns the changes each caused."""
    return [circuit_record(endpoint_url=url, failed=o == "f", now=now) for o in outcomes]


def open_breaker(now: float = T0) -> None:
    assert record("ffff", now=now)[-1] == "opened"


def test_a_new_endpoint_is_closed_and_lets_sends_through():
    admission = circuit_admit(endpoint_url=URL, now=T0, probe_lease_seconds=LEASE)

    assert admission.allowed
    assert admission.state == "closed"
    assert admission.probe_token is None


def test_it_opens_once_enough_requests_failed_often_enough():
    changes = record("sffsf")

    # Judged at each failure: at the fifth request, three of five failed.
    assert changes == [None, None, None, None, "opened"]
    snapshot = circuit.snapshot_at(endpoint_url=URL, now=T0)
    assert snapshot == CircuitSnapshot(
        state="open",
        failures=3,
        requests=5,
        open_until=datetime.fromtimestamp(T0 + 30, tz=UTC),
    )


def test_it_stays_closed_below_the_minimum_of_requests_or_the_ratio():
    assert record("fff") == [None, None, None]
    assert record("sssss") == [None] * 5

    assert circuit.snapshot_at(endpoint_url=URL, now=T0).state == "closed"


def test_failures_that_left_the_window_no_longer_count():
    record("fff", now=T0)

    assert record("f", now=T0 + 61) == [None]
    assert circuit.snapshot_at(endpoint_url=URL, now=T0 + 61).failures == 1


def test_while_open_no_send_goes_and_each_learns_how_long_to_wait():
    open_breaker()

    admission = circuit_admit(endpoint_url=URL, now=T0 + 10, probe_lease_seconds=LEASE)

    assert not admission.allowed
    assert admission.state == "open"
    assert admission.wait_seconds == pytest.approx(20)


def test_half_open_lets_exactly_one_probe_through():
    open_breaker()

    probe = circuit_admit(endpoint_url=URL, now=T0 + 30, probe_lease_seconds=LEASE)
    other = circuit_admit(endpoint_url=URL, now=T0 + 31, probe_lease_seconds=LEASE)

    assert probe.allowed and probe.state == "half_open" and probe.probe_token
    assert not other.allowed and other.state == "half_open"
    assert other.wait_seconds > 0


def test_a_successful_probe_closes_it_with_a_clean_slate():
    open_breaker()
    probe = circuit_admit(endpoint_url=URL, now=T0 + 30, probe_lease_seconds=LEASE)

    change = circuit_record(
        endpoint_url=URL, failed=False, now=T0 + 31, probe_token=probe.probe_token
    )

    assert change == "closed"
    snapshot = circuit.snapshot_at(endpoint_url=URL, now=T0 + 31)
    assert snapshot == CircuitSnapshot(state="closed", failures=0, requests=0, open_until=None)
    # The failures that opened it are forgotten: one more does not reopen it.
    assert record("f", now=T0 + 32) == [None]
    assert circuit_admit(endpoint_url=URL, now=T0 + 33, probe_lease_seconds=LEASE).allowed


def test_a_failed_probe_opens_it_again_for_the_open_duration():
    open_breaker()
    probe = circuit_admit(endpoint_url=URL, now=T0 + 30, probe_lease_seconds=LEASE)

    change = circuit_record(
        endpoint_url=URL, failed=True, now=T0 + 35, probe_token=probe.probe_token
    )

    assert change == "reopened"
    snapshot = circuit.snapshot_at(endpoint_url=URL, now=T0 + 36)
    assert snapshot.state == "open"
    assert snapshot.open_until == datetime.fromtimestamp(T0 + 65, tz=UTC)
    # After the new open period, a new probe may go.
    assert circuit_admit(endpoint_url=URL, now=T0 + 65, probe_lease_seconds=LEASE).allowed


def test_an_unused_probe_is_given_back_for_the_next_send():
    open_breaker()
    probe = circuit_admit(endpoint_url=URL, now=T0 + 30, probe_lease_seconds=LEASE)

    circuit_probe_release(endpoint_url=URL, token=probe.probe_token)

    assert circuit_admit(endpoint_url=URL, now=T0 + 30, probe_lease_seconds=LEASE).allowed


def test_a_stale_probe_token_gives_back_nothing():
    """A probe lease that expired and went to another send is not freed by the first."""
    open_breaker()
    probe = circuit_admit(endpoint_url=URL, now=T0 + 30, probe_lease_seconds=LEASE)

    circuit_probe_release(endpoint_url=URL, token="an expired lease's token")

    assert probe.allowed
    assert not circuit_admit(endpoint_url=URL, now=T0 + 30, probe_lease_seconds=LEASE).allowed


def test_attempts_that_finish_while_open_are_counted_without_reopening():
    open_breaker()

    assert record("ff", now=T0 + 5) == [None, None]
    assert circuit.snapshot_at(endpoint_url=URL, now=T0 + 5).failures == 6


def test_endpoints_differing_in_path_share_a_breaker_but_ports_do_not():
    open_breaker()

    same = circuit_admit(
        endpoint_url="https://partner.example:443/other", now=T0, probe_lease_seconds=LEASE
    )
    other_port = circuit_admit(
        endpoint_url="https://partner.example:8443/ingest", now=T0, probe_lease_seconds=LEASE
    )

    assert not same.allowed
    assert other_port.allowed


def test_the_snapshot_reads_the_injected_clock(monkeypatch: pytest.MonkeyPatch):
    open_breaker()
    monkeypatch.setattr(circuit, "clock", lambda: T0 + 29)
    assert circuit_snapshot(endpoint_url=URL).state == "open"

    monkeypatch.setattr(circuit, "clock", lambda: T0 + 30)
    snapshot = circuit_snapshot(endpoint_url=URL)

    assert snapshot.state == "half_open"
    assert snapshot.open_until == datetime.fromtimestamp(T0 + 30, tz=UTC)
    assert (snapshot.failures, snapshot.requests) == (4, 4)
