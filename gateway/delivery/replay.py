"""Operator repairs of delivery: replay, re-build, retry dead batches, test deliveries.

- **Replay** sends a batch again as new attempts of the *same* batch: same id,
  so the same ``webhook-id`` and the partner can drop what it already has;
  attempts continue their numbering with a fresh retry budget
  (``services.batch_send_again``). For delivered, failed and retry-scheduled batches
  of feeds we deliver ourselves (push, stream, file).
- **Re-build** builds a batch's exposures again under today's configuration as
  a *new* batch (``services.batch_supersede``); only on explicit request.
- **Dead batches** are failed ones (retries exhausted or a permanent error);
  they can be retried in bulk.
- **Test deliveries** send one clearly synthetic record through the normal
  send path (signed, retried and logged like any batch).

Each per-batch operation is its own short transaction with a conditional
``UPDATE ... WHERE status IN (...)``: a bulk run of thousands of batches
commits as it goes (their sends start at once), and a batch that changed
meanwhile is skipped and reported, never overwritten. The admin actions and
the management commands are thin layers over the functions here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from gateway.delivery.body import BodyWriter
from gateway.delivery.models import CLAIM_ID, Batch, FeedNotice
from gateway.delivery.queueing import on_commit_send
from gateway.delivery.services import (
    PUSHED_MODES,
    batch_retry,
    batch_send_again,
    batch_supersede,
    feed_cursor_locked,
    next_sequence,
)
from gateway.delivery.storage import body_name, body_save
from gateway.errors import GatewayError
from partners.models import Feed

# Statuses a replay may start from: the batch was sent (or tried) and is at rest.
REPLAYABLE = (Batch.Status.DELIVERED, Batch.Status.FAILED, Batch.Status.RETRY_SCHEDULED)

# Called after each batch of a bulk run with (batches handled, batches in the run).
Progress = Callable[[int, int], None]


class SkipReason(StrEnum):
    """Why a bulk operation left a batch alone; the value is what operators read."""

    NOT_FOUND = "no such batch"
    PULL_FEED = "pull feed: the partner downloads its batches, there is nothing to send again"
    NOT_BUILT = "not built yet (pending): it will be built and sent under today's configuration"
    IN_FLIGHT = "in flight (building or sending): try again once it has finished"
    QUEUED = "already waiting to be sent (ready)"
    EMPTY = "empty: there is nothing to send"
    SUPERSEDED = "superseded: use the batch that replaced it"
    TEST = "a test delivery: send a new one instead"
    NOT_DEAD = "not dead (only failed batches are retried)"
    CHANGED = "its status changed meanwhile"
    SAME_CLAIM = "a part of a claim re-built once, with the first of its parts selected"
    BODY_EXPIRED = "its body was deleted under the retention policy: re-build its window instead"


class SelectBy(StrEnum):
    """How a time range selects a feed's batches."""

    # Window and stream batches by window_start; late batches by created_at,
    # since their "window" is everything before the feed's frontier.
    WINDOW = "window"
    CREATED = "created"


@dataclass(frozen=True)
class BatchOutcome:
    """What one operation did to one batch: done, or skipped with a reason."""

    batch_id: uuid.UUID
    skipped: SkipReason | None = None
    # Re-build only: the batch that supersedes this one.
    new_batch_id: uuid.UUID | None = None

    @property
    def done(self) -> bool:
        return self.skipped is None


@dataclass
class BulkReport:
    """The outcome of a bulk run: batches done, and those skipped grouped by reason."""

    dry_run: bool = False
    done: list[uuid.UUID] = field(default_factory=list)
    skipped: dict[SkipReason, list[uuid.UUID]] = field(default_factory=dict)
    # Re-build only: old batch id -> new batch id.
    replaced_by: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    def add(self, outcome: BatchOutcome) -> None:
        if outcome.skipped is not None:
            self.skipped.setdefault(outcome.skipped, []).append(outcome.batch_id)
            return
        self.done.append(outcome.batch_id)
        if outcome.new_batch_id is not None:
            self.replaced_by[outcome.batch_id] = outcome.new_batch_id

    @property
    def skipped_count(self) -> int:
        return sum(len(ids) for ids in self.skipped.values())

    @property
    def total(self) -> int:
        return len(self.done) + self.skipped_count


# --- Selection ----------------------------------------------------------------------


def feed_by_path(path: str) -> Feed | None:
    """The feed named ``partner-slug/feed-name``, or None."""
    slug, _, name = path.partition("/")
    return Feed.objects.select_related("partner").filter(partner__slug=slug, name=name).first()


def feed_batches(
    *, feed: Feed, since: datetime, until: datetime, by: SelectBy = SelectBy.WINDOW
) -> QuerySet[Batch]:
    """The feed's batches in [since, until), oldest first.

    Superseded batches are history (their successors are selected instead) and
    test deliveries are not data, so neither is part of a time range.
    """
    created = Q(created_at__gte=since, created_at__lt=until)
    if by == SelectBy.CREATED:
        in_range = created
    else:
        late = Q(kind=Batch.Kind.LATE)
        windowed = Q(window_start__gte=since, window_start__lt=until)
        in_range = (windowed & ~late) | (created & late)
    return (
        Batch.objects.filter(in_range, feed=feed)
        .exclude(status=Batch.Status.SUPERSEDED)
        .exclude(kind=Batch.Kind.TEST)
        .order_by("sequence")
    )


def dead_q() -> Q:
    """Dead batches: failed (retries exhausted or a permanent error) on feeds we deliver."""
    return Q(status=Batch.Status.FAILED, feed__mode__in=PUSHED_MODES)


def dead_batches(*, feed: Feed | None = None) -> QuerySet[Batch]:
    """The dead batches (``dead_q``), of one feed or of all, oldest first."""
    batches = Batch.objects.filter(dead_q())
    if feed is not None:
        batches = batches.filter(feed=feed)
    return batches.order_by("sequence")


def batch_ids(batches: QuerySet[Batch]) -> list[uuid.UUID]:
    """The ids of a selection, read once: a bulk run works on a fixed list."""
    return list(batches.values_list("pk", flat=True))


# --- Per-batch operations -----------------------------------------------------------


@dataclass(frozen=True)
class _BatchState:
    """What the per-batch operations decide on, read without the batch's heavy fields."""

    status: str
    kind: str
    mode: str
    body_expired: bool


def _batch_state(batch_id: uuid.UUID) -> _BatchState | None:
    row = (
        Batch.objects.filter(pk=batch_id)
        .values_list("status", "kind", "feed__mode", "body_expired_at")
        .first()
    )
    if row is None:
        return None
    status, kind, mode, expired_at = row
    return _BatchState(status=status, kind=kind, mode=mode, body_expired=expired_at is not None)


def _replay_refusal(state: _BatchState) -> SkipReason | None:
    if state.mode not in PUSHED_MODES:
        return SkipReason.PULL_FEED
    if state.body_expired:
        return SkipReason.BODY_EXPIRED
    return {
        Batch.Status.PENDING: SkipReason.NOT_BUILT,
        Batch.Status.BUILDING: SkipReason.IN_FLIGHT,
        Batch.Status.SENDING: SkipReason.IN_FLIGHT,
        Batch.Status.READY: SkipReason.QUEUED,
        Batch.Status.EMPTY: SkipReason.EMPTY,
        Batch.Status.SUPERSEDED: SkipReason.SUPERSEDED,
    }.get(Batch.Status(state.status))


def batch_replay(*, batch_id: uuid.UUID, dry_run: bool = False) -> BatchOutcome:
    """Send a delivered, failed or retry-scheduled batch again, as new attempts of itself.

    Same id, so the partner sees the same ``webhook-id`` and can drop a
    duplicate; the attempt budget starts afresh (``attempt_round_start``).
    """
    state = _batch_state(batch_id)
    if state is None:
        return BatchOutcome(batch_id, SkipReason.NOT_FOUND)
    refusal = _replay_refusal(state)
    if refusal is not None or dry_run:
        return BatchOutcome(batch_id, refusal)
    queued = batch_send_again(batch_id=batch_id, statuses=REPLAYABLE)
    return BatchOutcome(batch_id, None if queued else SkipReason.CHANGED)


def _rebuild_refusal(status: str, kind: str) -> SkipReason | None:
    if kind == Batch.Kind.TEST:
        # A test batch claims no exposures: re-building it would make an empty batch.
        return SkipReason.TEST
    return {
        Batch.Status.PENDING: SkipReason.NOT_BUILT,
        Batch.Status.BUILDING: SkipReason.IN_FLIGHT,
        Batch.Status.SENDING: SkipReason.IN_FLIGHT,
        Batch.Status.SUPERSEDED: SkipReason.SUPERSEDED,
    }.get(Batch.Status(status))


def batch_rebuild(*, batch_id: uuid.UUID, dry_run: bool = False) -> BatchOutcome:
    """Supersede a batch by a new one built under today's configuration (new id, new sequence)."""
    state = _batch_state(batch_id)
    if state is None:
        return BatchOutcome(batch_id, SkipReason.NOT_FOUND)
    refusal = _rebuild_refusal(state.status, state.kind)
    if refusal is not None or dry_run:
        return BatchOutcome(batch_id, refusal)
    new = batch_supersede(batch_id=batch_id)
    if new is None:
        return BatchOutcome(batch_id, SkipReason.CHANGED)
    return BatchOutcome(batch_id, new_batch_id=new.pk)


def batch_retry_dead(*, batch_id: uuid.UUID, dry_run: bool = False) -> BatchOutcome:
    """Retry a failed batch now with a fresh attempt budget (``services.batch_retry``)."""
    state = _batch_state(batch_id)
    if state is None:
        return BatchOutcome(batch_id, SkipReason.NOT_FOUND)
    if state.mode not in PUSHED_MODES:
        return BatchOutcome(batch_id, SkipReason.PULL_FEED)
    if state.status != Batch.Status.FAILED:
        return BatchOutcome(batch_id, SkipReason.NOT_DEAD)
    if state.body_expired:
        return BatchOutcome(batch_id, SkipReason.BODY_EXPIRED)
    if dry_run:
        return BatchOutcome(batch_id)
    return BatchOutcome(batch_id, None if batch_retry(batch_id=batch_id) else SkipReason.CHANGED)


# --- Bulk runs ----------------------------------------------------------------------


Operation = Callable[..., BatchOutcome]


def _bulk(
    operation: Operation,
    ids: Sequence[uuid.UUID],
    *,
    dry_run: bool,
    progress: Progress | None,
) -> BulkReport:
    report = BulkReport(dry_run=dry_run)
    for handled, batch_id in enumerate(ids, start=1):
        report.add(operation(batch_id=batch_id, dry_run=dry_run))
        if progress is not None:
            progress(handled, len(ids))
    return report


def batches_replay(
    *, ids: Sequence[uuid.UUID], dry_run: bool = False, progress: Progress | None = None
) -> BulkReport:
    """Replay each batch of ``ids`` (``batch_replay``); a dry run only says what would happen."""
    return _bulk(batch_replay, ids, dry_run=dry_run, progress=progress)


def batches_rebuild(
    *, ids: Sequence[uuid.UUID], dry_run: bool = False, progress: Progress | None = None
) -> BulkReport:
    """Re-build each batch of ``ids`` as a new batch (``batch_rebuild``), in the order given.

    Give them oldest first: the new batches get their sequence numbers in that order.
    A claim delivered in parts is re-built whole, once: of its parts among
    ``ids``, the first given is re-built and the others are skipped (SAME_CLAIM).
    """
    claims = _claims_of(ids)
    seen: set[uuid.UUID] = set()

    def rebuild_once(*, batch_id: uuid.UUID, dry_run: bool) -> BatchOutcome:
        claim = claims.get(batch_id, batch_id)
        if claim in seen:
            return BatchOutcome(batch_id, SkipReason.SAME_CLAIM)
        seen.add(claim)
        return batch_rebuild(batch_id=batch_id, dry_run=dry_run)

    return _bulk(rebuild_once, ids, dry_run=dry_run, progress=progress)


def _claims_of(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The claim (``Batch.claim_id``: part 1's id) of each batch of ``ids``."""
    claims = Batch.objects.filter(pk__in=ids).annotate(claim=CLAIM_ID)
    return dict(claims.values_list("pk", "claim"))


def batches_retry_dead(
    *, ids: Sequence[uuid.UUID], dry_run: bool = False, progress: Progress | None = None
) -> BulkReport:
    """Retry each failed batch of ``ids`` (``batch_retry_dead``)."""
    return _bulk(batch_retry_dead, ids, dry_run=dry_run, progress=progress)


# --- Test deliveries ----------------------------------------------------------------

TEST_NOTE = (
    "Synthetic test delivery from the Measurement Gateway. "
    "It holds no exposure data: do not count it."
)


class TestDeliveryRefused(GatewayError):
    """A test delivery cannot be sent to this feed; the detail says why."""

    __test__ = False  # not a pytest test class, whatever its name says
    status = 409
    code = "test_delivery_refused"
    title = "Test delivery refused"


def synthetic_record(*, batch_id: uuid.UUID, now: datetime) -> dict[str, object]:
    """The one record of a test batch: marked as a test in every way a partner might look."""
    return {
        "event_id": f"test-{batch_id}",
        "event_type": "test",
        "test": True,
        "occurred_at": now.isoformat(),
        "note": TEST_NOTE,
    }


def _test_delivery_refusal(feed: Feed) -> str | None:
    if not feed.pushes:
        return "pull feed: the partner downloads batches itself, nothing is sent to it"
    if not (feed.enabled and feed.partner.is_active):
        # batch_send leaves batches of paused feeds alone, so the test would wait.
        return "the feed is disabled or its partner not active: nothing would be sent"
    if feed.format != Feed.Format.NDJSON:
        return f"test deliveries are NDJSON; this feed expects {feed.get_format_display()}"
    return None


def feed_test_delivery(*, feed: Feed, now: datetime | None = None) -> Batch:
    """Create a ready test batch of one synthetic record and queue its send.

    The batch takes the feed's next sequence number but claims no exposures
    (claim range 0..0, an empty window at ``now``), so dispatch, late batches
    and reconciliation are untouched. Raises TestDeliveryRefused for feeds
    that cannot receive one.
    """
    refusal = _test_delivery_refusal(feed)
    if refusal is not None:
        raise TestDeliveryRefused(refusal)
    now = now or timezone.now()
    batch_id = uuid.uuid4()
    writer = BodyWriter()
    writer.write(synthetic_record(batch_id=batch_id, now=now))
    body = writer.finish()
    try:
        # Stored before the row exists; a failed insert leaves an orphan
        # file under a fresh id, which nothing ever reads.
        body_path = body_save(name=body_name(feed_id=feed.pk, batch_id=batch_id), content=body.file)
    finally:
        body.close()
    try:
        with transaction.atomic():
            # The cursor lock numbers this batch one at a time with the dispatcher.
            feed_cursor_locked(feed=feed)
            batch = Batch.objects.create(
                id=batch_id,
                feed=feed,
                sequence=next_sequence(feed_id=feed.pk),
                kind=Batch.Kind.TEST,
                window_start=now,
                window_end=now,
                claim_from=0,
                claim_to=0,
                status=Batch.Status.READY,
                built_at=now,
                queued_at=now,
                delivered_count=body.records,
                body_path=body_path,
                body_sha256=body.sha256,
                body_bytes=body.uncompressed_bytes,
            )
            on_commit_send(batch.pk)
    except IntegrityError as exc:
        # A re-build (which numbers without the cursor lock) took the same sequence.
        raise TestDeliveryRefused(
            "another batch was numbered at the same moment; try again"
        ) from exc
    return batch


# --- Notices ------------------------------------------------------------------------


def notices_acknowledge(*, notices: QuerySet[FeedNotice]) -> int:
    """Mark notices as seen by an operator; returns how many were still open."""
    return notices.filter(acknowledged_at__isnull=True).update(acknowledged_at=timezone.now())
