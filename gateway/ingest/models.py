"""Exposures reported by our ad servers, and the tokens those servers use."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Exposure(models.Model):
    """One ad event as our ad server reported it, validated and normalised.

    The filterable dimensions are columns; ``payload`` holds the whole normalised
    record, which the privacy filter reduces per partner. ``received_at`` is the
    gateway's clock and decides the delivery window, so every exposure falls in
    exactly one window however late it arrives.
    """

    event_id = models.CharField(max_length=128, unique=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    event_type = models.CharField(max_length=32)
    media_type = models.CharField(max_length=16)
    content_type = models.CharField(max_length=16)
    advertiser_id = models.CharField(max_length=64)
    campaign_id = models.CharField(max_length=64)
    line_item_id = models.CharField(max_length=64)
    creative_id = models.CharField(max_length=64)
    payload = models.JSONField()

    class Meta:
        indexes = [
            models.Index(fields=["received_at"], name="exposure_received_at"),
            models.Index(fields=["campaign_id", "occurred_at"], name="exposure_campaign_time"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class IngestToken(models.Model):
    """A bearer token for one of our ad servers; only its hash is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
