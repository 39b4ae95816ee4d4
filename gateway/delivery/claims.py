"""Which exposures each batch holds: exactly once per feed, late arrivals included.

Every exposure row carries ``commit_seq``, the id of the transaction that
wrote it (``gateway.ingest.models``). The *commit horizon* is a sequence below
which every transaction has ended for good: on PostgreSQL the ``xmin`` of a
fresh snapshot (the oldest transaction still running), on SQLite, whose
writers take turns, one past the largest committed row id. No exposure below
the horizon can appear later, so a range of sequences below it is final.

A feed advances in *rounds*, one each time one or more of its windows
(aligned ranges of ``occurred_at``) close. Round k takes horizon H_k and cuts:

- for every newly closed window W, a ``window`` batch holding the exposures
  that occurred in W with commit_seq in [0, H_k);
- if anything arrived since the last round for a window closed earlier, one
  ``late`` batch holding the exposures that occurred before the previous
  frontier with commit_seq in [H_(k-1), H_k).

An exposure that occurred in W (closed in round j) with sequence s is in W's
window batch if s < H_j, else in the late batch of the one round m > j with
H_(m-1) <= s < H_m: exactly one batch, however late it committed. A slow
transaction only holds the horizon back, which makes events late, never lost.

Streaming feeds have no windows: each flush cuts one ``stream`` batch of the
sequences in [previous horizon, current horizon).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet

from gateway.delivery.models import Batch, FeedCursor
from gateway.delivery.windows import Window, closed_windows, window_floor
from gateway.ingest.models import Exposure
from partners.models import Feed
from partners.selectors import campaign_scope_q


def commit_horizon() -> int:
    """A commit sequence below which no exposure can still appear."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        else:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {Exposure._meta.db_table}")
        (horizon,) = cursor.fetchone()
    return int(horizon)


def claimed_exposures(batch: Batch) -> QuerySet[Exposure]:
    """The exposures ``batch`` holds, in a fixed order (a rebuild gives the same bytes)."""
    feed = batch.feed
    occurred = (
        Q(occurred_at__gte=feed.deliver_from)
        if batch.kind == Batch.Kind.STREAM
        else Q(occurred_at__gte=batch.window_start, occurred_at__lt=batch.window_end)
    )
    return (
        Exposure.objects.filter(
            occurred, commit_seq__gte=batch.claim_from, commit_seq__lt=batch.claim_to
        )
        .filter(campaign_scope_q(partner=feed.partner))
        .order_by("occurred_at", "pk")
    )


@dataclass(frozen=True)
class Round:
    """The batches one round of a feed cut (not saved yet) and where its cursor moves."""

    batches: list[Batch]
    horizon: int
    frontier: datetime | None


def window_round(
    *, feed: Feed, cursor: FeedCursor, horizon: int, now: datetime, max_windows: int
) -> Round | None:
    """The next round of a window feed, or None when no window has closed since the last.

    ``cursor`` is the feed's, locked by the caller; ``horizon`` a fresh
    ``commit_horizon()``. Sequence numbers are left for the caller.
    """
    start = cursor.frontier or window_floor(
        feed.deliver_from, length_seconds=feed.batch_window_seconds
    )
    windows = closed_windows(
        start=start,
        length_seconds=feed.batch_window_seconds,
        grace_seconds=feed.grace_seconds,
        now=now,
        limit=max_windows,
    )
    if not windows:
        return None
    # The horizon never moves back, even if a clock or snapshot oddity says so.
    horizon = max(horizon, cursor.horizon)
    batches = []
    if cursor.frontier is not None and horizon > cursor.horizon:
        late = _late_batch(feed=feed, cursor=cursor, horizon=horizon, now=now)
        if late is not None:
            batches.append(late)
    batches += [_window_batch(feed=feed, window=w, horizon=horizon, now=now) for w in windows]
    return Round(batches=batches, horizon=horizon, frontier=windows[-1].end)


def _window_batch(*, feed: Feed, window: Window, horizon: int, now: datetime) -> Batch:
    return Batch(
        feed=feed,
        kind=Batch.Kind.WINDOW,
        window_start=window.start,
        window_end=window.end,
        claim_from=0,
        claim_to=horizon,
        queued_at=now,
    )


def _late_batch(*, feed: Feed, cursor: FeedCursor, horizon: int, now: datetime) -> Batch | None:
    """A batch of what arrived since the last round for windows already closed, if anything did."""
    assert cursor.frontier is not None
    late = Batch(
        feed=feed,
        kind=Batch.Kind.LATE,
        window_start=window_floor(feed.deliver_from, length_seconds=feed.batch_window_seconds),
        window_end=cursor.frontier,
        claim_from=cursor.horizon,
        claim_to=horizon,
        queued_at=now,
    )
    # Cheap thanks to the commit_seq index: the range is one round's arrivals.
    if not claimed_exposures(late).exists():
        return None
    return late


def stream_round(*, feed: Feed, cursor: FeedCursor, horizon: int, now: datetime) -> Round | None:
    """The next micro-batch of a streaming feed, or None when nothing new has committed."""
    if horizon <= cursor.horizon:
        return None
    batch = Batch(
        feed=feed,
        kind=Batch.Kind.STREAM,
        window_start=cursor.updated_at or feed.deliver_from,
        window_end=now,
        claim_from=cursor.horizon,
        claim_to=horizon,
        queued_at=now,
    )
    if not claimed_exposures(batch).exists():
        # Nothing of this feed's campaigns: move the cursor, cut no batch.
        return Round(batches=[], horizon=horizon, frontier=cursor.frontier)
    return Round(batches=[batch], horizon=horizon, frontier=cursor.frontier)
