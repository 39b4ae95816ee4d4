"""The commit horizon held back by an open write transaction: measured, named, alerted, scraped.

These tests commit for real (transaction=True), and hold a transaction open
on a second connection, as a forgotten migration or script would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from gateway.delivery import tasks
from gateway.delivery.alerts import Alert
from gateway.delivery.horizon_watch import (
    ALERT_CODE,
    horizon_holder,
    horizon_lag_seconds,
    horizon_watch,
)
from gateway.delivery.metrics import metrics_exposition
from tests.delivery.builders import make_exposure

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clean_shared_store"),
]

APPLICATION = "forgotten-migration"
sent: list[Alert] = []


class Recorder:
    """An alert channel that keeps what it is sent."""

    name = "recorder"

    @classmethod
    def from_settings(cls) -> Recorder:
        return cls()

    def send(self, alert: Alert) -> None:
        sent.append(alert)


@pytest.fixture(autouse=True)
def recorded_alerts(settings) -> Iterator[list[Alert]]:
    settings.ALERT_CHANNELS = [f"{__name__}.Recorder"]
    settings.DELIVERY_HORIZON_ALERT_SECONDS = 600
    sent.clear()
    yield sent
    sent.clear()


@pytest.fixture
def open_writer() -> Iterator[psycopg.Connection]:
    """A second session with a write transaction left open (it has a transaction id)."""
    params = connection.settings_dict
    with psycopg.connect(
        dbname=params["NAME"],
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        application_name=APPLICATION,
    ) as other:
        other.execute("SELECT pg_current_xact_id()")  # takes a transaction id, as a write does
        try:
            yield other
        finally:
            other.rollback()


def _waiting_since(minutes: int) -> None:
    """Exposures received ``minutes`` ago, committed now (after the writer began)."""
    received = timezone.now() - timedelta(minutes=minutes)
    for n in range(3):
        make_exposure(received_at=received + timedelta(seconds=n), event_id=f"evt-{minutes}-{n}")


def test_nothing_waits_when_no_write_transaction_is_open() -> None:
    _waiting_since(30)

    assert horizon_lag_seconds(now=timezone.now()) == 0
    assert horizon_holder() is None


def test_an_open_write_transaction_holds_later_exposures_back_and_is_named(open_writer) -> None:
    _waiting_since(20)

    lag = horizon_lag_seconds(now=timezone.now())
    holder = horizon_holder()

    # The oldest of them waits since it was received: 20 minutes.
    assert 20 * 60 <= lag < 21 * 60
    assert holder is not None
    assert holder.pid == open_writer.info.backend_pid
    assert (holder.application, holder.state) == (APPLICATION, "idle in transaction")
    assert holder.database == connection.settings_dict["NAME"]
    assert holder.since is not None and holder.since <= timezone.now()


def test_once_the_transaction_ends_nothing_waits(open_writer) -> None:
    _waiting_since(20)
    open_writer.rollback()

    assert horizon_lag_seconds(now=timezone.now()) == 0
    assert horizon_holder() is None


def test_the_watch_alerts_once_naming_the_transaction(open_writer, recorded_alerts) -> None:
    _waiting_since(20)

    first = horizon_watch(now=timezone.now())
    horizon_watch(now=timezone.now())

    assert first >= 20 * 60
    [alert] = recorded_alerts
    assert alert.code == ALERT_CODE
    assert alert.subject == "deliveries held back for 20 min by a long transaction"
    assert f"pid {open_writer.info.backend_pid}" in alert.message
    assert repr(APPLICATION) in alert.message
    assert "idle in transaction" in alert.message


def test_the_watch_is_quiet_below_the_threshold(open_writer, recorded_alerts) -> None:
    _waiting_since(5)

    assert horizon_watch(now=timezone.now()) >= 5 * 60
    assert recorded_alerts == []


def test_the_lag_is_a_metric(open_writer) -> None:
    body, _ = metrics_exposition(accept="text/plain")
    assert "gateway_commit_horizon_lag_seconds 0.0" in body.decode()

    _waiting_since(20)
    body, _ = metrics_exposition(accept="text/plain")

    [line] = [
        line
        for line in body.decode().splitlines()
        if line.startswith("gateway_commit_horizon_lag_seconds ")
    ]
    assert 20 * 60 <= float(line.split()[1]) < 21 * 60


def test_the_dispatcher_watches_and_survives_a_failing_watch(monkeypatch, caplog) -> None:
    watched = []
    monkeypatch.setattr(tasks, "horizon_watch", lambda *, now: watched.append(now))
    tasks.dispatch_due_windows()
    assert len(watched) == 1

    def broken(*, now):
        raise RuntimeError("pg_stat_activity unreadable")

    monkeypatch.setattr(tasks, "horizon_watch", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.delivery.tasks"):
        tasks.dispatch_due_windows()
    assert "watching the commit horizon failed" in caplog.text


def test_without_a_visible_holder_the_alert_says_how_to_see_it(
    open_writer, recorded_alerts, monkeypatch
) -> None:
    # A role without pg_read_all_stats sees no other role's transaction.
    monkeypatch.setattr("gateway.delivery.horizon_watch.horizon_holder", lambda: None)
    _waiting_since(20)

    horizon_watch(now=timezone.now())
    horizon_watch(now=timezone.now())

    [alert] = recorded_alerts
    assert "grant it pg_read_all_stats" in alert.message
