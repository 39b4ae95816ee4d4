"""Feed health (gateway.delivery.health_selectors) and the admin pages that show it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from gateway.delivery import health_selectors
from gateway.delivery.circuit import CircuitSnapshot
from gateway.delivery.health_selectors import feeds_health, percentile_cont
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from partners.models import Feed, Partner
from tests.delivery.builders import WINDOW_START, make_batch
from tests.factories import make_feed, make_partner

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_shared_store")]

Outcome = DeliveryAttempt.Outcome
Status = Batch.Status
RECORDS = [{"event_id": "evt-1"}]


@pytest.fixture
def partner(db: None) -> Partner:
    return make_partner(slug="nielsen")


@pytest.fixture
def feed(partner: Partner) -> Feed:
    return make_feed(partner=partner, name="exposures")


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("ops", "ops@example.com", "pw-ops-1")
    client = Client()
    client.force_login(user)
    return client


class Feeds:
    """Makes batches and attempts of one feed, numbering them."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.sequence = 0

    def batch(self, **fields) -> Batch:
        self.sequence += 1
        fields.setdefault("window_start", WINDOW_START + timedelta(minutes=self.sequence))
        return make_batch(feed=self.feed, sequence=self.sequence, **fields)

    def delivered(self, *, window_end: datetime, after: timedelta, **fields) -> Batch:
        """A window batch whose first attempt succeeded ``after`` its window ended."""
        batch = self.batch(
            window_start=window_end - timedelta(minutes=1),
            window_end=window_end,
            status=Status.DELIVERED,
            delivered_at=window_end + after,
            attempt_count=1,
            **fields,
        )
        attempt(batch, 1, Outcome.SUCCEEDED, at=window_end + after)
        return batch


def attempt(batch: Batch, number: int, outcome: str, *, at: datetime) -> DeliveryAttempt:
    return DeliveryAttempt.objects.create(
        batch=batch,
        number=number,
        started_at=at,
        finished_at=at,
        outcome=outcome,
        webhook_timestamp=int(at.timestamp()),
    )


def health_of(feed: Feed, now: datetime | None = None):
    return feeds_health(feeds=[feed], at=now or timezone.now())[feed.pk]


# --- Latency --------------------------------------------------------------------------


@pytest.fixture
def five_latencies(feed: Feed) -> Feeds:
    """Five batches delivered an hour ago, 10, 20, 30, 40 and 50 s after their windows ended."""
    feeds = Feeds(feed)
    hour_ago = timezone.now() - timedelta(hours=1)
    for n, seconds in enumerate((30, 10, 50, 20, 40)):
        feeds.delivered(
            window_end=hour_ago - timedelta(minutes=n), after=timedelta(seconds=seconds)
        )
    return feeds


@pytest.mark.parametrize("in_sql", [True, False], ids=["sql", "python"])
def test_latency_quantiles_are_interpolated_like_percentile_cont(
    feed: Feed, five_latencies: Feeds, monkeypatch: pytest.MonkeyPatch, in_sql: bool
):
    monkeypatch.setattr(health_selectors, "percentiles_in_sql", lambda: in_sql)

    latency = health_of(feed).latency

    assert latency.samples == 5
    assert latency.p50 == timedelta(seconds=30)
    # 0.95 * (5 - 1) = 3.8: 80 % of the way from 40 s to 50 s.
    assert latency.p95 == timedelta(seconds=48)


def test_latency_leaves_out_old_deliveries_and_test_batches(
    feed: Feed, five_latencies: Feeds, settings
):
    settings.METRICS_LATENCY_WINDOW_HOURS = 24
    five_latencies.delivered(
        window_end=timezone.now() - timedelta(days=3), after=timedelta(hours=5)
    )
    five_latencies.delivered(
        window_end=timezone.now() - timedelta(hours=2),
        after=timedelta(hours=1),
        kind=Batch.Kind.TEST,
    )

    assert health_of(feed).latency.samples == 5


def test_a_replayed_batch_keeps_the_latency_of_its_first_success(feed: Feed):
    feeds = Feeds(feed)
    ended = timezone.now() - timedelta(days=2)
    batch = feeds.delivered(window_end=ended, after=timedelta(seconds=12))
    # Replayed today: delivered_at moves, the first success does not.
    attempt(batch, 2, Outcome.SUCCEEDED, at=timezone.now() - timedelta(minutes=1))
    Batch.objects.filter(pk=batch.pk).update(delivered_at=timezone.now() - timedelta(minutes=1))

    latency = health_of(feed).latency

    assert (latency.samples, latency.p50) == (1, timedelta(seconds=12))


def test_a_feed_without_deliveries_has_no_latency(feed: Feed):
    latency = health_of(feed).latency

    assert (latency.p50, latency.p95, latency.samples) == (None, None, 0)


def test_percentile_cont_interpolates_between_neighbours():
    values = [timedelta(seconds=s) for s in (1, 2, 3, 4)]

    assert percentile_cont(values, 0.5) == timedelta(seconds=2.5)
    assert percentile_cont(values, 1.0) == timedelta(seconds=4)
    assert percentile_cont([], 0.5) is None


# --- Successes, failures, backlog, notices ----------------------------------------------


def test_the_failure_streak_counts_failed_attempts_since_the_last_success(feed: Feed):
    now = timezone.now()
    feeds = Feeds(feed)
    batch = feeds.batch(status=Status.RETRY_SCHEDULED, records=RECORDS)
    attempt(batch, 1, Outcome.TRANSIENT_FAILURE, at=now - timedelta(hours=5))
    attempt(batch, 2, Outcome.SUCCEEDED, at=now - timedelta(hours=4))
    attempt(batch, 3, Outcome.TRANSIENT_FAILURE, at=now - timedelta(hours=3))
    other = feeds.batch(status=Status.FAILED, records=RECORDS)
    attempt(other, 1, Outcome.PERMANENT_FAILURE, at=now - timedelta(hours=2))

    health = health_of(feed, now)

    assert health.last_success_at == now - timedelta(hours=4)
    assert health.since_last_success == timedelta(hours=4)
    assert health.failed_attempts == 2
    assert health.failing_for == timedelta(hours=3)


def test_a_feed_that_never_succeeded_counts_every_failure(feed: Feed):
    now = timezone.now()
    batch = Feeds(feed).batch(status=Status.RETRY_SCHEDULED, records=RECORDS)
    for n in (1, 2, 3):
        attempt(batch, n, Outcome.TRANSIENT_FAILURE, at=now - timedelta(minutes=10 * n))

    health = health_of(feed, now)

    assert (health.last_success_at, health.failed_attempts) == (None, 3)
    assert health.failing_for == timedelta(minutes=30)


def test_the_last_success_of_a_pull_feed_is_its_last_download(partner: Partner):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL)
    downloaded = timezone.now() - timedelta(minutes=7)
    Feeds(feed).batch(status=Status.READY, records=RECORDS, first_downloaded_at=downloaded)

    health = health_of(feed)

    assert health.last_success_at == downloaded
    assert health.circuit is None


def test_the_backlog_counts_waiting_batches_and_their_events(feed: Feed, partner: Partner):
    feeds = Feeds(feed)
    feeds.batch(status=Status.PENDING)
    feeds.batch(status=Status.READY, records=RECORDS * 3)
    feeds.batch(status=Status.RETRY_SCHEDULED, records=RECORDS * 2)
    feeds.batch(status=Status.DELIVERED, records=RECORDS * 5)
    feeds.batch(status=Status.FAILED, records=RECORDS * 5)
    feeds.batch(status=Status.READY, records=RECORDS, kind=Batch.Kind.TEST)
    pull = Feeds(make_feed(partner=partner, mode=Feed.Mode.PULL))
    pull.batch(status=Status.READY, records=RECORDS * 4)
    pull.batch(status=Status.READY, records=RECORDS * 4, first_downloaded_at=timezone.now())

    health = feeds_health(feeds=[feed, pull.feed], at=timezone.now())

    assert (health[feed.pk].backlog_batches, health[feed.pk].backlog_events) == (3, 5)
    assert (health[pull.feed.pk].backlog_batches, health[pull.feed.pk].backlog_events) == (1, 4)


def test_open_notices_are_counted_until_acknowledged(feed: Feed):
    FeedNotice.objects.create(feed=feed, code="circuit_open", message="503s")
    FeedNotice.objects.create(feed=feed, code="gone", message="410", acknowledged_at=timezone.now())

    assert health_of(feed).open_notices == 1


def test_the_circuit_is_read_for_the_feeds_endpoint(feed: Feed, monkeypatch: pytest.MonkeyPatch):
    asked: list[str] = []

    def snapshot(*, endpoint_url: str) -> CircuitSnapshot:
        asked.append(endpoint_url)
        return CircuitSnapshot(state="open", failures=9, requests=10, open_until=None)

    monkeypatch.setattr(health_selectors, "circuit_snapshot", snapshot)

    assert health_of(feed).circuit.state == "open"
    assert asked == [feed.endpoint_url]


def test_an_unreadable_circuit_does_not_hide_the_rest(feed: Feed, monkeypatch: pytest.MonkeyPatch):
    def broken(*, endpoint_url: str) -> CircuitSnapshot:
        raise ConnectionError("cache down")

    monkeypatch.setattr(health_selectors, "circuit_snapshot", broken)

    assert health_of(feed).circuit is None


def test_a_quiet_endpoint_has_a_closed_circuit(feed: Feed):
    assert health_of(feed).circuit.state == "closed"


# --- Admin pages ----------------------------------------------------------------------


def test_the_feed_list_shows_health_columns(
    staff_client: Client, feed: Feed, five_latencies: Feeds
):
    FeedNotice.objects.create(feed=feed, code="circuit_open", message="503s")
    five_latencies.batch(status=Status.READY, records=RECORDS * 2)

    response = staff_client.get(reverse("admin:partners_feed_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "30 s / 48 s" in html
    assert "1 batches, 2 events" in html
    assert "1 open" in html
    assert ">closed<" in html


def test_the_feed_list_does_not_query_per_feed(staff_client: Client, partner: Partner):
    for _ in range(2):
        Feeds(make_feed(partner=partner)).batch(status=Status.READY, records=RECORDS)
    url = reverse("admin:partners_feed_changelist")

    with CaptureQueriesContext(connection) as few:
        staff_client.get(url)
    for _ in range(3):
        Feeds(make_feed(partner=partner)).batch(status=Status.READY, records=RECORDS)
    with CaptureQueriesContext(connection) as more:
        staff_client.get(url)

    assert len(more) == len(few)


def test_the_feed_page_shows_health_notices_and_newest_batches(
    staff_client: Client, feed: Feed, five_latencies: Feeds
):
    failed = five_latencies.batch(
        status=Status.FAILED, records=RECORDS, last_error="attempt 1: HTTP 400"
    )
    attempt(failed, 1, Outcome.PERMANENT_FAILURE, at=timezone.now())
    FeedNotice.objects.create(feed=feed, code="gone", message="endpoint answered 410")

    response = staff_client.get(reverse("admin:partners_feed_change", args=[feed.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "1 attempts over" in html
    assert "over 5 batches" in html
    assert "endpoint answered 410" in html
    assert reverse("admin:delivery_batch_change", args=[failed.pk]) in html
    assert "attempt 1: HTTP 400" in html
    assert f"feed__id__exact={feed.pk}&amp;dead=yes" in html


def test_the_feed_add_page_still_renders(staff_client: Client):
    response = staff_client.get(reverse("admin:partners_feed_add"))

    assert response.status_code == 200
    assert "Save the feed first." in response.content.decode()


def test_the_batch_list_link_of_a_feed_filters_its_dead_batches(
    staff_client: Client, feed: Feed, partner: Partner
):
    feeds = Feeds(feed)
    dead = feeds.batch(status=Status.FAILED)
    feeds.batch(status=Status.DELIVERED)
    Feeds(make_feed(partner=partner)).batch(status=Status.FAILED)

    response = staff_client.get(
        reverse("admin:delivery_batch_changelist"), {"feed__id__exact": feed.pk, "dead": "yes"}
    )

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [dead]


def test_notices_are_acknowledged_from_the_notice_list(staff_client: Client, feed: Feed):
    notice = FeedNotice.objects.create(feed=feed, code="circuit_open", message="503s")

    response = staff_client.post(
        reverse("admin:delivery_feednotice_changelist"),
        {"action": "acknowledge", "_selected_action": [notice.pk]},
        follow=True,
    )

    assert "1 notices acknowledged." in [str(m) for m in response.context["messages"]]
    notice.refresh_from_db()
    assert notice.acknowledged_at is not None


def test_a_feeds_notices_are_acknowledged_from_the_feed_list(
    staff_client: Client, feed: Feed, partner: Partner
):
    FeedNotice.objects.create(feed=feed, code="circuit_open", message="503s")
    FeedNotice.objects.create(feed=feed, code="gone", message="410")
    other = FeedNotice.objects.create(feed=make_feed(partner=partner), code="gone", message="x")

    staff_client.post(
        reverse("admin:partners_feed_changelist"),
        {"action": "acknowledge_notices", "_selected_action": [feed.pk]},
    )

    assert not FeedNotice.objects.filter(feed=feed, acknowledged_at__isnull=True).exists()
    other.refresh_from_db()
    assert other.acknowledged_at is None
