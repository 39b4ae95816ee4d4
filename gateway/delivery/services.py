"""The delivery state machine: windows become batches, batches are built, sent and retried.

Building a batch is in ``gateway.delivery.build`` (re-exported here); this
module dispatches windows, sends batches, retries them and sweeps lost work.

Every step claims its batch with a conditional ``UPDATE ... WHERE status = ...``
and checks the row count, so duplicate task messages, racing workers and the
sweeper can all call the same service: whoever loses the claim does nothing.
Tasks are queued with ``transaction.on_commit`` so a worker never looks for a
row that is not committed yet.
"""

from __future__ import annotations

import gzip
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from gateway.delivery import retry, transport
from gateway.delivery.build import (
    EXPOSURE_CHUNK_SIZE,
    UNSPECIFIED_REASON,
    AggregateConfigurationError,
    BuildTally,
    batch_build,
)
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.queueing import BatchId, on_commit_build, on_commit_send
from gateway.delivery.signing import webhook_headers
from gateway.delivery.windows import DEFAULT_MAX_WINDOWS, closed_windows, first_window_start
from gateway.errors import DeliveryError
from partners.endpoints import validate_push_endpoint
from partners.models import Feed, Partner, SigningSecret
from partners.services import signing_secret_current

__all__ = [
    "EXPOSURE_CHUNK_SIZE",
    "UNSPECIFIED_REASON",
    "AggregateConfigurationError",
    "AttemptResult",
    "BatchId",
    "BuildTally",
    "DispatchReport",
    "batch_build",
    "batch_rebuild",
    "batch_retry",
    "batch_send",
    "batches_sweep",
    "windows_dispatch",
]

logger = logging.getLogger(__name__)

# A batch still waiting this long after its task was queued has probably lost
# its message (broker restart, worker killed before ack); the sweeper re-queues it.
LOST_MESSAGE_AFTER = timedelta(minutes=5)
# Added to the hard task time limit before a claim is taken from its worker:
# by then Celery has killed the task for sure.
DEAD_CLAIM_MARGIN = timedelta(seconds=60)
# Batches re-queued per category per sweep, so one sweep stays a short task.
SWEEP_LIMIT = 500
NDJSON_CONTENT_TYPE = "application/x-ndjson"


@dataclass(frozen=True)
class DispatchReport:
    """What one dispatcher run did: batches created and lost messages re-queued."""

    created: int
    requeued: int


def _live_feed_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}enabled": True, f"{prefix}partner__status": Partner.Status.ACTIVE})


# --- Dispatch ---------------------------------------------------------------------


def windows_dispatch(*, now: datetime, max_windows: int = DEFAULT_MAX_WINDOWS) -> DispatchReport:
    """Create a batch for each newly closed window of every live feed, then sweep.

    Live feeds are enabled feeds of active partners, push and pull alike. Each
    feed is handled in its own savepoint: when another dispatcher created the
    same windows first, the unique constraints reject ours, that feed is
    skipped this time and the others go ahead.
    """
    created = 0
    feeds = Feed.objects.filter(_live_feed_q()).annotate(
        last_sequence=Max("batches__sequence"), last_end=Max("batches__window_end")
    )
    for feed in feeds:
        try:
            with transaction.atomic():
                created += _feed_dispatch(feed=feed, now=now, max_windows=max_windows)
        except IntegrityError:
            logger.info("feed %s: windows already dispatched by a concurrent dispatcher", feed.pk)
    return DispatchReport(created=created, requeued=batches_sweep(now=now))


def _feed_dispatch(*, feed: Feed, now: datetime, max_windows: int) -> int:
    start = first_window_start(
        deliver_from=feed.deliver_from,
        last_end=feed.last_end,  # type: ignore[attr-defined]
        length_seconds=feed.batch_window_seconds,
    )
    windows = closed_windows(
        start=start,
        length_seconds=feed.batch_window_seconds,
        grace_seconds=feed.grace_seconds,
        now=now,
        limit=max_windows,
    )
    previous = feed.last_sequence or 0  # type: ignore[attr-defined]
    batches = [
        Batch(
            feed=feed,
            sequence=previous + offset,
            window_start=window.start,
            window_end=window.end,
            queued_at=now,
        )
        for offset, window in enumerate(windows, start=1)
    ]
    Batch.objects.bulk_create(batches)
    for batch in batches:
        on_commit_build(batch.pk)
    return len(batches)


def batches_sweep(*, now: datetime) -> int:
    """Re-queue batches whose task message was probably lost; returns how many.

    Covers pending batches never built, ready push batches never sent, retries
    well past due, and builds or sends claimed by a worker that died (its claim
    is older than the task time limit).
    """
    lost_before = now - LOST_MESSAGE_AFTER
    dead_before = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) - DEAD_CLAIM_MARGIN
    # A dead build simply starts over; it lands in the pending case below
    # because its queued_at is old by now.
    Batch.objects.filter(status=Batch.Status.BUILDING, claimed_at__lt=dead_before).update(
        status=Batch.Status.PENDING, claimed_at=None
    )
    stale_sends = Batch.objects.filter(
        status=Batch.Status.SENDING, claimed_at__lt=dead_before
    ).values_list("pk", "claimed_at")[:SWEEP_LIMIT]
    requeued = sum(_send_reclaim(batch_id=pk, claimed_at=at, now=now) for pk, at in stale_sends)

    live = Batch.objects.filter(_live_feed_q("feed__")).filter(
        Q(queued_at__isnull=True) | Q(queued_at__lt=lost_before)
    )
    build_ids = list(
        live.filter(status=Batch.Status.PENDING).values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    send_ids = list(
        live.filter(
            Q(status=Batch.Status.READY, feed__mode=Feed.Mode.PUSH)
            | Q(status=Batch.Status.RETRY_SCHEDULED, next_attempt_at__lt=lost_before)
        ).values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    with transaction.atomic():
        Batch.objects.filter(pk__in=build_ids + send_ids).update(queued_at=now)
        for batch_id in build_ids:
            on_commit_build(batch_id)
        for batch_id in send_ids:
            on_commit_send(batch_id)
    if build_ids or send_ids or requeued:
        logger.warning(
            "sweeper re-queued %d builds, %d sends, %d sends of dead workers",
            len(build_ids),
            len(send_ids),
            requeued,
        )
    return len(build_ids) + len(send_ids) + requeued


@transaction.atomic
def _send_reclaim(*, batch_id: uuid.UUID, claimed_at: datetime, now: datetime) -> int:
    """Close the attempt of a worker that died mid-send, and schedule the next one."""
    batch = Batch.objects.only("attempt_count", "attempt_round_start").get(pk=batch_id)
    exhausted = batch.attempt_count - batch.attempt_round_start >= settings.DELIVERY_MAX_ATTEMPTS
    error = "worker lost during the attempt (killed or timed out)"
    claimed = Batch.objects.filter(
        pk=batch_id, status=Batch.Status.SENDING, claimed_at=claimed_at
    ).update(
        status=Batch.Status.FAILED if exhausted else Batch.Status.RETRY_SCHEDULED,
        next_attempt_at=None if exhausted else now,
        claimed_at=None,
        queued_at=now,
        last_error=error,
    )
    if not claimed:
        return 0
    DeliveryAttempt.objects.filter(
        batch_id=batch_id, outcome=DeliveryAttempt.Outcome.IN_PROGRESS
    ).update(outcome=DeliveryAttempt.Outcome.TRANSIENT_FAILURE, error=error, finished_at=now)
    if exhausted:
        return 0
    on_commit_send(batch_id)
    return 1


# --- Send ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt ended, before it is written to the attempt row and the batch."""

    outcome: DeliveryAttempt.Outcome
    error: str = ""
    http_status: int | None = None
    response_excerpt: str = ""
    duration_ms: int | None = None
    retry_after: str | None = None


def batch_send(*, batch_id: BatchId, task_id: str = "") -> DeliveryAttempt | None:
    """Make one signed POST of a ready (or due) push batch; returns the attempt row.

    Returns None, doing nothing, when the batch is gone, not a push batch, its
    feed or partner is not live, or it is not ready or due (already sent, or
    claimed by another worker).
    """
    now = timezone.now()
    batch = (
        Batch.objects.select_related("feed__partner").defer("body_gzip").filter(pk=batch_id).first()
    )
    if batch is None or batch.feed.mode != Feed.Mode.PUSH:
        return None
    if not (batch.feed.enabled and batch.feed.partner.is_active):
        # Paused partners keep their batches; the sweeper sends them once live again.
        return None
    due = Q(status=Batch.Status.READY) | Q(
        status=Batch.Status.RETRY_SCHEDULED, next_attempt_at__lte=now
    )
    claimed = Batch.objects.filter(due, pk=batch_id).update(
        status=Batch.Status.SENDING,
        claimed_at=now,
        next_attempt_at=None,
        attempt_count=F("attempt_count") + 1,
    )
    if not claimed:
        return None
    batch.refresh_from_db(fields=["status", "attempt_count", "attempt_round_start", "claimed_at"])
    # The attempt row exists before any traffic, so even a worker killed
    # mid-request leaves a trace (the sweeper closes it).
    attempt = DeliveryAttempt.objects.create(
        batch=batch,
        number=batch.attempt_count,
        started_at=now,
        webhook_timestamp=int(now.timestamp()),
        task_id=task_id[:64],
    )
    result = _attempt_run(batch=batch, attempt=attempt)
    _attempt_finish(batch=batch, attempt=attempt, result=result)
    return attempt


def _attempt_run(*, batch: Batch, attempt: DeliveryAttempt) -> AttemptResult:
    started = time.monotonic()
    try:
        return _attempt_classify(_attempt_post(batch=batch, timestamp=attempt.webhook_timestamp))
    except DeliveryError as exc:
        outcome = (
            DeliveryAttempt.Outcome.TRANSIENT_FAILURE
            if exc.transient
            else DeliveryAttempt.Outcome.PERMANENT_FAILURE
        )
        error = exc.detail
    except Exception as exc:
        # An unexpected bug must not leave the batch stuck in "sending": record
        # it and let the retry budget decide, like any other transient failure.
        logger.exception("batch %s attempt %d crashed", batch.pk, attempt.number)
        outcome, error = DeliveryAttempt.Outcome.TRANSIENT_FAILURE, repr(exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    return AttemptResult(outcome=outcome, error=error, duration_ms=duration_ms)


def _attempt_post(*, batch: Batch, timestamp: int) -> transport.TransportResult:
    """Sign and POST the batch body once; raises DeliveryError when it cannot even be sent."""
    feed = batch.feed
    try:
        # Checked at every attempt, not only when the feed was saved: DNS may
        # have changed to point at a private address since.
        validate_push_endpoint(feed.endpoint_url)
    except ValidationError as exc:
        raise DeliveryError(
            f"endpoint refused: {'; '.join(exc.messages)}", transient=False
        ) from exc
    try:
        secret = signing_secret_current(partner_id=feed.partner_id)
    except SigningSecret.DoesNotExist as exc:
        raise DeliveryError("the partner has no active signing secret", transient=False) from exc
    stored = Batch.objects.values_list("body_gzip", flat=True).get(pk=batch.pk)
    if not stored:
        raise DeliveryError("the batch has no body", transient=False)
    compressed = bytes(stored)
    payload = gzip.decompress(compressed)
    # The batch id is the webhook id on every attempt, so partners can drop
    # a duplicate when a "failed" attempt had in fact arrived.
    headers = webhook_headers(
        secret=secret, msg_id=str(batch.pk), timestamp=timestamp, payload=payload
    )
    headers["Content-Type"] = NDJSON_CONTENT_TYPE
    if feed.gzip:
        headers["Content-Encoding"] = "gzip"
    return transport.post(
        url=feed.endpoint_url,
        body=compressed if feed.gzip else payload,
        headers=headers,
        timeout=settings.DELIVERY_TIMEOUT_SECONDS,
    )


def _attempt_classify(sent: transport.TransportResult) -> AttemptResult:
    """Success, transient or permanent: only a retry can tell a flaky partner from a broken one."""
    Outcome = DeliveryAttempt.Outcome
    if sent.status is None:
        kind = sent.network_error or "network"
        # A request we cannot even form will not get better by waiting.
        invalid = sent.network_error == transport.NetworkError.INVALID_REQUEST
        outcome = Outcome.PERMANENT_FAILURE if invalid else Outcome.TRANSIENT_FAILURE
        error = f"{kind}: {sent.error}"
    elif retry.is_success(sent.status):
        outcome, error = Outcome.SUCCEEDED, sent.error
    elif retry.is_transient_status(sent.status):
        outcome, error = Outcome.TRANSIENT_FAILURE, f"HTTP {sent.status}"
    else:
        outcome, error = Outcome.PERMANENT_FAILURE, f"HTTP {sent.status}"
    return AttemptResult(
        outcome=outcome,
        error=error,
        http_status=sent.status,
        response_excerpt=sent.response_excerpt,
        duration_ms=sent.duration_ms,
        retry_after=sent.retry_after if outcome == Outcome.TRANSIENT_FAILURE else None,
    )


def _attempt_finish(*, batch: Batch, attempt: DeliveryAttempt, result: AttemptResult) -> None:
    """Write the attempt's outcome and move the batch to its next state."""
    now = timezone.now()
    attempt.outcome = result.outcome
    attempt.http_status = result.http_status
    attempt.response_excerpt = result.response_excerpt[: transport.EXCERPT_CHARS]
    attempt.error = result.error
    attempt.duration_ms = result.duration_ms
    attempt.finished_at = now
    batch.claimed_at = None
    fields = ["status", "claimed_at", "last_error"]
    countdown = 0.0
    if result.outcome == DeliveryAttempt.Outcome.SUCCEEDED:
        batch.status = Batch.Status.DELIVERED
        batch.delivered_at = now
        batch.last_error = ""
        fields.append("delivered_at")
    elif result.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE:
        batch.status = Batch.Status.FAILED
        batch.last_error = f"attempt {attempt.number}: {result.error}"
    elif attempt.number - batch.attempt_round_start >= settings.DELIVERY_MAX_ATTEMPTS:
        batch.status = Batch.Status.FAILED
        batch.last_error = (
            f"gave up after {settings.DELIVERY_MAX_ATTEMPTS} attempts; last: {result.error}"
        )
    else:
        countdown = retry.retry_delay(
            attempt=attempt.number - batch.attempt_round_start,
            base_seconds=settings.DELIVERY_RETRY_BASE_SECONDS,
            max_seconds=settings.DELIVERY_RETRY_MAX_SECONDS,
            retry_after=retry.parse_retry_after(result.retry_after, now=now),
        )
        batch.status = Batch.Status.RETRY_SCHEDULED
        batch.next_attempt_at = now + timedelta(seconds=countdown)
        batch.queued_at = now
        batch.last_error = f"attempt {attempt.number}: {result.error}"
        fields += ["next_attempt_at", "queued_at"]
    with transaction.atomic():
        attempt.save(
            update_fields=[
                "outcome",
                "http_status",
                "response_excerpt",
                "error",
                "duration_ms",
                "finished_at",
            ]
        )
        batch.save(update_fields=fields)
        if batch.status == Batch.Status.RETRY_SCHEDULED:
            on_commit_send(batch.pk, countdown)


# --- Admin operations -----------------------------------------------------------------


def batch_retry(*, batch_id: BatchId) -> bool:
    """Send a failed or retry-scheduled push batch again now, with a fresh attempt budget.

    The batch keeps its id, so the partner sees the same webhook-id; attempts
    continue their numbering. Returns False when the batch is not retryable.
    """
    now = timezone.now()
    with transaction.atomic():
        updated = (
            Batch.objects.filter(pk=batch_id, feed__mode=Feed.Mode.PUSH)
            .filter(status__in=[Batch.Status.FAILED, Batch.Status.RETRY_SCHEDULED])
            .update(
                status=Batch.Status.READY,
                next_attempt_at=None,
                attempt_round_start=F("attempt_count"),
                queued_at=now,
            )
        )
        if updated:
            on_commit_send(batch_id)
    return bool(updated)


def batch_rebuild(*, batch_id: BatchId) -> bool:
    """Build a batch again from its window, e.g. after a consent rule changed.

    Only batches whose body no partner can have seen: empty, failed, or ready
    and never downloaded. Returns False otherwise.
    """
    now = timezone.now()
    rebuildable = Q(status__in=[Batch.Status.EMPTY, Batch.Status.FAILED]) | Q(
        status=Batch.Status.READY, first_downloaded_at__isnull=True
    )
    with transaction.atomic():
        updated = Batch.objects.filter(rebuildable, pk=batch_id).update(
            status=Batch.Status.PENDING,
            next_attempt_at=None,
            claimed_at=None,
            queued_at=now,
            attempt_round_start=F("attempt_count"),
            candidate_count=0,
            delivered_count=0,
            dropped_by_reason={},
            transformed_by_reason={},
            delivered_by_campaign_day_event={},
            suppressed_cells=0,
            gvl_version=None,
            body_gzip=None,
            body_sha256="",
            body_bytes=0,
        )
        if updated:
            on_commit_build(batch_id)
    return bool(updated)
