"""batch_supersede: build a batch's claim again as a new batch, the old one marked superseded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gateway.delivery.models import Batch
from gateway.delivery.services import batch_build, batch_supersede
from partners.models import Feed, Partner
from tests.delivery.builders import WINDOW_START, batch_body, make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

RECORDS = [{"event_id": "evt-old"}]


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


def test_a_delivered_batch_is_rebuilt_as_a_new_batch_of_the_same_claim(
    push_feed: Feed, queued: QueuedTasks, django_capture_on_commit_callbacks
):
    old = make_batch(
        feed=push_feed, status=Batch.Status.DELIVERED, records=RECORDS, dropped_by_reason={"gpc": 3}
    )
    make_exposure(received_at=WINDOW_START + timedelta(seconds=10))

    with django_capture_on_commit_callbacks(execute=True):
        new = batch_supersede(batch_id=old.pk)
    assert new is not None
    assert queued.ids("delivery.build_batch") == [str(new.pk)]
    batch_build(batch_id=new.pk)

    old, new = fresh(old), fresh(new)
    assert old.status == Batch.Status.SUPERSEDED
    assert old.superseded_by_id == new.pk
    # The old batch keeps what it was, for the record.
    assert old.dropped_by_reason == {"gpc": 3}
    assert old.body_path
    assert (new.kind, new.window_start, new.window_end) == (
        old.kind,
        old.window_start,
        old.window_end,
    )
    assert (new.claim_from, new.claim_to) == (old.claim_from, old.claim_to)
    assert new.sequence == old.sequence + 1
    assert new.status == Batch.Status.READY
    assert new.delivered_count == 1
    assert b"evt-old" not in batch_body(new)


def test_a_downloaded_pull_batch_can_be_superseded_too(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL)
    batch = make_batch(
        feed=feed, status=Batch.Status.READY, records=RECORDS, first_downloaded_at=timezone.now()
    )

    new = batch_supersede(batch_id=batch.pk)

    assert new is not None
    assert fresh(batch).status == Batch.Status.SUPERSEDED


@pytest.mark.parametrize(
    "status", [Batch.Status.BUILDING, Batch.Status.SENDING, Batch.Status.SUPERSEDED]
)
def test_batches_in_flight_or_already_superseded_are_left_alone(
    push_feed: Feed, queued: QueuedTasks, status: str
):
    batch = make_batch(feed=push_feed, status=status, records=RECORDS)

    assert batch_supersede(batch_id=batch.pk) is None
    assert fresh(batch).status == status
    assert Batch.objects.count() == 1
