"""The upload deadline: one notice per window batch whose file came too late or not at all."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from gateway.delivery.models import Batch, FeedNotice
from gateway.filedrop import tasks
from gateway.filedrop.models import DeadlineMiss
from gateway.filedrop.services import DEADLINE_MISSED, file_deadlines_check
from partners.models import Feed, Partner
from tests.factories import make_feed
from tests.filedrop.conftest import WINDOW_START, make_file_feed, stored_batch

pytestmark = pytest.mark.django_db

RECORDS = [{"event_id": "evt-1"}]
WINDOW_END = WINDOW_START + timedelta(hours=1)
# file_deadline_minutes defaults to 30.
DUE = WINDOW_END + timedelta(minutes=30)
AFTER_DUE = DUE + timedelta(minutes=1)


def notices(feed: Feed) -> list[FeedNotice]:
    return list(FeedNotice.objects.filter(feed=feed, code=DEADLINE_MISSED))


@pytest.fixture(autouse=True)
def lookback(settings) -> None:
    settings.FILEDROP_DEADLINE_LOOKBACK_HOURS = 24


def test_a_window_not_uploaded_by_its_deadline_raises_one_notice_however_often_checked(
    file_feed: Feed, caplog
):
    batch = stored_batch(feed=file_feed, records=RECORDS, status=Batch.Status.RETRY_SCHEDULED)

    assert file_deadlines_check(now=AFTER_DUE) == 1
    assert file_deadlines_check(now=AFTER_DUE + timedelta(hours=1)) == 0

    [notice] = notices(file_feed)
    assert notice.level == FeedNotice.Level.WARNING
    assert f"batch #{batch.sequence}" in notice.message
    assert "2026-11-24 10:30 UTC" in notice.message
    assert "retry scheduled" in notice.message
    assert DeadlineMiss.objects.get().batch == batch
    assert "was due 2026-11-24 10:30 UTC" in caplog.text


def test_a_file_uploaded_in_time_raises_nothing(file_feed: Feed):
    stored_batch(
        feed=file_feed,
        records=RECORDS,
        status=Batch.Status.DELIVERED,
        delivered_at=DUE - timedelta(minutes=5),
    )

    assert file_deadlines_check(now=AFTER_DUE) == 0
    assert notices(file_feed) == []


def test_a_file_uploaded_after_its_deadline_is_noticed_too(file_feed: Feed):
    stored_batch(
        feed=file_feed,
        records=RECORDS,
        status=Batch.Status.DELIVERED,
        delivered_at=DUE + timedelta(minutes=5),
    )

    assert file_deadlines_check(now=AFTER_DUE + timedelta(minutes=10)) == 1
    assert "uploaded at 2026-11-24 10:35:00 UTC" in notices(file_feed)[0].message


def test_nothing_is_due_before_the_deadline(file_feed: Feed):
    stored_batch(feed=file_feed, records=RECORDS, status=Batch.Status.SENDING)

    assert file_deadlines_check(now=DUE - timedelta(seconds=1)) == 0


def test_the_feeds_own_deadline_counts(partner: Partner):
    feed = make_file_feed(partner=partner, file_deadline_minutes=5)
    stored_batch(feed=feed, records=RECORDS)

    assert file_deadlines_check(now=WINDOW_END + timedelta(minutes=6)) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": Batch.Kind.LATE},
        {"status": Batch.Status.EMPTY},
        {"status": Batch.Status.SUPERSEDED},
    ],
    ids=["late batches", "empty windows", "superseded batches"],
)
def test_batches_without_a_window_file_of_their_own_have_no_deadline(file_feed: Feed, fields):
    stored_batch(feed=file_feed, records=RECORDS, **fields)

    assert file_deadlines_check(now=AFTER_DUE) == 0


def test_push_feeds_and_windows_past_the_lookback_are_left_alone(partner: Partner, settings):
    stored_batch(feed=make_feed(partner=partner, name="push"), records=RECORDS)
    stored_batch(feed=make_file_feed(partner=partner), records=RECORDS)
    settings.FILEDROP_DEADLINE_LOOKBACK_HOURS = 1

    assert file_deadlines_check(now=WINDOW_END + timedelta(hours=2)) == 0


def test_the_check_is_a_named_periodic_task_with_limits(file_feed: Feed):
    two_hours_ago = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    stored_batch(feed=file_feed, records=RECORDS, window_start=two_hours_ago)
    app.loader.import_default_modules()

    assert app.conf.beat_schedule["filedrop-check-deadlines"]["task"] == "filedrop.check_deadlines"
    task = app.tasks["filedrop.check_deadlines"]
    assert task.acks_late is True
    assert task.soft_time_limit < task.time_limit
    assert tasks.check_deadlines.apply().successful()
    assert len(notices(file_feed)) == 1
