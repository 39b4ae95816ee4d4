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

import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from gateway.delivery import health, retry, transport
from gateway.delivery.build import (
    EXPOSURE_CHUNK_SIZE,
    UNSPECIFIED_REASON,
    AggregateConfigurationError,
    BuildTally,
    batch_build,
)
from gateway.delivery.claims import Round, commit_horizon, window_round
from gateway.delivery.models import Batch, DeliveryAttempt, FeedCursor
from gateway.delivery.preparation import PreparedRequest, request_prepare
from gateway.delivery.queueing import BatchId, on_commit_build, on_commit_send
from gateway.delivery.windows import DEFAULT_MAX_WINDOWS
from gateway.errors import DeliveryError
from partners.endpoints import EndpointRefused, EndpointUnresolvable, resolve_and_check
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
    "batch_retry",
    "batch_send",
    "batch_send_again",
    "batch_supersede",
    "batches_sweep",
    "windows_dispatch",
]

logger = logging.getLogger(__name__)

# Batches re-queued per category per sweep, so one sweep stays a short task.
SWEEP_LIMIT = 500
# Feed modes whose batches the gateway delivers itself (the partner pulls the others).
PUSHED_MODES = Feed.PUSHED_MODES
# The batch a re-build replaces, if any, as a subquery of the batch's own row.
_REPLACED_ID = Subquery(Batch.objects.filter(superseded_by=OuterRef("pk")).values("pk")[:1])
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


def feed_cursor_locked(*, feed: Feed) -> FeedCursor:
    """The feed's cursor row, created on first use and locked until the transaction ends."""
    FeedCursor.objects.get_or_create(feed=feed)
    return FeedCursor.objects.select_for_update().get(feed=feed)


def next_sequence(*, feed_id: int) -> int:
    """The feed's next batch sequence number; call it holding the feed's cursor lock."""
    last = Batch.objects.filter(feed_id=feed_id).aggregate(last=Max("sequence"))["last"]
    return (last or 0) + 1


def round_save(*, feed: Feed, cursor: FeedCursor, cut: Round) -> None:
    """Number and store a round's batches and move the feed's cursor (caller's transaction)."""
    first = next_sequence(feed_id=feed.pk)
    for offset, batch in enumerate(cut.batches):
        batch.sequence = first + offset
    Batch.objects.bulk_create(cut.batches)
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
    requeued = sum(_send_reclaim(batch_id=pk, claimed_at=at, now=now) for pk, at in stale_sends)

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
    # Why no HTTP status came back (transport.NetworkError), for the circuit breaker.
    network_error: str = ""


def retry_schedule(feed: Feed) -> list[int]:
    """The waits before a feed's attempts 2, 3, ...: its own, else the default."""
    return list(feed.retry_schedule or settings.DELIVERY_RETRY_SCHEDULE)


def _due_q(now: datetime) -> Q:
    """Batches a send may claim: ready, or a retry, whose time (if it has one) has come.

    A ready batch gets a time only when its send was deferred (feed limits,
    circuit open); until then duplicate messages of it do nothing.
    """
    return Q(status=Batch.Status.READY, next_attempt_at__isnull=True) | Q(
        status__in=[Batch.Status.READY, Batch.Status.RETRY_SCHEDULED], next_attempt_at__lte=now
    )


def _is_due(batch: Batch, *, now: datetime) -> bool:
    """``_due_q`` for a batch in hand; the claim checks again with the query."""
    if batch.status not in (Batch.Status.READY, Batch.Status.RETRY_SCHEDULED):
        return False
    if batch.next_attempt_at is None:
        return batch.status == Batch.Status.READY
    return batch.next_attempt_at <= now


def batch_send(*, batch_id: BatchId, task_id: str = "") -> DeliveryAttempt | None:
    """Make one signed POST of a ready (or due) push batch; returns the attempt row.

    Returns None, doing nothing, when the batch is gone, not a push batch, its
    feed or partner is not live, or it is not ready or due (already sent, or
    claimed by another worker). Returns None as well when the feed's limits or
    its endpoint's circuit breaker say "not now" (``gateway.delivery.health``):
    the send is queued again for later, which is not an attempt.
    """
    now = timezone.now()
    batch = (
        Batch.objects.select_related("feed__partner")
        .annotate(replaced_id=_REPLACED_ID)
        .filter(pk=batch_id)
        .first()
    )
    if batch is None or not batch.feed.pushes:
        return None
    if not (batch.feed.enabled and batch.feed.partner.is_active):
        # Paused partners keep their batches; the sweeper sends them once live again.
        return None
    if not _is_due(batch, now=now):
        return None
    permit = health.send_permit(batch=batch, now=now.timestamp())
    if isinstance(permit, health.Deferral):
        _send_defer(batch=batch, deferral=permit, now=now)
        return None
    try:
        # Body and signatures get ready while the attempt is claimed and recorded.
        prepared = (
            None
            if batch.feed.mode == Feed.Mode.FILE
            else request_prepare(batch=batch, timestamp=_webhook_timestamp(now))
        )
        attempt = _attempt_start(batch=batch, now=now, task_id=task_id)
        if attempt is None:
            return None
        result = _attempt_run(batch=batch, attempt=attempt, prepared=prepared)
        _attempt_finish(batch=batch, attempt=attempt, result=result)
        _attempt_observe(batch=batch, attempt=attempt, result=result, permit=permit)
        return attempt
    finally:
        permit.release()


def _send_defer(*, batch: Batch, deferral: health.Deferral, now: datetime) -> None:
    """Queue the send again after the deferral's wait: not an attempt, no retry budget spent."""
    later = now + timedelta(seconds=deferral.wait_seconds)
    with transaction.atomic():
        # Conditional on queued_at as we read it: of duplicate messages for the
        # batch, only one queues the next, so duplicates do not live on.
        moved = Batch.objects.filter(_due_q(now), pk=batch.pk, queued_at=batch.queued_at).update(
            next_attempt_at=later,
            queued_at=now,
            last_error=f"waiting until {later:%H:%M:%S} UTC, not attempted: {deferral.reason}",
        )
        if moved:
            on_commit_send(batch.pk, deferral.wait_seconds)


def _attempt_start(*, batch: Batch, now: datetime, task_id: str) -> DeliveryAttempt | None:
    """Claim a due batch for one attempt and write the attempt row; None if another got it.

    One transaction, so one commit: a send's bookkeeping is two commits in all
    (this and the outcome), which matters when each costs a disk flush.
    """
    with transaction.atomic():
        # Conditional on the counts as read as well: then they are known after
        # the claim without reading the row again. Had another worker attempted
        # the batch meanwhile, that worker has it.
        claimed = Batch.objects.filter(
            _due_q(now),
            pk=batch.pk,
            attempt_count=batch.attempt_count,
            attempt_round_start=batch.attempt_round_start,
        ).update(
            status=Batch.Status.SENDING,
            claimed_at=now,
            next_attempt_at=None,
            attempt_count=batch.attempt_count + 1,
        )
        if not claimed:
            return None
        batch.status = Batch.Status.SENDING
        batch.claimed_at = now
        batch.next_attempt_at = None
        batch.attempt_count += 1
        # The attempt row exists before any traffic, so even a worker killed
        # mid-request leaves a trace (the sweeper closes it).
        return DeliveryAttempt.objects.create(
            batch=batch,
            number=batch.attempt_count,
            started_at=now,
            webhook_timestamp=_webhook_timestamp(now),
            task_id=task_id[:64],
        )


def _attempt_observe(
    *, batch: Batch, attempt: DeliveryAttempt, result: AttemptResult, permit: health.Permit
) -> None:
    """Feed and endpoint health after the attempt; the attempt is recorded whatever happens here."""
    try:
        health.attempt_observe(
            batch=batch, result=result, permit=permit, now=attempt.finished_at or timezone.now()
        )
    except Exception:
        logger.exception("batch %s attempt %d: health bookkeeping failed", batch.pk, attempt.number)


def _webhook_timestamp(now: datetime) -> int:
    """The attempt's ``webhook-timestamp``: when its send began, in Unix seconds."""
    return int(now.timestamp())


def _attempt_run(
    *, batch: Batch, attempt: DeliveryAttempt, prepared: PreparedRequest | None
) -> AttemptResult:
    started = time.monotonic()
    try:
        if prepared is None:
            # Imported here: file drops pull in storage clients only file feeds need.
            from gateway.filedrop.services import batch_upload

            return batch_upload(batch=batch, attempt=attempt)
        return _attempt_classify(_attempt_post(batch=batch, prepared=prepared))
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


def _attempt_post(*, batch: Batch, prepared: PreparedRequest) -> transport.TransportResult:
    """POST the prepared batch once; raises DeliveryError when it cannot even be sent."""
    feed = batch.feed
    try:
        # Resolved and checked at every attempt, not only when the feed was
        # saved, and the request goes to exactly the address checked: DNS
        # cannot be re-pointed at our own network in between.
        pinned = resolve_and_check(feed.endpoint_url)
    except EndpointRefused as exc:
        raise DeliveryError(f"endpoint refused: {exc}", transient=False) from exc
    except EndpointUnresolvable as exc:  # a DNS hiccup: worth a retry
        raise DeliveryError(f"endpoint did not resolve: {exc}", transient=True) from exc
    request = prepared.result()
    headers = {**request.headers, **batch_headers(batch)}
    with closing(request.body), request.body.opened() as body:
        return transport.post(
            url=feed.endpoint_url,
            body=body,
            headers=headers,
            timeout=settings.DELIVERY_TIMEOUT_SECONDS,
            pinned_address=pinned.address,
        )


def batch_headers(batch: Batch) -> dict[str, str]:
    """What a partner needs to file a batch without opening it (not covered by the signature).

    The sequence shows gaps, the kind says whether the batch is a window's,
    late exposures of earlier windows, a streaming micro-batch or a test, and
    ``Gateway-Supersedes`` names the batch an explicit re-build replaces.
    """
    headers = {
        "Gateway-Batch-Sequence": str(batch.sequence),
        "Gateway-Batch-Kind": batch.kind,
        "Gateway-Window-Start": _http_instant(batch.window_start),
        "Gateway-Window-End": _http_instant(batch.window_end),
    }
    # Annotated by batch_send (one query for everything); looked up otherwise.
    if hasattr(batch, "replaced_id"):
        replaced = batch.replaced_id
    else:
        replaced = Batch.objects.filter(superseded_by=batch).values_list("pk", flat=True).first()
    if replaced is not None:
        headers["Gateway-Supersedes"] = str(replaced)
    return headers


def _http_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
        network_error=str(sent.network_error or ""),
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
    countdown = None
    if result.outcome == DeliveryAttempt.Outcome.TRANSIENT_FAILURE:
        countdown = _retry_wait(batch=batch, attempt=attempt, result=result, now=now)
    if result.outcome == DeliveryAttempt.Outcome.SUCCEEDED:
        batch.status = Batch.Status.DELIVERED
        batch.delivered_at = now
        batch.last_error = ""
        fields.append("delivered_at")
    elif result.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE:
        batch.status = Batch.Status.FAILED
        batch.last_error = f"attempt {attempt.number}: {result.error}"
    elif countdown is None:
        batch.status = Batch.Status.FAILED
        budget = retry.attempt_budget(retry_schedule(batch.feed))
        batch.last_error = f"gave up after {budget} attempts; last: {result.error}"
    else:
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
        if countdown is not None:
            on_commit_send(batch.pk, countdown)


def _retry_wait(
    *, batch: Batch, attempt: DeliveryAttempt, result: AttemptResult, now: datetime
) -> float | None:
    """Seconds until the next attempt, or None when the round's attempt budget is spent.

    The feed's schedule (with jitter) decides, unless the partner sent a
    Retry-After, which wins within the configured bounds.
    """
    feed = batch.feed
    scheduled = retry.scheduled_delay(
        attempt=attempt.number - batch.attempt_round_start,
        schedule=retry_schedule(feed),
        jitter_pct=feed.retry_jitter_pct,
    )
    if scheduled is None:
        return None
    asked = health.retry_after_seconds(result.retry_after, now=now)
    return scheduled if asked is None else asked


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

    Only if its status is one of ``statuses`` (checked in the update itself, so
    a concurrent change wins); returns whether it was queued.
    """
    with transaction.atomic():
        updated = Batch.objects.filter(
            pk=batch_id, status__in=statuses, feed__mode__in=PUSHED_MODES
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
    its attempts for the record. Only on explicit request (admin, command):
    nothing supersedes automatically. Returns the new batch, or None when the
    batch is in flight (building or sending) or superseded already.
    """
    now = timezone.now()
    with transaction.atomic():
        old = (
            Batch.objects.select_for_update()
            .filter(pk=batch_id)
            .exclude(status__in=SUPERSEDE_REFUSED)
            .first()
        )
        if old is None:
            return None
        # Numbered under the cursor lock, one at a time with the dispatcher.
        feed_cursor_locked(feed=old.feed)
        # Freed first: the claim constraint admits one live batch per claim.
        Batch.objects.filter(pk=old.pk).update(status=Batch.Status.SUPERSEDED)
        new = Batch.objects.create(
            feed_id=old.feed_id,
            sequence=next_sequence(feed_id=old.feed_id),
            kind=old.kind,
            window_start=old.window_start,
            window_end=old.window_end,
            claim_from=old.claim_from,
            claim_to=old.claim_to,
            queued_at=now,
        )
        Batch.objects.filter(pk=old.pk).update(superseded_by=new, next_attempt_at=None)
        on_commit_build(new.pk)
    return new
