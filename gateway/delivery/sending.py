"""Sending a push batch: one attempt, from its claim to its outcome.

``batch_send`` claims a ready or due batch with a conditional update (the
attempt row is written in the same transaction, before any traffic) while it
asks the feed's limits and its endpoint's circuit breaker for a permit
(``gateway.delivery.health``) on a send thread; a permit refused undoes the
claim. It then POSTs the body prepared and signed on a thread
(``gateway.delivery.preparation``) to the address the SSRF guard checked, and
writes the outcome: delivered, failed, or a retry on the feed's schedule.
Duplicate task messages and racing workers lose the claim and do nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gateway.delivery import health, retry, statements, transport
from gateway.delivery.circuit import CircuitChange
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.preparation import PreparedRequest, request_prepare
from gateway.delivery.queueing import BatchId, on_commit_send
from gateway.errors import DeliveryError
from partners.endpoints import EndpointRefused, EndpointUnresolvable, resolve_and_check
from partners.models import Feed

logger = logging.getLogger(__name__)

# What the operator can do about a 413, said where they will read it (the batch's last error).
TOO_LARGE_ADVICE = (
    "the endpoint refuses bodies this large: set the feed's max batch events, "
    "then re-build the batch, which delivers it in parts"
)

# What an attempt's outcome writes to its row.
_OUTCOME_FIELDS = (
    "outcome",
    "http_status",
    "response_excerpt",
    "error",
    "duration_ms",
    "finished_at",
)


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
    """``_due_q`` for a batch in hand; the claim then checks the row is still as read."""
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
    batch = statements.batch_for_send(batch_id)
    if batch is None or not batch.feed.pushes:
        return None
    if not (batch.feed.enabled and batch.feed.partner.is_active):
        # Paused partners keep their batches; the sweeper sends them once live again.
        return None
    if not _is_due(batch, now=now):
        return None
    started = _send_start(batch=batch, now=now, task_id=task_id)
    if started is None:
        return None
    attempt, prepared, permit = started
    try:
        result = _attempt_run(batch=batch, attempt=attempt, prepared=prepared)
        finished_at = timezone.now()
        # The shared store learns the outcome (and gets the permit back) on a
        # send thread while PostgreSQL records it: two round trips at once.
        noting = health.outcome_note_start(
            batch=batch, result=result, permit=permit, now=finished_at
        )
        try:
            _attempt_finish(batch=batch, attempt=attempt, result=result, now=finished_at)
        finally:
            change = _outcome_noted(noting, batch=batch, attempt=attempt)
        _attempt_consequences(batch=batch, attempt=attempt, result=result, change=change)
        return attempt
    finally:
        permit.release()  # given back already, unless the send stopped before its outcome


def _send_start(
    *, batch: Batch, now: datetime, task_id: str
) -> tuple[DeliveryAttempt, PreparedRequest | None, health.Permit] | None:
    """Claim the batch, record the attempt and take its permit; None if it is not sent now.

    The permit's round trip to the shared store runs on a send thread while
    PostgreSQL claims the batch and writes the attempt row, and the body and
    its signatures get ready on another: a send waits for one round trip
    before its POST instead of two. When the answer is "not now" (a feed at
    its limits, an open circuit), the claim is undone in one transaction:
    the attempt row is deleted (nothing was sent) and the send queued for
    later, as if never claimed. A feed refused lately is asked first instead
    (``health.send_permit_ask``), and its refusals need no claim undone. A
    claim lost to another worker gives the permit straight back.
    """
    asking = health.send_permit_ask(batch=batch, now=now.timestamp())
    if asking.done():
        answer = asking.result()  # raises as it would have before any claim
        if isinstance(answer, health.Deferral):
            _send_defer(batch=batch, deferral=answer, now=now)
            return None
    claim = _claim(batch, now=now)
    prepared: PreparedRequest | None = None
    attempt: DeliveryAttempt | None = None
    try:
        prepared = (
            None
            if batch.feed.mode == Feed.Mode.FILE
            else request_prepare(batch=batch, timestamp=_webhook_timestamp(now))
        )
        attempt = _attempt_start(
            batch=batch,
            claim=claim,
            now=now,
            task_id=task_id,
            webhook_timestamp=_webhook_timestamp(now) if prepared is None else prepared.timestamp,
        )
        permit = asking.result()
    except BaseException:
        # Nothing was sent: the permit, the claim and the body are all given back.
        health.send_permit_drop(asking)
        if attempt is not None:
            _claim_undo(claim=claim, attempt=attempt, now=now)
        if prepared is not None:
            prepared.close()
        raise
    if attempt is not None and isinstance(permit, health.Permit):
        return attempt, prepared, permit
    if prepared is not None:
        prepared.close()
    if isinstance(permit, health.Permit):
        permit.release()  # another worker claimed the batch meanwhile: its send, not ours
    elif attempt is not None:
        _claim_undo(claim=claim, attempt=attempt, now=now, deferral=permit)
    return None


def _send_defer(*, batch: Batch, deferral: health.Deferral, now: datetime) -> None:
    """Queue the send again after the deferral's wait: not an attempt, no retry budget spent."""
    with transaction.atomic():
        # Conditional on queued_at as we read it: of duplicate messages for the
        # batch, only one queues the next, so duplicates do not live on.
        moved = Batch.objects.filter(_due_q(now), pk=batch.pk, queued_at=batch.queued_at).update(
            **_deferred(deferral, now=now)
        )
        if moved:
            on_commit_send(batch.pk, deferral.wait_seconds)


def _deferred(deferral: health.Deferral, *, now: datetime) -> dict[str, Any]:
    """What a batch whose send waits for ``deferral`` holds: when it is due, and why it waits."""
    later = now + timedelta(seconds=deferral.wait_seconds)
    return {
        "next_attempt_at": later,
        "queued_at": now,
        "last_error": f"waiting until {later:%H:%M:%S} UTC, not attempted: {deferral.reason}",
    }


def _claim_undo(
    *,
    claim: statements.RowUpdate,
    attempt: DeliveryAttempt,
    now: datetime,
    deferral: health.Deferral | None = None,
) -> None:
    """Put a batch back as it was before ``claim``, without the attempt row: nothing was sent.

    With a deferral, the send is queued again after its wait: not an attempt,
    no retry budget spent. Without one (the permit could not be asked for),
    the batch is simply due again, for the sweeper or a redelivered message.
    """
    undo = _claim_reversed(claim)
    if deferral is not None:
        undo = dataclasses.replace(undo, values={**undo.values, **_deferred(deferral, now=now)})
    with transaction.atomic():
        if statements.row_update(undo):
            DeliveryAttempt.objects.filter(pk=attempt.pk).delete()
            if deferral is not None:
                on_commit_send(claim.pk, deferral.wait_seconds)


def _claim(batch: Batch, *, now: datetime) -> statements.RowUpdate:
    """The claim of ``batch`` (found due at ``now``) for one attempt, if the row is as read.

    Then its counts are known after the claim without reading the row again.
    Had another worker attempted or deferred it meanwhile, that worker has it.
    """
    return statements.RowUpdate(
        Batch,
        batch.pk,
        values={
            "status": Batch.Status.SENDING,
            "claimed_at": now,
            "next_attempt_at": None,
            "attempt_count": batch.attempt_count + 1,
        },
        where={
            "status": batch.status,
            "next_attempt_at": batch.next_attempt_at,
            "attempt_count": batch.attempt_count,
            "attempt_round_start": batch.attempt_round_start,
        },
    )


def _claim_reversed(claim: statements.RowUpdate) -> statements.RowUpdate:
    """``claim`` undone: what it wrote put back as it was read, while the row holds what it wrote.

    Conditional on the claim being ours still (it is, but for a sweeper that
    took it for a dead worker's, which then closes it itself). ``claimed_at``,
    which a claim does not read, goes back to None: a due batch is not claimed.
    """
    restored = {name: claim.where[name] for name in claim.values if name in claim.where}
    return statements.RowUpdate(
        Batch, claim.pk, values={**restored, "claimed_at": None}, where=claim.values
    )


def _attempt_start(
    *,
    batch: Batch,
    claim: statements.RowUpdate,
    now: datetime,
    task_id: str,
    webhook_timestamp: int,
) -> DeliveryAttempt | None:
    """Make ``claim`` of ``batch`` and write the attempt row; None if another worker got it.

    Both at once (one statement on PostgreSQL), so one commit: a send's
    bookkeeping is two commits in all (this and the outcome).
    """
    # The attempt row exists before any traffic, so even a worker killed
    # mid-request leaves a trace (the sweeper closes it).
    attempt = statements.row_insert_if_updated(
        claim,
        DeliveryAttempt(
            batch=batch,
            number=batch.attempt_count + 1,
            started_at=now,
            webhook_timestamp=webhook_timestamp,
            task_id=task_id[:64],
        ),
    )
    if attempt is None:
        return None
    for name, value in claim.values.items():
        setattr(batch, name, value)
    return attempt


def _outcome_noted(
    noting: Future[CircuitChange | None], *, batch: Batch, attempt: DeliveryAttempt
) -> CircuitChange | None:
    """The breaker's change from ``health.outcome_note``, once done; a failure there is logged."""
    try:
        return noting.result()
    except Exception:
        logger.exception("batch %s attempt %d: health bookkeeping failed", batch.pk, attempt.number)
        return None


def _attempt_consequences(
    *,
    batch: Batch,
    attempt: DeliveryAttempt,
    result: AttemptResult,
    change: CircuitChange | None,
) -> None:
    """Feed-level consequences of the outcome; the attempt is recorded whatever happens here."""
    assert attempt.finished_at is not None
    try:
        health.outcome_consequences(
            batch=batch, result=result, change=change, now=attempt.finished_at
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
    """POST the prepared batch once; raises DeliveryError when it cannot even be sent.

    However the attempt ends, sent or stopped before the POST, the body
    prepared for it is closed.
    """
    try:
        return _prepared_post(batch=batch, prepared=prepared)
    finally:
        prepared.close()


def _prepared_post(*, batch: Batch, prepared: PreparedRequest) -> transport.TransportResult:
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
    with request.body.opened() as body:
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
    late exposures of earlier windows, a streaming micro-batch or a test,
    ``Gateway-Batch-Part`` says which of how many parts of its claim it is
    (``2/3``; ``1/1`` for most), with ``Gateway-Batch-First-Part`` naming
    part 1's batch on every part of a claim in parts, and ``Gateway-Supersedes`` names the
    batch (the first part, if in parts) an explicit re-build replaces.
    """
    headers = {
        "Gateway-Batch-Sequence": str(batch.sequence),
        "Gateway-Batch-Kind": batch.kind,
        "Gateway-Batch-Part": f"{batch.part}/{batch.part_count}",
        "Gateway-Window-Start": _http_instant(batch.window_start),
        "Gateway-Window-End": _http_instant(batch.window_end),
    }
    first_part_id = batch.claim_first_part_id
    if first_part_id is not None:
        headers["Gateway-Batch-First-Part"] = str(first_part_id)
    # Loaded with the batch by batch_send (statements.batch_for_send, where the
    # rule is: the first part, when the claim replaced was in parts); loaded so otherwise.
    loaded = batch if hasattr(batch, "replaced_id") else statements.batch_for_send(batch.pk)
    replaced = getattr(loaded, "replaced_id", None)
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
        if sent.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
            error += f" ({TOO_LARGE_ADVICE})"
    return AttemptResult(
        outcome=outcome,
        error=error,
        http_status=sent.status,
        response_excerpt=sent.response_excerpt,
        duration_ms=sent.duration_ms,
        retry_after=sent.retry_after if outcome == Outcome.TRANSIENT_FAILURE else None,
        network_error=str(sent.network_error or ""),
    )


def _attempt_finish(
    *, batch: Batch, attempt: DeliveryAttempt, result: AttemptResult, now: datetime
) -> None:
    """Write the attempt's outcome, which ended at ``now``, and move the batch to its next state."""
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
    statements.rows_update(
        statements.RowUpdate(
            DeliveryAttempt,
            attempt.pk,
            values={name: getattr(attempt, name) for name in _OUTCOME_FIELDS},
        ),
        statements.RowUpdate(
            Batch, batch.pk, values={name: getattr(batch, name) for name in fields}
        ),
    )
    if countdown is not None:
        # After the commit, when inside a caller's transaction.
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
