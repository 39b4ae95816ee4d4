"""Batch bodies past retention: deleted once the batch is done with, and never read again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from gateway.delivery import retention, tasks
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from gateway.delivery.replay import (
    SkipReason,
    batch_rebuild,
    batch_replay,
    batch_retry_dead,
)
from gateway.delivery.retention import BODIES_EXPIRING, bodies_expire, expiry_warnings_raise
from gateway.delivery.services import batch_retry, batch_send
from gateway.delivery.storage import batch_storage
from partners.models import Feed, Partner
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_shared_store")]

Status = Batch.Status
RECORDS = [{"event_id": "evt-1", "campaign_id": "cmp-1"}]
NOW = timezone.now()
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)


@pytest.fixture(autouse=True)
def thirty_days(settings) -> None:
    settings.BATCH_BODY_RETENTION_DAYS = 30


def _built(feed: Feed, *, status: Status, built_at=OLD, sequence: int = 1, **fields) -> Batch:
    return make_batch(
        feed=feed,
        status=status,
        records=RECORDS,
        built_at=built_at,
        sequence=sequence,
        window_start=NOW - timedelta(days=40, minutes=-sequence),
        **fields,
    )


def _stored(batch: Batch) -> bool:
    return batch_storage().exists(batch.body_path)


def test_a_delivered_batch_past_retention_loses_its_body_and_keeps_its_record(
    push_feed: Feed,
) -> None:
    batch = _built(push_feed, status=Status.DELIVERED)
    body_path = batch.body_path

    assert bodies_expire(now=NOW) == 1

    batch.refresh_from_db()
    assert (batch.body_path, batch.body_expired_at) == ("", NOW)
    assert not batch_storage().exists(body_path)
    # The record of what was sent stays for audits and reconciliation.
    assert (batch.status, batch.delivered_count) == (Status.DELIVERED, 1)
    assert batch.body_sha256 and batch.body_bytes


@pytest.mark.parametrize("status", [Status.FAILED, Status.SUPERSEDED])
def test_dead_and_superseded_batches_expire_too(push_feed: Feed, status: Status) -> None:
    batch = _built(push_feed, status=status)

    assert bodies_expire(now=NOW) == 1
    batch.refresh_from_db()
    assert batch.body_expired_at == NOW


@pytest.mark.parametrize(
    "status", [Status.READY, Status.SENDING, Status.RETRY_SCHEDULED, Status.BUILDING]
)
def test_a_push_batch_still_on_its_way_keeps_its_body(push_feed: Feed, status: Status) -> None:
    batch = _built(push_feed, status=status)

    assert bodies_expire(now=NOW) == 0
    batch.refresh_from_db()
    assert batch.body_expired_at is None
    assert _stored(batch)


def test_a_pull_batch_waits_for_its_download_until_retention_ends(partner: Partner) -> None:
    pull = make_feed(partner=partner, name="pulled", mode=Feed.Mode.PULL)
    old = _built(pull, status=Status.READY, sequence=1)
    recent = _built(pull, status=Status.READY, built_at=RECENT, sequence=2)

    assert bodies_expire(now=NOW) == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.body_expired_at == NOW
    assert recent.body_expired_at is None and _stored(recent)


def test_a_body_inside_the_retention_period_stays(push_feed: Feed) -> None:
    batch = _built(push_feed, status=Status.DELIVERED, built_at=RECENT)

    assert bodies_expire(now=NOW) == 0
    assert _stored(batch)


def test_retention_of_zero_days_keeps_every_body(settings, push_feed: Feed) -> None:
    settings.BATCH_BODY_RETENTION_DAYS = 0
    batch = _built(push_feed, status=Status.DELIVERED, built_at=NOW - timedelta(days=3650))

    assert bodies_expire(now=NOW) == 0
    assert _stored(batch)


def test_a_run_expires_at_most_its_limit_oldest_first(push_feed: Feed) -> None:
    batches = [
        _built(push_feed, status=Status.DELIVERED, built_at=OLD - timedelta(hours=n), sequence=n)
        for n in (1, 2, 3)
    ]

    assert bodies_expire(now=NOW, limit=2) == 2
    expired = set(
        Batch.objects.filter(body_expired_at__isnull=False).values_list("sequence", flat=True)
    )
    assert expired == {2, 3}
    assert bodies_expire(now=NOW, limit=2) == 1
    assert all(not _stored(batch) for batch in batches)


def test_a_body_storage_could_not_delete_is_deleted_at_the_next_run(
    push_feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _built(push_feed, status=Status.DELIVERED)
    body_path = batch.body_path

    def unreachable(name: str) -> None:
        raise OSError("storage out of reach")

    monkeypatch.setattr(batch_storage(), "delete", unreachable)
    assert bodies_expire(now=NOW) == 1
    batch.refresh_from_db()
    # Expired (nothing reads it any more), but still pointing at what is left to delete.
    assert (batch.body_path, batch.body_expired_at) == (body_path, NOW)
    assert _stored(batch)

    monkeypatch.undo()
    assert bodies_expire(now=NOW + timedelta(hours=1)) == 0
    batch.refresh_from_db()
    assert (batch.body_path, batch.body_expired_at) == ("", NOW)
    assert not batch_storage().exists(body_path)


# --- Pull batches nobody downloaded are announced before they go -------------------------


def test_pull_batches_never_downloaded_are_announced_days_before_their_bodies_go(
    partner: Partner,
) -> None:
    pull = make_feed(partner=partner, name="pulled", mode=Feed.Mode.PULL)
    soon = NOW - timedelta(days=28)  # expires in 2 days
    _built(pull, status=Status.READY, built_at=soon, sequence=4)
    _built(pull, status=Status.READY, built_at=soon + timedelta(hours=1), sequence=5)
    _built(pull, status=Status.READY, built_at=soon, sequence=6, first_downloaded_at=soon)
    _built(pull, status=Status.READY, built_at=RECENT + timedelta(days=10), sequence=7)

    assert expiry_warnings_raise(now=NOW) == 1

    [notice] = FeedNotice.objects.filter(feed=pull)
    assert (notice.code, notice.level) == (BODIES_EXPIRING, FeedNotice.Level.WARNING)
    assert notice.message.startswith(
        f"2 batches of {partner.slug}/pulled were never downloaded and lose their bodies"
    )
    expires = soon + timedelta(days=30)
    assert f"the first (#4) on {expires:%Y-%m-%d %H:%M} UTC" in notice.message


def test_one_open_notice_at_a_time(partner: Partner) -> None:
    pull = make_feed(partner=partner, name="pulled", mode=Feed.Mode.PULL)
    _built(pull, status=Status.READY, built_at=NOW - timedelta(days=28))

    assert expiry_warnings_raise(now=NOW) == 1
    assert expiry_warnings_raise(now=NOW + timedelta(hours=1)) == 0
    FeedNotice.objects.filter(feed=pull).update(acknowledged_at=NOW)
    # Acknowledged, and the batch still not downloaded: announced again.
    assert expiry_warnings_raise(now=NOW + timedelta(hours=2)) == 1


def test_nothing_is_announced_for_push_feeds_or_without_retention(
    settings, partner: Partner, push_feed: Feed
) -> None:
    _built(push_feed, status=Status.DELIVERED, built_at=NOW - timedelta(days=28))
    assert expiry_warnings_raise(now=NOW) == 0

    settings.BATCH_BODY_RETENTION_DAYS = 0
    pull = make_feed(partner=partner, name="pulled", mode=Feed.Mode.PULL)
    _built(pull, status=Status.READY, built_at=NOW - timedelta(days=365))
    assert expiry_warnings_raise(now=NOW) == 0


# --- Nothing reads an expired body ------------------------------------------------------


def test_an_expired_batch_is_not_replayed_nor_retried_but_can_be_rebuilt(
    push_feed: Feed, queued: QueuedTasks
) -> None:
    delivered = _built(push_feed, status=Status.DELIVERED, sequence=1)
    dead = _built(push_feed, status=Status.FAILED, sequence=2)
    bodies_expire(now=NOW)

    assert batch_replay(batch_id=delivered.pk).skipped == SkipReason.BODY_EXPIRED
    assert batch_retry_dead(batch_id=dead.pk).skipped == SkipReason.BODY_EXPIRED
    assert batch_retry(batch_id=dead.pk) is False
    assert queued.ids("delivery.send_batch") == []
    # Its exposures are still there to build from: a re-build makes a new batch.
    assert batch_rebuild(batch_id=delivered.pk).done


def test_a_send_of_an_expired_batch_fails_for_good_and_says_why(push_feed: Feed) -> None:
    # A batch made ready by a replay queued just before its body expired.
    batch = _built(push_feed, status=Status.READY, body_expired_at=NOW - timedelta(minutes=1))

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None
    assert attempt.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE
    assert "retention policy" in attempt.error
    batch.refresh_from_db()
    assert batch.status == Status.FAILED


def test_beat_expires_bodies_with_a_named_task() -> None:
    schedule = app.conf.beat_schedule["delivery-expire-batch-bodies"]
    assert schedule["task"] == tasks.expire_batch_bodies.name == "delivery.expire_batch_bodies"
    assert tasks.expire_batch_bodies.acks_late is True


def test_the_task_announces_then_expires(partner: Partner, push_feed: Feed) -> None:
    pull = make_feed(partner=partner, name="pulled", mode=Feed.Mode.PULL)
    _built(pull, status=Status.READY, built_at=timezone.now() - timedelta(days=28))
    old = _built(push_feed, status=Status.DELIVERED)

    tasks.expire_batch_bodies.apply()

    assert FeedNotice.objects.filter(feed=pull, code=BODIES_EXPIRING).count() == 1
    old.refresh_from_db()
    assert old.body_expired_at is not None


def test_a_run_takes_chunks_while_there_are_more(push_feed: Feed) -> None:
    for n in range(1, 6):
        _built(push_feed, status=Status.DELIVERED, sequence=n)

    assert retention.bodies_expire_due(now=NOW, limit=2) == 5
    assert not Batch.objects.filter(body_expired_at__isnull=True).exists()


def test_a_run_stops_when_its_time_is_up(push_feed: Feed) -> None:
    for n in range(1, 6):
        _built(push_feed, status=Status.DELIVERED, sequence=n)

    # One chunk at least, however short the budget.
    assert retention.bodies_expire_due(now=NOW, seconds=0, limit=2) == 2
