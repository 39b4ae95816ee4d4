"""The delivery state machine: windows become batches, batches are built, sent and retried.

Building a batch is in ``gateway.delivery.build`` and sending one in
``gateway.delivery.sending`` (both re-exported here); this module dispatches
windows, sweeps lost work, and carries out the admin's repairs (retry,
send again, supersede).

Every step claims its batch with a conditional ``UPDATE ... WHERE status = ...``
and checks the row count, so duplicate task messages, racing workers and the
sweeper can all call the same service: whoever loses the claim does nothing.
Tasks are queued with ``transaction.on_commit`` so a worker never looks for a
row that is not committed yet.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from gateway.delivery import retry
from gateway.delivery.build import (
    EXPOSURE_CHUNK_SIZE,
    UNSPECIFIED_REASON,
    AggregateConfigurationError,
    BuildTally,
    batch_build,
)
from gateway.delivery.claims import Round, commit_horizon, window_round
from gateway.delivery.models import CLAIM_ID, Batch, DeliveryAttempt, FeedCursor
from gateway.delivery.queueing import BatchId, on_commit_build, on_commit_send
from gateway.delivery.sending import AttemptResult, batch_headers, batch_send, retry_schedule
from gateway.delivery.sequences import batches_create_numbered, feed_cursor_locked, next_sequence
from gateway.delivery.windows import DEFAULT_MAX_WINDOWS
from partners.models import Feed, Partner

__all__ = [
    "EXPOSURE_CHUNK_SIZE",
    "UNSPECIFIED_REASON",
    "AggregateConfigurationError",
    "AttemptResult",
    "BatchId",
    "BuildTally",
    "DispatchReport",
    "batch_build",
    "batch_headers",
    "batch_retry",
    "batch_send",
    "batch_send_again",
    "batch_supersede",
    "batches_sweep",
    "feed_cursor_locked",
    "next_sequence",
    "retry_schedule",
    "windows_dispatch",
]

logger = logging.getLogger(__name__)

# Batches re-queued per category per sweep, so one sweep stays a short task.
SWEEP_LIMIT = 500
# Feed modes whose batches the gateway delivers itself (the partner pulls the others).
PUSHED_MODES = Feed.PUSHED_MODES
# A batch being built or sent is left alone; a superseded one already has its successor.
SUPERSEDE_REFUSED = (Batch.Status.BUILDING, Batch.Status.SENDING, Batch.Status.SUPERSEDED)


@dataclass(frozen=True)
class DispatchReport:
    """What one dispatcher run did: batches created and lost messages re-queued."""

    created: int
    requeued: int


def _live_feed_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}enabled": True, f"{prefix}partner__status": Partner.Status.ACTIVE})


# --- Dispatch ---------------------------------------------------------------------


def windows_dispatch(*, now: datetime, max_windows: int = DEFAULT_MAX_WINDOWS) -> DispatchReport:
    """Cut the batches of every live window feed whose next window has closed, then sweep.

    Live feeds are enabled feeds of active partners (streaming feeds cut their
    own micro-batches). Each feed is handled in its own transaction, its
    cursor row locked: when another dispatcher got there first, the unique
    claim constraint rejects our batches, that feed is skipped this time and
    the others go ahead.
    """
    created = 0
    horizon = commit_horizon()
    feeds = (
        Feed.objects.filter(_live_feed_q()).exclude(mode=Feed.Mode.STREAM).select_related("partner")
    )
    for feed in feeds:
        try:
            with transaction.atomic():
                created += _feed_dispatch(
                    feed=feed, horizon=horizon, now=now, max_windows=max_windows
                )
        except IntegrityError:
            logger.info("feed %s: windows already dispatched by a concurrent dispatcher", feed.pk)
    return DispatchReport(created=created, requeued=batches_sweep(now=now))


def _feed_dispatch(*, feed: Feed, horizon: int, now: datetime, max_windows: int) -> int:
    cursor = feed_cursor_locked(feed=feed)
    cut = window_round(feed=feed, cursor=cursor, horizon=horizon, now=now, max_windows=max_windows)
    if cut is None:
        return 0
    round_save(feed=feed, cursor=cursor, cut=cut)
    for batch in cut.batches:
        on_commit_build(batch.pk)
    return len(cut.batches)


def round_save(*, feed: Feed, cursor: FeedCursor, cut: Round) -> None:
    """Number and store a round's batches and move the feed's cursor (caller's transaction)."""
    batches_create_numbered(feed_id=feed.pk, batches=cut.batches)
    cursor.horizon = cut.horizon
    cursor.frontier = cut.frontier
    cursor.save(update_fields=["horizon", "frontier", "updated_at"])


def batches_sweep(*, now: datetime) -> int:
    """Re-queue batches whose task message was probably lost; returns how many.

    Covers pending batches never built, ready push batches never sent, retries
    and deferred sends well past due, and builds or sends claimed by a worker
    that died (its claim is older than the task time limit).
    """
    # A batch still waiting this long after its task was queued has probably
    # lost its message (broker restart, worker killed before ack).
    lost_before = now - timedelta(seconds=settings.DELIVERY_LOST_MESSAGE_AFTER_SECONDS)
    # By the hard time limit plus a margin, Celery has killed the task for sure.
    dead_before = now - timedelta(
        seconds=settings.CELERY_TASK_TIME_LIMIT + settings.DELIVERY_DEAD_CLAIM_MARGIN_SECONDS
    )
    # A dead build simply starts over; it lands in the pending case below
    # because its queued_at is old by now.
    Batch.objects.filter(status=Batch.Status.BUILDING, claimed_at__lt=dead_before).update(
        status=Batch.Status.PENDING, claimed_at=None
    )
    stale_sends = Batch.objects.filter(
        status=Batch.Status.SENDING, claimed_at__lt=dead_before
    ).values_list("pk", "claimed_at")[:SWEEP_LIMIT]
    requeued: int = sum(
        _send_reclaim(batch_id=pk, claimed_at=at, now=now)
        for pk, at in stale_sends
        if at is not None  # filtered on it: never None here
    )

    live = Batch.objects.filter(_live_feed_q("feed__")).filter(
        Q(queued_at__isnull=True) | Q(queued_at__lt=lost_before)
    )
    build_ids = list(
        live.filter(status=Batch.Status.PENDING).values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    send_ids = list(
        live.filter(
            # A ready batch may wait for its feed's limits (next_attempt_at set
            # by a deferral): lost only once that time is well past too.
            Q(status=Batch.Status.READY, feed__mode__in=PUSHED_MODES)
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=lost_before))
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
    batch = (
        Batch.objects.select_related("feed")
        .only("attempt_count", "attempt_round_start", "feed__retry_schedule")
        .get(pk=batch_id)
    )
    budget = retry.attempt_budget(retry_schedule(batch.feed))
    exhausted = batch.attempt_count - batch.attempt_round_start >= budget
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


# --- Admin operations -----------------------------------------------------------------


def batch_retry(*, batch_id: BatchId) -> bool:
    """Send a failed or retry-scheduled push batch again now, with a fresh attempt budget.

    The batch keeps its id, so the partner sees the same webhook-id; attempts
    continue their numbering. Returns False when the batch is not retryable.
    """
    return batch_send_again(
        batch_id=batch_id, statuses=(Batch.Status.FAILED, Batch.Status.RETRY_SCHEDULED)
    )


def batch_send_again(*, batch_id: BatchId, statuses: Sequence[str]) -> bool:
    """Queue a batch of a feed we deliver to be sent now, with a fresh attempt budget.

    Only if its status is one of ``statuses`` and its body is still kept
    (checked in the update itself, so a concurrent change wins); returns
    whether it was queued.
    """
    with transaction.atomic():
        updated = Batch.objects.filter(
            pk=batch_id,
            status__in=statuses,
            feed__mode__in=PUSHED_MODES,
            body_expired_at__isnull=True,
        ).update(
            status=Batch.Status.READY,
            next_attempt_at=None,
            attempt_round_start=F("attempt_count"),
            queued_at=timezone.now(),
        )
        if updated:
            on_commit_send(batch_id)
    return bool(updated)


def batch_supersede(*, batch_id: BatchId) -> Batch | None:
    """Build a batch's exposures again, under today's configuration, as a new batch.

    The new batch claims exactly what the old one did (same kind, window and
    commit range) and gets the next sequence number and a new id, so the
    partner sees a new delivery; the old batch is marked superseded and keeps
    its attempts for the record. A batch that is one part of a larger claim
    (``Feed.max_batch_events``) goes with all its parts: the claim is built
    again whole, and may be cut differently. Only on explicit request (admin,
    command): nothing supersedes automatically. Returns the new batch, or
    None when the batch (or one of its parts) is in flight (building or
    sending) or superseded already.
    """
    now = timezone.now()
    with transaction.atomic():
        first_id = (
            Batch.objects.filter(pk=batch_id)
            .annotate(claim=CLAIM_ID)
            .values_list("claim", flat=True)
            .first()
        )
        if first_id is None:
            return None
        parts = list(
            Batch.objects.select_for_update()
            .filter(Q(pk=first_id) | Q(first_part_id=first_id))
            .order_by("part")
        )
        if not parts or any(part.status in SUPERSEDE_REFUSED for part in parts):
            return None
        old = parts[0]
        old_ids = [part.pk for part in parts]
        # Numbered under the cursor lock, one at a time with the dispatcher.
        feed_cursor_locked(feed=old.feed)
        # Freed first: the claim constraint admits one live batch per claim and part.
        Batch.objects.filter(pk__in=old_ids).update(status=Batch.Status.SUPERSEDED)
        new = Batch.objects.create(
            sequence=next_sequence(feed_id=old.feed_id), queued_at=now, **old.claim_fields()
        )
        Batch.objects.filter(pk__in=old_ids).update(superseded_by=new, next_attempt_at=None)
        on_commit_build(new.pk)
    return new
