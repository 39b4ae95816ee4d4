"""Streaming feeds: micro-batches cut as exposures arrive, flushed by size or by delay.

Ingest tells this module how many exposures it just committed
(``exposures_arrived``). For each live streaming feed a flush is scheduled
``stream_max_delay_ms`` after the first exposure that is not yet flushed, or
at once when ``stream_max_events`` are waiting. A flush cuts one ``stream``
batch of every commit sequence since the feed's last cut
(``gateway.delivery.claims``), builds it and queues its send: the same
claims, signing, retries and accounting as window batches.

The shared cache (``settings.CACHES``) only deduplicates flush requests; it
holds nothing that matters for correctness. A lost request (cache flushed,
message lost) delays exposures, never loses them: each flush checks whether
more is waiting and schedules the next, and the periodic dispatcher flushes
every streaming feed with anything waiting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from gateway.delivery.build import batch_build
from gateway.delivery.claims import commit_horizon, stream_round
from gateway.delivery.models import Batch, FeedCursor
from gateway.delivery.services import feed_cursor_locked, round_save
from gateway.delivery.shared_store import counter_add
from gateway.ingest.models import Exposure
from partners.models import Feed, Partner

logger = logging.getLogger(__name__)

STREAM_QUEUE = "stream"
# How soon a flush that could not claim everything committed tries again.
FOLLOW_UP_SECONDS = 0.05


def _pending_key(feed_id: int) -> str:
    return f"stream:{feed_id}:pending"


def _scheduled_key(feed_id: int) -> str:
    return f"stream:{feed_id}:scheduled"


def _urgent_key(feed_id: int) -> str:
    return f"stream:{feed_id}:urgent"


@dataclass(frozen=True)
class StreamFeed:
    id: int
    max_events: int
    max_delay_ms: int


def live_stream_feeds() -> list[StreamFeed]:
    rows = Feed.objects.filter(
        mode=Feed.Mode.STREAM, enabled=True, partner__status=Partner.Status.ACTIVE
    ).values_list("pk", "stream_max_events", "stream_max_delay_ms")
    return [StreamFeed(*row) for row in rows]


def exposures_arrived(count: int) -> None:
    """Schedule flushes of the streaming feeds after ``count`` exposures were committed."""
    if count <= 0:
        return
    for feed in live_stream_feeds():
        pending = _pending_add(feed.id, count)
        if pending >= feed.max_events:
            # Size reached: flush now, once, however many requests see it.
            if cache.add(_urgent_key(feed.id), 1, timeout=max(1, feed.max_delay_ms // 1000)):
                _enqueue_flush(feed.id, countdown=0)
        elif cache.add(_scheduled_key(feed.id), 1, timeout=_schedule_ttl(feed.max_delay_ms)):
            _enqueue_flush(feed.id, countdown=feed.max_delay_ms / 1000)


def _schedule_ttl(max_delay_ms: int) -> int:
    # Long enough to cover the countdown, short enough that a lost flush
    # message is followed by a new one soon after.
    return max(2, (max_delay_ms * 4) // 1000)


def _pending_add(feed_id: int, count: int) -> int:
    return counter_add(_pending_key(feed_id), count, timeout=3600)


def _enqueue_flush(feed_id: int, *, countdown: float) -> None:
    # Imported here: the tasks module imports this one.
    from gateway.delivery.tasks import flush_stream

    try:
        flush_stream.apply_async(args=[feed_id], queue=STREAM_QUEUE, countdown=countdown or None)
    except Exception:
        # The exposures are stored; the periodic dispatcher flushes them later.
        logger.exception("could not queue the flush of streaming feed %s", feed_id)
        cache.delete(_scheduled_key(feed_id))


def stream_flush(*, feed_id: int, now: datetime | None = None) -> Batch | None:
    """Cut, build and queue the send of a streaming feed's next micro-batch.

    Returns the batch, or None when nothing new of the feed's campaigns has
    committed (or the feed is not live).
    """
    now = now or timezone.now()
    # Cleared before the cut: an exposure arriving from now on schedules a
    # new flush rather than counting on this one.
    cache.delete_many([_scheduled_key(feed_id), _urgent_key(feed_id), _pending_key(feed_id)])
    feed = (
        Feed.objects.select_related("partner")
        .filter(pk=feed_id, mode=Feed.Mode.STREAM, enabled=True)
        .first()
    )
    if feed is None or not feed.partner.is_active:
        return None
    horizon = commit_horizon()
    try:
        with transaction.atomic():
            cursor = feed_cursor_locked(feed=feed)
            cut = stream_round(feed=feed, cursor=cursor, horizon=horizon, now=now)
            if cut is None:
                return None
            round_save(feed=feed, cursor=cursor, cut=cut)
    except IntegrityError:
        logger.info("streaming feed %s: this range was cut by a concurrent flush", feed_id)
        return None
    _follow_up_if_waiting(feed=feed, horizon=cut.horizon)
    if not cut.batches:
        return None
    (batch,) = cut.batches
    # Built here, not in another task: one queue hop less between ingest and partner.
    return batch_build(batch_id=batch.pk)


def _follow_up_if_waiting(*, feed: Feed, horizon: int) -> None:
    """Schedule another flush when exposures committed beyond what this one could claim.

    A transaction still open at the cut holds the horizon back; what committed
    above it is claimed by the next flush, which this schedules.
    """
    if Exposure.objects.filter(commit_seq__gte=horizon).exists() and cache.add(
        _scheduled_key(feed.pk), 1, timeout=_schedule_ttl(feed.stream_max_delay_ms)
    ):
        # These have waited already: try again as soon as the transaction that
        # held the horizon back is likely to have committed.
        _enqueue_flush(feed.pk, countdown=min(FOLLOW_UP_SECONDS, feed.stream_max_delay_ms / 1000))


def streams_flush_waiting(*, now: datetime) -> int:
    """Flush every live streaming feed that has exposures beyond its cursor; returns batches cut.

    The periodic dispatcher's safety net for flush requests that were lost.
    """
    cut = 0
    horizon = commit_horizon()
    for feed in live_stream_feeds():
        done = FeedCursor.objects.filter(feed_id=feed.id).values_list("horizon", flat=True).first()
        if horizon > (done or 0) and stream_flush(feed_id=feed.id, now=now) is not None:
            cut += 1
    return cut
