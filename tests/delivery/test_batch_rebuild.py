"""batch_rebuild: build a batch again from its window, only while no partner can have it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from gateway.delivery.models import Batch
from gateway.delivery.services import batch_build, batch_rebuild
from partners.models import Feed, Partner
from tests.delivery.builders import WINDOW_START, make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

RECORDS = [{"event_id": "evt-old"}]


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


def test_an_empty_batch_is_rebuilt_from_its_window(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    batch = make_batch(feed=push_feed, status=Batch.Status.EMPTY)
    make_exposure(received_at=WINDOW_START)

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_rebuild(batch_id=batch.pk) is True
    assert queued.ids("delivery.build_batch") == [str(batch.pk)]
    batch_build(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.READY
    assert batch.delivered_count == 1


def test_rebuilding_clears_the_old_body_and_counts(push_feed: Feed, queued: QueuedTasks):
    batch = make_batch(
        feed=push_feed,
        status=Batch.Status.FAILED,
        records=RECORDS,
        candidate_count=4,
        dropped_by_reason={"gpc": 3},
        delivered_by_campaign_day_event={"cmp-1|2026-11-24|impression": 1},
    )

    batch_rebuild(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.PENDING
    assert batch.body_gzip is None
    assert (batch.candidate_count, batch.delivered_count, batch.dropped_by_reason) == (0, 0, {})
    assert batch.delivered_by_campaign_day_event == {}


def test_a_downloaded_pull_batch_is_not_rebuilt(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL)
    batch = make_batch(
        feed=feed,
        status=Batch.Status.READY,
        records=RECORDS,
        first_downloaded_at=timezone.now(),
    )

    assert batch_rebuild(batch_id=batch.pk) is False
    assert fresh(batch).status == Batch.Status.READY


@pytest.mark.parametrize(
    "status",
    [
        Batch.Status.PENDING,
        Batch.Status.BUILDING,
        Batch.Status.SENDING,
        Batch.Status.RETRY_SCHEDULED,
        Batch.Status.DELIVERED,
    ],
)
def test_batches_in_flight_or_delivered_are_not_rebuilt(
    push_feed: Feed, queued: QueuedTasks, status: str
):
    batch = make_batch(feed=push_feed, status=status, records=RECORDS)

    assert batch_rebuild(batch_id=batch.pk) is False
    assert fresh(batch).status == status
