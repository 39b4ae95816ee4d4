"""Batches of filtered exposures per feed and window, and every attempt to deliver one."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models.functions import Coalesce

from partners.models import Feed


class Batch(models.Model):
    """The exposures of one feed's window, filtered for its partner.

    Life cycle: pending -> building -> ready -> sending -> delivered, with
    retry_scheduled between attempts and failed when a permanent error or the
    attempt limit ends it. A window with no eligible exposures ends as empty.
    Pull feeds stop at ready; the partner downloads the body. A batch replaced
    by an explicit re-build under a new configuration ends as superseded.

    Which exposures a batch holds is fixed when it is created, never later:
    those that occurred in [window_start, window_end) and were written by a
    transaction whose commit sequence lies in [claim_from, claim_to)
    (``gateway.delivery.claims``). Building it twice gives the same rows.

    A feed with ``max_batch_events`` or ``max_batch_bytes`` gets a larger
    claim in parts: the build of the claim's batch (part 1) cuts the records
    into bodies within those limits, keeps the first and creates one ready
    batch per further part (``first_part`` pointing back), all in the
    transaction that ends the build. A part is a batch like any other (id,
    sequence, signature, attempts); the claim, superseding included, belongs
    to the parts together.
    """

    class Kind(models.TextChoices):
        WINDOW = "window", "Window (on time)"
        LATE = "late", "Late exposures of earlier windows"
        STREAM = "stream", "Streaming micro-batch"
        TEST = "test", "Test delivery"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending build"
        BUILDING = "building", "Building"
        EMPTY = "empty", "Empty (nothing to send)"
        READY = "ready", "Ready"
        SENDING = "sending", "Sending"
        RETRY_SCHEDULED = "retry_scheduled", "Retry scheduled"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Superseded by a re-build"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="batches")
    sequence = models.PositiveIntegerField(help_text="1, 2, 3... per feed, in creation order.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.WINDOW)
    # Occurrence times covered: the window, or for a late batch everything
    # before the windows already closed.
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    claim_from = models.BigIntegerField(default=0)
    claim_to = models.BigIntegerField(default=0)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    # Parts of one claim's build: 1..part_count; parts after the first point to it.
    part = models.PositiveIntegerField(default=1)
    part_count = models.PositiveIntegerField(default=1)
    first_part = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="later_parts"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    # attempt_count when the current round of attempts began: an admin retry
    # starts a new round with the feed's full retry budget.
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
    # The body lives in the batch body storage (``gateway.delivery.storage``),
    # gzip-compressed NDJSON (or Parquet for file drops); signatures cover the
    # uncompressed bytes, whose SHA-256 is kept for partners and audits.
    body_path = models.CharField(max_length=300, blank=True, editable=False)
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_bytes = models.PositiveBigIntegerField(default=0)
    first_downloaded_at = models.DateTimeField(null=True, blank=True)
    # When the retention policy expired the body (gateway.delivery.retention):
    # nothing reads it from then on, and body_path is emptied once storage has
    # deleted it; the digest and counts stay for audits.
    body_expired_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The signatures the build made for the first attempt, and what they were
    # made with (gateway.delivery.first_signature); null when it did not sign.
    first_signature = models.JSONField(null=True, blank=True, editable=False)
    # Which vendor list the TCF checks used, and, for aggregate feeds, how many
    # cells were withheld under the distinct-user threshold.
    gvl_version = models.PositiveIntegerField(null=True, blank=True)
    suppressed_cells = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-window_start"]
        verbose_name_plural = "batches"
        constraints = [
            # One live batch per claim: a dispatcher racing another cannot
            # claim the same exposures twice.
            models.UniqueConstraint(
                fields=["feed", "kind", "window_start", "claim_from", "part"],
                condition=~models.Q(status="superseded"),
                name="batch_unique_claim_part",
            ),
            models.UniqueConstraint(fields=["feed", "sequence"], name="batch_unique_sequence"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="batch_due"),
            # Retention (gateway.delivery.retention): bodies still kept, oldest
            # first, and expired bodies whose deletion is still to do.
            models.Index(
                fields=["built_at"],
                condition=models.Q(body_expired_at__isnull=True) & ~models.Q(body_path=""),
                name="batch_body_kept",
            ),
            models.Index(
                fields=["body_expired_at"],
                condition=models.Q(body_expired_at__isnull=False) & ~models.Q(body_path=""),
                name="batch_body_to_delete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feed} #{self.sequence} ({self.window_start:%Y-%m-%d %H:%M:%S})"

    def claim_fields(self) -> dict[str, Any]:
        """The fields that say which exposures the batch holds: for another batch of its claim."""
        return {
            "feed_id": self.feed_id,
            "kind": self.kind,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "claim_from": self.claim_from,
            "claim_to": self.claim_to,
        }

    @property
    def claim_id(self) -> uuid.UUID:
        """The batch that stands for the claim: part 1 (the batch itself for part 1 or one part).

        ``CLAIM_ID`` is the same in a query.
        """
        return self.first_part_id if self.first_part_id is not None else self.pk

    @property
    def claim_first_part_id(self) -> uuid.UUID | None:
        """The id of part 1 of the claim, on every part (part 1 included); None for one part.

        What partners group the parts of a claim by, spelt alike in the push
        header, the pull API and the file-drop manifest.
        """
        return self.claim_id if self.part_count > 1 else None


# Batch.claim_id in a query: part 1's id, the batch's own when it has no first part.
CLAIM_ID = Coalesce("first_part_id", "id")


class FeedCursor(models.Model):
    """How far a feed's batches have claimed exposures (``gateway.delivery.claims``).

    ``horizon``: every exposure with a commit sequence below it is in a batch
    (or waits for its window to close). ``frontier``: the end of the newest
    window closed so far; exposures that occurred before it and commit later
    go to late batches.
    """

    feed = models.OneToOneField(Feed, on_delete=models.CASCADE, related_name="cursor")
    horizon = models.BigIntegerField(default=0)
    frontier = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cursor of {self.feed}: {self.horizon} / {self.frontier}"


class FeedNotice(models.Model):
    """Something an operator must see about a feed: auto-disabled, circuit opened, gone (410)."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="notices")
    created_at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.WARNING)
    code = models.CharField(max_length=40, help_text="e.g. feed_disabled, circuit_open, gone")
    message = models.TextField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.feed}: {self.code}"


class DeliveryAttempt(models.Model):
    """One HTTP POST (or file upload) of a batch to a partner."""

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
