"""batch_retry: an operator sends a failed or waiting push batch again, now."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_retry, batch_send
from partners.models import Feed, Partner
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"
RECORDS = [{"event_id": "evt-1"}]


@pytest.fixture(autouse=True)
def _no_slowdown(settings, clean_shared_store: None):
    # The 503s below must not pause the feed or trip the endpoint's breaker for the next send.
    settings.DELIVERY_SLOWDOWN_PAUSE_SECONDS = 0


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


@responses.activate
def test_a_failed_batch_is_sent_again_under_the_same_id_with_new_attempts(
    push_feed: Feed, queued: QueuedTasks, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_RETRY_SCHEDULE = []  # one attempt per round
    responses.add(responses.POST, URL, status=503)
    responses.add(responses.POST, URL, status=200)
    batch = make_batch(feed=push_feed, status=Batch.Status.READY, records=RECORDS)
    batch_send(batch_id=batch.pk)
    assert fresh(batch).status == Batch.Status.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_retry(batch_id=batch.pk) is True
    assert fresh(batch).status == Batch.Status.READY
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]
    batch_send(batch_id=batch.pk)

    batch = fresh(batch)
    assert batch.status == Batch.Status.DELIVERED
    assert list(batch.attempts.values_list("number", "outcome")) == [
        (1, DeliveryAttempt.Outcome.TRANSIENT_FAILURE),
        (2, DeliveryAttempt.Outcome.SUCCEEDED),
    ]
    assert {c.request.headers["webhook-id"] for c in responses.calls} == {str(batch.pk)}


@responses.activate
def test_a_retry_gets_the_full_attempt_budget_again(push_feed: Feed, queued: QueuedTasks, settings):
    settings.DELIVERY_RETRY_SCHEDULE = [0]  # two attempts per round, the second at once
    responses.add(responses.POST, URL, status=503)
    batch = make_batch(feed=push_feed, status=Batch.Status.READY, records=RECORDS)
    batch_send(batch_id=batch.pk)
    batch_send(batch_id=batch.pk)
    assert fresh(batch).status == Batch.Status.FAILED

    batch_retry(batch_id=batch.pk)
    batch_send(batch_id=batch.pk)

    # Attempt 3 is the first of the new round: it schedules a retry, not a failure.
    assert fresh(batch).status == Batch.Status.RETRY_SCHEDULED


def test_a_scheduled_retry_becomes_due_now(push_feed: Feed, queued: QueuedTasks):
    later = timezone.now() + timedelta(hours=1)
    batch = make_batch(
        feed=push_feed, status=Batch.Status.RETRY_SCHEDULED, records=RECORDS, next_attempt_at=later
    )

    assert batch_retry(batch_id=batch.pk) is True

    batch = fresh(batch)
    assert batch.status == Batch.Status.READY
    assert batch.next_attempt_at is None


@pytest.mark.parametrize(
    "status",
    [
        Batch.Status.PENDING,
        Batch.Status.BUILDING,
        Batch.Status.READY,
        Batch.Status.SENDING,
        Batch.Status.DELIVERED,
        Batch.Status.EMPTY,
    ],
)
def test_other_statuses_are_not_retried(
    push_feed: Feed, queued: QueuedTasks, status: str, django_capture_on_commit_callbacks
):
    batch = make_batch(feed=push_feed, status=status, records=RECORDS)

    with django_capture_on_commit_callbacks(execute=True):
        assert batch_retry(batch_id=batch.pk) is False

    assert fresh(batch).status == status
    assert queued.calls == []


def test_pull_batches_are_not_retried(partner: Partner, queued: QueuedTasks):
    feed = make_feed(partner=partner, mode=Feed.Mode.PULL)
    batch = make_batch(feed=feed, status=Batch.Status.FAILED, records=RECORDS)

    assert batch_retry(batch_id=batch.pk) is False
