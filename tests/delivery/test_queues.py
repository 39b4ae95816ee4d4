"""Builds and sends go to separate queues, so a big build never waits in front of a send."""

from __future__ import annotations

import pytest
from django.conf import settings

from gateway.delivery.queueing import enqueue_build, enqueue_send
from tests.delivery.conftest import QueuedTasks

BATCH_ID = "00000000-0000-0000-0000-000000000001"


def test_a_build_is_queued_on_the_build_queue(queued: QueuedTasks):
    enqueue_build(BATCH_ID)

    assert queued.options("delivery.build_batch") == [{"queue": "build"}]


def test_a_send_is_queued_on_the_delivery_queue_with_its_countdown(queued: QueuedTasks):
    enqueue_send(BATCH_ID, 2.5)

    assert queued.options("delivery.send_batch") == [{"queue": "delivery", "countdown": 2.5}]


@pytest.mark.parametrize(
    ("task", "queue"),
    [("delivery.build_batch", "build"), ("delivery.send_batch", "delivery")],
)
def test_the_routes_agree_with_the_queues_used(task: str, queue: str):
    assert settings.CELERY_TASK_ROUTES[task] == {"queue": queue}
