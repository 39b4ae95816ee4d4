"""How each feed is doing, read from the database: shared by the Feed admin and ``/metrics``.

Every function takes a set of feeds and answers for all of them with one
grouped query, so a changelist page or a Prometheus scrape costs a fixed
number of queries however many feeds there are.

Definitions (docs/operations.md explains them to operators):

- *last success*: the newest successful attempt (push, stream, file) or the
  newest first download (pull).
- *failure streak*: failed attempts since the last success, and when the
  first of them started.
- *backlog*: batches waiting for us (pending, ready, retry scheduled) or, for
  pull feeds, ready and never downloaded; their events are the rows of the
  built ones (a pending batch has not been counted yet).
- *latency*: from the end of a batch's window (window batches) or its creation
  (late and stream batches) to its first successful attempt (or first
  download), over batches delivered in the last ``METRICS_LATENCY_WINDOW_HOURS``.
  The first success, not ``delivered_at``: a replay sets ``delivered_at``
  again, and an old batch sent again is not a slow delivery.

Test deliveries count as batches and attempts (they are real requests to the
partner) but not as events, backlog or latency, which describe exposure data.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce

from gateway.delivery.circuit import CircuitSnapshot, circuit_snapshot
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from gateway.delivery.services import PUSHED_MODES
from partners.models import Feed

logger = logging.getLogger(__name__)

FAILED_OUTCOMES = (
    DeliveryAttempt.Outcome.TRANSIENT_FAILURE,
    DeliveryAttempt.Outcome.PERMANENT_FAILURE,
)
# Outcomes whose counts only ever grow (an attempt in progress becomes one of them).
FINISHED_OUTCOMES = (DeliveryAttempt.Outcome.SUCCEEDED, *FAILED_OUTCOMES)
BACKLOG_STATUSES = (Batch.Status.PENDING, Batch.Status.READY, Batch.Status.RETRY_SCHEDULED)

FeedIds = Collection[int] | None  # None: every feed


@dataclass(frozen=True)
class Latency:
    """Delivery latency quantiles over a recent window; None when nothing was delivered."""

    p50: timedelta | None = None
    p95: timedelta | None = None
    samples: int = 0


@dataclass(frozen=True)
class FeedHealth:
    """One feed's health at ``at``."""

    feed_id: int
    at: datetime
    last_success_at: datetime | None
    failed_attempts: int
    failing_since: datetime | None
    # None when the feed has no endpoint of its own (pull feeds, file drops).
    circuit: CircuitSnapshot | None
    backlog_batches: int
    backlog_events: int
    latency: Latency
    open_notices: int

    @property
    def since_last_success(self) -> timedelta | None:
        return None if self.last_success_at is None else self.at - self.last_success_at

    @property
    def failing_for(self) -> timedelta | None:
        return None if self.failing_since is None else self.at - self.failing_since


def feeds_health(*, feeds: Sequence[Feed], at: datetime) -> dict[int, FeedHealth]:
    """The health of each of ``feeds`` (partner loaded or not), by feed id."""
    ids = [feed.pk for feed in feeds]
    if not ids:
        return {}
    last = last_successes(feed_ids=ids)
    streaks = failure_streaks(feed_ids=ids, last_successes=last)
    backlogs = feed_backlogs(feed_ids=ids)
    latencies = feed_latencies(feed_ids=ids, since=at - latency_window())
    notices = open_notice_counts(feed_ids=ids)
    return {
        feed.pk: FeedHealth(
            feed_id=feed.pk,
            at=at,
            last_success_at=last.get(feed.pk),
            failed_attempts=streaks.get(feed.pk, (0, None))[0],
            failing_since=streaks.get(feed.pk, (0, None))[1],
            circuit=feed_circuit(feed),
            backlog_batches=backlogs.get(feed.pk, (0, 0))[0],
            backlog_events=backlogs.get(feed.pk, (0, 0))[1],
            latency=latencies.get(feed.pk, Latency()),
            open_notices=notices.get(feed.pk, 0),
        )
        for feed in feeds
    }


def latency_window() -> timedelta:
    return timedelta(hours=settings.METRICS_LATENCY_WINDOW_HOURS)


def _in_feeds(feed_ids: FeedIds, lookup: str = "feed_id") -> Q:
    return Q() if feed_ids is None else Q(**{f"{lookup}__in": feed_ids})


# --- Success and failure ------------------------------------------------------------


def last_successes(*, feed_ids: FeedIds) -> dict[int, datetime]:
    """The newest successful attempt (or first download, pull feeds) per feed."""
    pushed = (
        DeliveryAttempt.objects.filter(
            _in_feeds(feed_ids, "batch__feed_id"), outcome=DeliveryAttempt.Outcome.SUCCEEDED
        )
        .values_list("batch__feed_id")
        .annotate(last=Max("finished_at"))
        .order_by()
    )
    pulled = (
        Batch.objects.filter(_in_feeds(feed_ids), first_downloaded_at__isnull=False)
        .values_list("feed_id")
        .annotate(last=Max("first_downloaded_at"))
        .order_by()
    )
    last: dict[int, datetime] = {}
    for feed_id, at in [*pushed, *pulled]:
        if at is not None and (feed_id not in last or at > last[feed_id]):
            last[feed_id] = at
    return last


def failure_streaks(
    *, feed_ids: Iterable[int], last_successes: dict[int, datetime]
) -> dict[int, tuple[int, datetime]]:
    """Failed attempts since each feed's last success: (how many, when the first started)."""
    ids = list(feed_ids)
    # One condition per feed that ever succeeded; the others count every failure.
    since_success = Q(batch__feed_id__in=[i for i in ids if i not in last_successes])
    for feed_id, at in last_successes.items():
        if feed_id in ids:
            since_success |= Q(batch__feed_id=feed_id, started_at__gt=at)
    rows = (
        DeliveryAttempt.objects.filter(since_success, outcome__in=FAILED_OUTCOMES)
        .values_list("batch__feed_id")
        .annotate(n=Count("pk"), first=Min("started_at"))
        .order_by()
    )
    return {feed_id: (n, first) for feed_id, n, first in rows}


# --- Backlog ------------------------------------------------------------------------


def backlog_q() -> Q:
    """Batches waiting: for us to build or send them, or (pull feeds) for their first download."""
    waiting_for_us = Q(status__in=[Batch.Status.PENDING, Batch.Status.RETRY_SCHEDULED]) | Q(
        status=Batch.Status.READY, feed__mode__in=PUSHED_MODES
    )
    waiting_for_partner = Q(
        status=Batch.Status.READY, first_downloaded_at__isnull=True, feed__mode=Feed.Mode.PULL
    )
    return waiting_for_us | waiting_for_partner


def feed_backlogs(*, feed_ids: FeedIds) -> dict[int, tuple[int, int]]:
    """(batches, events) waiting per feed."""
    rows = (
        Batch.objects.filter(backlog_q(), _in_feeds(feed_ids))
        .exclude(kind=Batch.Kind.TEST)
        .values_list("feed_id")
        .annotate(batches=Count("pk"), events=Coalesce(Sum("delivered_count"), 0))
        .order_by()
    )
    return {feed_id: (batches, events) for feed_id, batches, events in rows}


def open_notice_counts(*, feed_ids: FeedIds) -> dict[int, int]:
    rows = (
        FeedNotice.objects.filter(_in_feeds(feed_ids), acknowledged_at__isnull=True)
        .values_list("feed_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return dict(rows)


# --- Latency ------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``.

    The continuous (interpolated) quantile; ``percentile_cont`` below is the
    same computation in Python for databases without it.
    """

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: str, *, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction {fraction} is not between 0 and 1")
        # A float literal in the SQL text: no user input ever reaches it.
        super().__init__(
            expression, fraction=repr(float(fraction)), output_field=DurationField(), **extra
        )


def percentile_cont(values: Sequence[timedelta], fraction: float) -> timedelta | None:
    """The ``fraction`` quantile of sorted ``values``, interpolated like ``percentile_cont``."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    below, above = math.floor(position), math.ceil(position)
    return values[below] + (values[above] - values[below]) * (position - below)


def delivered_latencies(*, feed_ids: FeedIds, since: datetime) -> QuerySet[Batch]:
    """Batches delivered (or first downloaded) since ``since``, annotated with ``latency``."""
    first_success = DeliveryAttempt.objects.filter(
        batch=OuterRef("pk"), outcome=DeliveryAttempt.Outcome.SUCCEEDED
    ).order_by("number")
    delivered = Coalesce(
        Subquery(first_success.values("finished_at")[:1]),
        F("delivered_at"),
        F("first_downloaded_at"),
    )
    # Late and stream batches have no window of their own to be late against.
    reference = Case(When(kind=Batch.Kind.WINDOW, then=F("window_end")), default=F("created_at"))
    return (
        Batch.objects.filter(
            Q(delivered_at__gte=since) | Q(first_downloaded_at__gte=since), _in_feeds(feed_ids)
        )
        .exclude(kind=Batch.Kind.TEST)
        .annotate(latency=ExpressionWrapper(delivered - reference, output_field=DurationField()))
    )


def percentiles_in_sql() -> bool:
    """Whether the database computes quantiles itself (PostgreSQL) or Python must."""
    return connection.vendor == "postgresql"


def feed_latencies(*, feed_ids: FeedIds, since: datetime) -> dict[int, Latency]:
    """p50 and p95 delivery latency per feed over batches delivered since ``since``."""
    batches = delivered_latencies(feed_ids=feed_ids, since=since)
    if percentiles_in_sql():
        rows = (
            batches.values_list("feed_id")
            .annotate(
                p50=PercentileCont("latency", fraction=0.5),
                p95=PercentileCont("latency", fraction=0.95),
                n=Count("pk"),
            )
            .order_by()
        )
        return {feed_id: Latency(p50=p50, p95=p95, samples=n) for feed_id, p50, p95, n in rows}
    by_feed: dict[int, list[timedelta]] = defaultdict(list)
    # latency: annotated above (the stubs' plugin cannot follow it here).
    latencies = batches.values_list("feed_id", "latency")  # type: ignore[misc]
    for feed_id, latency in latencies.iterator():
        by_feed[feed_id].append(latency)
    return {
        feed_id: Latency(
            p50=percentile_cont(sorted(values), 0.5),
            p95=percentile_cont(sorted(values), 0.95),
            samples=len(values),
        )
        for feed_id, values in by_feed.items()
    }


# --- Circuit ------------------------------------------------------------------------


def feed_circuit(feed: Feed) -> CircuitSnapshot | None:
    """The circuit breaker of the feed's endpoint; None for feeds without one (or unknown)."""
    if not feed.endpoint_url or feed.mode not in PUSHED_MODES:
        return None
    try:
        return circuit_snapshot(endpoint_url=feed.endpoint_url)
    except Exception:
        # The breakers live in the shared cache. When it is unreachable the
        # admin page and the scrape still show everything the database knows.
        logger.warning("circuit of feed %s unreadable", feed.pk, exc_info=True)
        return None


# --- Counts for /metrics ------------------------------------------------------------


def batch_status_counts(*, feed_ids: FeedIds = None) -> dict[int, dict[str, int]]:
    """Batches per feed and status (test deliveries included)."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        Batch.objects.filter(_in_feeds(feed_ids))
        .values_list("feed_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for feed_id, status, n in rows:
        counts[feed_id][status] = n
    return dict(counts)


def attempt_outcome_counts(*, feed_ids: FeedIds = None) -> dict[int, dict[str, int]]:
    """Finished attempts per feed and outcome (test deliveries included)."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        DeliveryAttempt.objects.filter(
            _in_feeds(feed_ids, "batch__feed_id"), outcome__in=FINISHED_OUTCOMES
        )
        .values_list("batch__feed_id", "outcome")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for feed_id, outcome, n in rows:
        counts[feed_id][outcome] = n
    return dict(counts)


def events_delivered(*, feed_ids: FeedIds = None) -> dict[int, int]:
    """Rows of every batch that reached its partner at least once, per feed.

    ``delivered_at`` and ``first_downloaded_at`` are never cleared (a replay or
    a re-build keeps them), so the sums only grow, as a counter must.
    """
    rows = (
        Batch.objects.filter(
            Q(delivered_at__isnull=False) | Q(first_downloaded_at__isnull=False),
            _in_feeds(feed_ids),
        )
        .exclude(kind=Batch.Kind.TEST)
        .values_list("feed_id")
        .annotate(events=Coalesce(Sum("delivered_count"), 0))
        .order_by()
    )
    return dict(rows)


def feed_recent_batches(*, feed: Feed, limit: int = 10) -> QuerySet[Batch]:
    """The feed's newest batches, without their heavy fields, for the feed's admin page."""
    return (
        Batch.objects.filter(feed=feed)
        .only(
            "id",
            "feed_id",
            "sequence",
            "kind",
            "status",
            "window_start",
            "window_end",
            "attempt_count",
            "delivered_count",
            "delivered_at",
            "last_error",
        )
        .order_by("-sequence")[:limit]
    )
