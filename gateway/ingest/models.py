"""Exposures reported by our ad servers, and the tokens those servers use."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from gateway.ingest.fields import JSONTextField


class CommitSequence(models.Func):
    """The writing transaction's id on PostgreSQL; NULL elsewhere (a trigger fills it on SQLite)."""

    template = "NULL"
    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


class Exposure(models.Model):
    """One ad event as our ad server reported it, validated and normalised.

    The filterable dimensions are columns; ``payload`` holds the whole normalised
    record, which the privacy filter reduces per partner. ``occurred_at``
    decides the delivery window; ``commit_seq`` decides whether the exposure
    goes in its window's batch or, having arrived after that was cut, in a
    later "late" batch (``gateway.delivery.claims``).
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
    # Kept as the text it was written as (PostgreSQL json): read whole at every build.
    payload = JSONTextField()
    # The id of the transaction that wrote the row (PostgreSQL's xid8; on
    # SQLite, whose writers take turns, the row id), set by the database.
    # Delivery claims exposures by ranges of it (``gateway.delivery.claims``).
    commit_seq = models.BigIntegerField(null=True, editable=False, db_default=CommitSequence())

    class Meta:
        indexes = [
            models.Index(fields=["commit_seq"], name="exposure_commit_seq"),
            models.Index(fields=["occurred_at", "id"], name="exposure_occurred_at"),
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
