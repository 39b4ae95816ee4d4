"""Batches of filtered exposures per feed and window, and every attempt to deliver one."""

from __future__ import annotations

import uuid

from django.db import models

from partners.models import Feed


class Batch(models.Model):
    """The exposures of one feed's window, filtered for its partner.

    Life cycle: pending -> building -> ready -> sending -> delivered, with
    retry_scheduled between attempts and failed when a permanent error or the
    attempt limit ends it. A window with no eligible exposures ends as empty.
    Pull feeds stop at ready; the partner downloads the body.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending build"
        BUILDING = "building", "Building"
        EMPTY = "empty", "Empty (nothing to send)"
        READY = "ready", "Ready"
        SENDING = "sending", "Sending"
        RETRY_SCHEDULED = "retry_scheduled", "Retry scheduled"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="batches")
    sequence = models.PositiveIntegerField(help_text="1, 2, 3... per feed, in window order.")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    # attempt_count when the current round of attempts began: an admin retry
    # starts a new round with the full DELIVERY_MAX_ATTEMPTS budget.
    attempt_round_start = models.PositiveIntegerField(default=0)
    # When a worker claimed the batch (building or sending); a claim older than
    # the task time limit belongs to a dead worker and the sweeper takes it back.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When a build or send task was last queued for the batch; the sweeper
    # re-queues only after a while, so a busy queue is not flooded with copies.
    queued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Counts of the build: candidates (exposures of the partner's campaigns in
    # the window), dropped by reason, delivered (rows in the body).
    candidate_count = models.PositiveIntegerField(default=0)
    delivered_count = models.PositiveIntegerField(default=0)
    dropped_by_reason = models.JSONField(default=dict, blank=True)
    # Events sent with fields removed, by "<activity>_denied:<reason>" (e.g.
    # "transmit_user_ids_denied:us_privacy_opt_out"): the other half of the audit.
    transformed_by_reason = models.JSONField(default=dict, blank=True)
    # {"<campaign_id>|<YYYY-MM-DD>|<event_type>": n} with days in the partner's
    # time zone at build time; reconciliation sums the keys of the event type a
    # metric counts (impressions: "impression") for "delivered".
    delivered_by_campaign_day_event = models.JSONField(default=dict, blank=True)
    # The NDJSON body, always stored gzip-compressed; signatures cover the
    # uncompressed bytes, whose SHA-256 is kept for partners and audits.
    body_gzip = models.BinaryField(null=True, blank=True, editable=False)
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_bytes = models.PositiveBigIntegerField(default=0)
    first_downloaded_at = models.DateTimeField(null=True, blank=True)
    # Which vendor list the TCF checks used, and, for aggregate feeds, how many
    # cells were withheld under the distinct-user threshold.
    gvl_version = models.PositiveIntegerField(null=True, blank=True)
    suppressed_cells = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-window_start"]
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(fields=["feed", "window_start"], name="batch_unique_window"),
            models.UniqueConstraint(fields=["feed", "sequence"], name="batch_unique_sequence"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="batch_due")]

    def __str__(self) -> str:
        return f"{self.feed} #{self.sequence} ({self.window_start:%Y-%m-%d %H:%M:%S})"


class DeliveryAttempt(models.Model):
    """One HTTP POST of a batch to a partner endpoint."""

    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        SUCCEEDED = "succeeded", "Succeeded"
        TRANSIENT_FAILURE = "transient_failure", "Transient failure (will retry)"
        PERMANENT_FAILURE = "permanent_failure", "Permanent failure"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.IN_PROGRESS)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    webhook_timestamp = models.PositiveBigIntegerField()
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["batch", "number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "number"], name="attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.batch_id}: {self.outcome}"
