"""Streaming feeds: micro-batches cut by size or delay, each exposure in exactly one of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.delivery import streaming
from gateway.delivery.claims import claimed_exposures
from gateway.delivery.models import Batch
from gateway.delivery.streaming import exposures_arrived, stream_flush, streams_flush_waiting
from gateway.ingest.models import Exposure
from gateway.ingest.services import exposures_ingest
from partners.models import Feed, Partner
from tests.delivery.builders import make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import exposure_payload, make_feed, make_partner

# Commits for real: a stream cut claims what committed before it.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clean_shared_store"),
]

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """Flush requests (feed id, countdown) instead of task messages."""
    requested: list[tuple[int, float]] = []
    monkeypatch.setattr(
        streaming,
        "_enqueue_flush",
        lambda feed_id, *, countdown: requested.append((feed_id, countdown)),
    )
    return requested


@pytest.fixture
def partner() -> Partner:
    return make_partner(campaigns=("cmp-1",))


@pytest.fixture
def stream_feed(partner: Partner) -> Feed:
    return make_feed(
        partner=partner, mode=Feed.Mode.STREAM, stream_max_events=3, stream_max_delay_ms=250
    )


def exposure(**overrides) -> str:
    return make_exposure(received_at=NOW - timedelta(seconds=1), **overrides).event_id


def claimed(batch: Batch) -> set[str]:
    return set(claimed_exposures(batch).values_list("event_id", flat=True))


def test_a_flush_cuts_builds_and_queues_one_micro_batch(
    stream_feed: Feed, queued: QueuedTasks, flushes
):
    first = {exposure(), exposure()}
    exposure(campaign_id="cmp-other")  # not this partner's

    batch = stream_flush(feed_id=stream_feed.pk, now=NOW)

    assert batch is not None
    assert batch.kind == Batch.Kind.STREAM
    assert batch.status == Batch.Status.READY
    assert batch.delivered_count == 2
    assert claimed(batch) == first
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]


def test_consecutive_flushes_claim_disjoint_exposures(
    stream_feed: Feed, queued: QueuedTasks, flushes
):
    exposure()
    first = stream_flush(feed_id=stream_feed.pk, now=NOW)
    assert stream_flush(feed_id=stream_feed.pk, now=NOW) is None  # nothing new
    later = exposure()

    second = stream_flush(feed_id=stream_feed.pk, now=NOW + timedelta(seconds=1))

    assert first is not None and second is not None
    assert claimed(second) == {later}
    assert not claimed(first) & claimed(second)
    assert (first.sequence, second.sequence) == (1, 2)


def test_arrivals_schedule_one_delayed_flush_per_feed(
    stream_feed: Feed, queued: QueuedTasks, flushes
):
    exposures_arrived(1)
    exposures_arrived(1)

    assert flushes == [(stream_feed.pk, 0.25)]


def test_reaching_the_size_limit_flushes_at_once(stream_feed: Feed, queued: QueuedTasks, flushes):
    exposures_arrived(1)
    exposures_arrived(2)  # 3 waiting = stream_max_events

    assert flushes == [(stream_feed.pk, 0.25), (stream_feed.pk, 0)]


def test_a_flush_clears_the_schedule_so_new_arrivals_schedule_again(
    stream_feed: Feed, queued: QueuedTasks, flushes
):
    exposures_arrived(1)
    stream_flush(feed_id=stream_feed.pk, now=NOW)

    exposures_arrived(1)

    assert flushes == [(stream_feed.pk, 0.25), (stream_feed.pk, 0.25)]


def test_feeds_that_are_not_streaming_or_not_live_are_left_alone(
    partner: Partner, queued: QueuedTasks, flushes
):
    make_feed(partner=partner, mode=Feed.Mode.PUSH)
    make_feed(partner=partner, mode=Feed.Mode.STREAM, enabled=False)

    exposures_arrived(5)

    assert flushes == []


def test_ingest_announces_what_it_committed(stream_feed: Feed, queued: QueuedTasks, flushes):
    payloads = [exposure_payload(occurred_at=(NOW - timedelta(seconds=2)).isoformat())]

    exposures_ingest(records=payloads, now=NOW)

    assert flushes == [(stream_feed.pk, 0.25)]


def test_the_safety_net_flushes_feeds_with_anything_waiting(
    stream_feed: Feed, queued: QueuedTasks, flushes
):
    exposure()

    assert streams_flush_waiting(now=NOW) == 1
    assert streams_flush_waiting(now=NOW) == 0
    assert Batch.objects.filter(feed=stream_feed).count() == 1


def test_a_flush_held_back_by_an_open_transaction_tries_again_soon(
    stream_feed: Feed, queued: QueuedTasks, flushes, monkeypatch: pytest.MonkeyPatch
):
    exposure()
    # As if a transaction below this exposure were still open at the cut.
    held_back = Exposure.objects.order_by("commit_seq").first().commit_seq
    monkeypatch.setattr(streaming, "commit_horizon", lambda: held_back)

    assert stream_flush(feed_id=stream_feed.pk, now=NOW) is None

    assert flushes == [(stream_feed.pk, streaming.FOLLOW_UP_SECONDS)]
