"""Alerts: mail and a JSON webhook, every configured channel, failures logged and never raised."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from django.core import mail

from gateway.delivery.alerts import (
    Alert,
    EmailChannel,
    WebhookChannel,
    alert_channels,
    alert_on_commit,
    alert_send,
)
from tests.delivery.loopback import LoopbackServer

ALERT = Alert(
    code="feed_disabled",
    subject="feed nielsen/exposures disabled",
    message="every attempt failed for 120 h",
    feed_id=7,
    feed="nielsen/exposures",
    at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
)


@pytest.fixture(autouse=True)
def no_channels_by_default(settings):
    settings.ALERT_EMAILS = []
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = ""
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 2


class Broken:
    name = "broken"

    def send(self, alert: Alert) -> None:
        raise RuntimeError("pager service down")


def test_unconfigured_channels_are_left_out():
    assert alert_channels() == []


def test_the_webhook_gets_the_alert_as_json(settings):
    with LoopbackServer(status=204) as hook:
        settings.ALERT_WEBHOOK_URL = hook.url + "/alerts"

        assert alert_send(ALERT) == 1

        [request] = hook.received
    assert request.path == "/alerts"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "code": "feed_disabled",
        "subject": "feed nielsen/exposures disabled",
        "message": "every attempt failed for 120 h",
        "feed_id": 7,
        "feed": "nielsen/exposures",
        "at": "2026-11-24T10:00:00+00:00",
    }


def test_mail_goes_to_the_alert_addresses(settings):
    settings.ALERT_EMAILS = ["oncall@example.com", "data@example.com"]

    assert alert_send(ALERT) == 1

    [message] = mail.outbox
    assert message.to == ["oncall@example.com", "data@example.com"]
    assert "feed nielsen/exposures disabled" in message.subject
    assert "120 h" in message.body


def test_without_alert_addresses_mail_goes_to_the_admins(settings):
    settings.ADMINS = [("On call", "oncall@example.com")]

    assert [type(c) for c in alert_channels()] == [EmailChannel]
    alert_send(ALERT)

    [message] = mail.outbox
    assert message.to == ["oncall@example.com"]


def test_every_channel_gets_the_alert(settings):
    settings.ALERT_EMAILS = ["oncall@example.com"]
    with LoopbackServer(status=200) as hook:
        settings.ALERT_WEBHOOK_URL = hook.url

        assert [type(c) for c in alert_channels()] == [EmailChannel, WebhookChannel]
        assert alert_send(ALERT) == 2

        assert len(hook.received) == 1
    assert len(mail.outbox) == 1


def test_a_failing_channel_is_logged_and_the_others_still_run(
    settings, caplog: pytest.LogCaptureFixture
):
    settings.ALERT_EMAILS = ["oncall@example.com"]

    with caplog.at_level(logging.ERROR, logger="gateway.delivery.alerts"):
        sent = alert_send(ALERT, channels=[Broken(), *alert_channels()])

    assert sent == 1
    assert len(mail.outbox) == 1
    assert "alert channel broken failed" in caplog.text


def test_a_webhook_answering_an_error_is_a_failure_not_an_exception(settings, caplog):
    with LoopbackServer(status=500) as hook:
        settings.ALERT_WEBHOOK_URL = hook.url

        assert alert_send(ALERT) == 0

        assert len(hook.received) == 1
    assert "alert channel webhook failed" in caplog.text


def test_an_unreachable_webhook_is_a_failure_not_an_exception(settings, caplog):
    with LoopbackServer() as hook:
        url = hook.url
    settings.ALERT_WEBHOOK_URL = url  # closed: connection refused

    assert alert_send(ALERT) == 0
    assert "alert channel webhook failed" in caplog.text


def test_a_misconfigured_channel_list_is_logged(settings, caplog):
    settings.ALERT_CHANNELS = ["gateway.delivery.alerts.NoSuchChannel"]

    assert alert_send(ALERT) == 0
    assert "misconfigured" in caplog.text


def test_more_channels_plug_in_through_the_setting(settings):
    settings.ALERT_CHANNELS = ["tests.delivery.test_alerts.Recording"]
    Recording.seen.clear()

    assert alert_send(ALERT) == 1
    assert Recording.seen == [ALERT]


class Recording:
    name = "recording"
    seen: list[Alert] = []

    @classmethod
    def from_settings(cls) -> Recording:
        return cls()

    def send(self, alert: Alert) -> None:
        self.seen.append(alert)


@pytest.mark.django_db
def test_an_alert_on_commit_goes_only_if_the_transaction_commits(
    settings, django_capture_on_commit_callbacks
):
    settings.ALERT_EMAILS = ["oncall@example.com"]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert_on_commit(ALERT)
    assert mail.outbox == []

    callbacks[0]()
    assert len(mail.outbox) == 1
