"""The Celery tasks: explicit names, late acks, time limits, and one service call each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses

from gateway.delivery import tasks
from gateway.delivery.models import Batch
from partners.models import Feed
from tests.delivery.builders import make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed, make_partner

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"


@pytest.mark.parametrize(
    ("task", "name"),
    [
        (tasks.dispatch_due_windows, "delivery.dispatch_due_windows"),
        (tasks.build_batch, "delivery.build_batch"),
        (tasks.send_batch, "delivery.send_batch"),
    ],
)
def test_tasks_have_explicit_names_late_acks_and_time_limits(task, name: str):
    assert task.name == name
    assert task.acks_late is True
    assert task.time_limit is not None
    assert task.time_limit <= tasks.settings.CELERY_TASK_TIME_LIMIT


def test_the_beat_schedule_names_the_dispatch_task():
    from config.celery import app

    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}

    assert tasks.dispatch_due_windows.name in scheduled


def test_the_dispatch_task_creates_batches_for_closed_windows(queued: QueuedTasks):
    feed = make_feed(partner=make_partner(), deliver_from=datetime(2026, 1, 1, tzinfo=UTC))

    tasks.dispatch_due_windows.apply()

    assert Batch.objects.filter(feed=feed).exists()


def test_the_build_task_builds_the_batch(push_feed: Feed, queued: QueuedTasks):
    batch = make_batch(feed=push_feed)
    make_exposure(received_at=batch.window_start)

    result = tasks.build_batch.apply(args=[str(batch.pk)])

    assert result.successful()
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.READY


def test_the_build_task_returns_quietly_for_a_missing_batch(db: None):
    result = tasks.build_batch.apply(args=["00000000-0000-0000-0000-000000000000"])

    assert result.successful()


@responses.activate
def test_the_send_task_records_its_task_id_on_the_attempt(push_feed: Feed, queued: QueuedTasks):
    responses.add(responses.POST, URL, status=200)
    batch = make_batch(feed=push_feed, status=Batch.Status.READY, records=[{"event_id": "e"}])

    result = tasks.send_batch.apply(args=[str(batch.pk)], task_id="celery-task-42")

    assert result.successful()
    assert batch.attempts.get().task_id == "celery-task-42"


def test_the_send_task_returns_quietly_when_the_batch_is_already_delivered(
    push_feed: Feed, queued: QueuedTasks
):
    batch = make_batch(feed=push_feed, status=Batch.Status.DELIVERED, records=[{"event_id": "e"}])

    with responses.RequestsMock():
        result = tasks.send_batch.apply(args=[str(batch.pk)])

    assert result.successful()
    assert not batch.attempts.exists()
