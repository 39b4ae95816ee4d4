"""Alerts to the people who run the gateway: a feed disabled, an endpoint gone, claims held back.

An alert goes to every configured channel (``settings.ALERT_CHANNELS``, dotted
paths of ``AlertChannel`` classes). A channel's ``from_settings`` returns None
when it is not configured (no addresses, no URL), so listing a channel costs
nothing until it is set up. Adding a channel (Slack, PagerDuty...) is a class
with ``from_settings`` and ``send`` and one more entry in the setting.

Alerting is best effort: a channel that fails is logged and the others still
run, and nothing here ever raises into delivery.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

import requests
from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

USER_AGENT = "measurement-gateway-alerts/0.1"


@dataclass(frozen=True)
class Alert:
    """Something an operator must act on, with enough context to find it in the admin."""

    code: str
    subject: str
    message: str
    feed_id: int | None = None
    feed: str = ""
    at: datetime = field(default_factory=timezone.now)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


class AlertChannel(Protocol):
    """A way to reach operators. ``send`` may raise; ``alert_send`` catches and logs."""

    name: str

    @classmethod
    def from_settings(cls) -> AlertChannel | None: ...

    def send(self, alert: Alert) -> None: ...


class EmailChannel:
    """Mail to ``ALERT_EMAILS``, or to ``ADMINS`` (``mail_admins``) when that list is empty."""

    name = "email"

    def __init__(self, recipients: list[str]) -> None:
        self.recipients = recipients

    @classmethod
    def from_settings(cls) -> EmailChannel | None:
        if not settings.ALERT_EMAILS and not settings.ADMINS:
            return None
        return cls(list(settings.ALERT_EMAILS))

    def send(self, alert: Alert) -> None:
        subject = f"[measurement gateway] {alert.subject}"
        if self.recipients:
            send_mail(subject, alert.message, None, self.recipients)
        else:
            mail_admins(alert.subject, alert.message)


class WebhookChannel:
    """POSTs the alert as JSON to ``ALERT_WEBHOOK_URL`` (a chat or incident tool)."""

    name = "webhook"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> WebhookChannel | None:
        if not settings.ALERT_WEBHOOK_URL:
            return None
        return cls(settings.ALERT_WEBHOOK_URL, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)

    def send(self, alert: Alert) -> None:
        response = requests.post(
            self.url,
            json=alert.as_json(),
            headers={"User-Agent": USER_AGENT},
            timeout=self.timeout,
            allow_redirects=False,
        )
        response.raise_for_status()


def alert_channels() -> list[AlertChannel]:
    """The configured channels, in the order of ``settings.ALERT_CHANNELS``."""
    channels = []
    for path in settings.ALERT_CHANNELS:
        channel = import_string(path).from_settings()
        if channel is not None:
            channels.append(channel)
    return channels


def alert_send(alert: Alert, *, channels: list[AlertChannel] | None = None) -> int:
    """Send ``alert`` to every channel; returns how many took it. Never raises."""
    logger.warning("alert %s: %s", alert.code, alert.subject)
    try:
        channels = alert_channels() if channels is None else channels
    except Exception:
        logger.exception("alert channels are misconfigured; alert %s not sent", alert.code)
        return 0
    sent = 0
    for channel in channels:
        try:
            channel.send(alert)
        except Exception:
            # An alert that cannot go out must never stop a delivery.
            logger.exception("alert channel %s failed for alert %s", channel.name, alert.code)
        else:
            sent += 1
    return sent


def alert_on_commit(alert: Alert) -> None:
    """Send ``alert`` once the current transaction commits (never for a rolled-back change)."""
    transaction.on_commit(partial(alert_send, alert), robust=True)
