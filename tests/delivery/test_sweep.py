"""batches_sweep: re-queue batches whose task message was lost, and take back dead claims."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batches_sweep
from partners.models import Feed, Partner
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

RECORDS = [{"event_id": "evt-1"}]


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture(autouse=True)
def time_limit(settings) -> None:
    settings.CELERY_TASK_TIME_LIMIT = 600
    settings.DELIVERY_RETRY_SCHEDULE = [0, 0]  # three attempts per round


def sweep(now, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return batches_sweep(now=now)


def fresh(batch: Batch) -> Batch:
    return Batch.objects.get(pk=batch.pk)


def test_a_pending_batch_whose_build_message_is_old_is_queued_again(
    push_feed: Feed, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    lost = make_batch(feed=push_feed, queued_at=now - timedelta(minutes=6))
    make_batch(feed=push_feed, sequence=2, window_start=lost.window_end, queued_at=now)

    assert sweep(now, django_capture_on_commit_callbacks) == 1

    assert queued.ids("delivery.build_batch") == [str(lost.pk)]
    assert fresh(lost).queued_at == now


def test_a_batch_is_not_queued_again_by_the_next_sweep(
    push_feed: Feed, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    make_batch(feed=push_feed, queued_at=now - timedelta(minutes=6))
    sweep(now, django_capture_on_commit_callbacks)

    assert sweep(now + timedelta(seconds=10), django_capture_on_commit_callbacks) == 0
    assert len(queued.calls) == 1


def test_a_ready_push_batch_never_sent_is_queued_for_sending(
    push_feed: Feed, partner: Partner, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    stuck = make_batch(
        feed=push_feed,
        status=Batch.Status.READY,
        records=RECORDS,
        queued_at=now - timedelta(minutes=10),
    )
    pull = make_feed(partner=partner, mode=Feed.Mode.PULL)
    make_batch(
        feed=pull, status=Batch.Status.READY, records=RECORDS, queued_at=now - timedelta(hours=1)
    )

    sweep(now, django_capture_on_commit_callbacks)

    assert queued.ids("delivery.send_batch") == [str(stuck.pk)]
    assert queued.options("delivery.send_batch")[0]["queue"] == "delivery"


def test_a_retry_well_past_due_is_queued_but_a_recent_one_is_left_alone(
    push_feed: Feed, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    overdue = make_batch(
        feed=push_feed,
        status=Batch.Status.RETRY_SCHEDULED,
        records=RECORDS,
        next_attempt_at=now - timedelta(minutes=10),
        queued_at=now - timedelta(minutes=15),
    )
    make_batch(
        feed=push_feed,
        sequence=2,
        window_start=overdue.window_end,
        status=Batch.Status.RETRY_SCHEDULED,
        records=RECORDS,
        next_attempt_at=now - timedelta(seconds=30),
        queued_at=now - timedelta(minutes=15),
    )

    sweep(now, django_capture_on_commit_callbacks)

    assert queued.ids("delivery.send_batch") == [str(overdue.pk)]


def test_a_build_claimed_by_a_dead_worker_starts_over(
    push_feed: Feed, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    dead = make_batch(
        feed=push_feed,
        status=Batch.Status.BUILDING,
        claimed_at=now - timedelta(seconds=600 + 61),
        queued_at=now - timedelta(seconds=600 + 62),
    )
    alive = make_batch(
        feed=push_feed,
        sequence=2,
        window_start=dead.window_end,
        status=Batch.Status.BUILDING,
        claimed_at=now - timedelta(seconds=600),
        queued_at=now - timedelta(seconds=700),
    )

    sweep(now, django_capture_on_commit_callbacks)

    assert fresh(dead).status == Batch.Status.PENDING
    assert fresh(alive).status == Batch.Status.BUILDING
    assert queued.ids("delivery.build_batch") == [str(dead.pk)]


def test_a_send_claimed_by_a_dead_worker_closes_its_attempt_and_retries(
    push_feed: Feed, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    claimed_at = now - timedelta(minutes=20)
    batch = make_batch(
        feed=push_feed,
        status=Batch.Status.SENDING,
        records=RECORDS,
        claimed_at=claimed_at,
        attempt_count=1,
        queued_at=claimed_at,
    )
    DeliveryAttempt.objects.create(
        batch=batch, number=1, started_at=claimed_at, webhook_timestamp=1
    )

    sweep(now, django_capture_on_commit_callbacks)

    batch = fresh(batch)
    assert batch.status == Batch.Status.RETRY_SCHEDULED
    assert batch.next_attempt_at == now
    attempt = batch.attempts.get()
    assert attempt.outcome == DeliveryAttempt.Outcome.TRANSIENT_FAILURE
    assert "worker lost" in attempt.error
    assert queued.ids("delivery.send_batch") == [str(batch.pk)]


def test_a_dead_send_on_the_last_attempt_fails_the_batch(
    push_feed: Feed, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    batch = make_batch(
        feed=push_feed,
        status=Batch.Status.SENDING,
        records=RECORDS,
        claimed_at=now - timedelta(minutes=20),
        attempt_count=3,
    )

    sweep(now, django_capture_on_commit_callbacks)

    assert fresh(batch).status == Batch.Status.FAILED
    assert queued.calls == []


def test_batches_of_paused_partners_and_disabled_feeds_are_left_alone(
    partner: Partner, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    disabled = make_feed(partner=partner, enabled=False)
    make_batch(feed=disabled, queued_at=now - timedelta(hours=1))
    paused_feed = make_feed(partner=partner)
    make_batch(
        feed=paused_feed,
        status=Batch.Status.READY,
        records=RECORDS,
        queued_at=now - timedelta(hours=1),
    )
    partner.status = Partner.Status.PAUSED
    partner.save(update_fields=["status"])

    assert sweep(now, django_capture_on_commit_callbacks) == 0
    assert queued.calls == []


def test_finished_batches_are_never_queued(
    push_feed: Feed, queued: QueuedTasks, now, django_capture_on_commit_callbacks
):
    old = now - timedelta(days=1)
    for sequence, status in enumerate(
        [Batch.Status.DELIVERED, Batch.Status.FAILED, Batch.Status.EMPTY], start=1
    ):
        make_batch(
            feed=push_feed,
            sequence=sequence,
            window_start=old + timedelta(minutes=sequence),
            status=status,
            queued_at=old,
        )

    assert sweep(now, django_capture_on_commit_callbacks) == 0
