"""Batch sequence numbers: 1, 2, 3... per feed, handed out under the feed's cursor lock."""

from __future__ import annotations

from django.db.models import Max

from gateway.delivery.models import Batch, FeedCursor
from partners.models import Feed


def feed_cursor_locked(*, feed: Feed) -> FeedCursor:
    """The feed's cursor row, created on first use and locked until the transaction ends."""
    FeedCursor.objects.get_or_create(feed=feed)
    return FeedCursor.objects.select_for_update().get(feed=feed)


def next_sequence(*, feed_id: int) -> int:
    """The feed's next batch sequence number; call it holding the feed's cursor lock."""
    last = Batch.objects.filter(feed_id=feed_id).aggregate(last=Max("sequence"))["last"]
    return (last or 0) + 1


def batches_create_numbered(*, feed_id: int, batches: list[Batch]) -> None:
    """Give ``batches`` the feed's next sequence numbers, in order, and store them.

    Call it holding the feed's cursor lock.
    """
    first = next_sequence(feed_id=feed_id)
    for offset, batch in enumerate(batches):
        batch.sequence = first + offset
    Batch.objects.bulk_create(batches)
