"""Celery entry points of delivery. Each takes ids, calls one service and returns.

Sends run on the "delivery" queue and builds on the "build" queue (workers:
``-Q default,delivery,build``, or separate workers per queue), so slow partner
endpoints never hold up the periodic dispatcher and a big build never delays a
send. The queue is given when the services queue them (the ``queue`` task
attribute is deprecated in Celery 5.x); ``CELERY_TASK_ROUTES`` routes them too.
A send never waits for a partner's limits inside the task: it goes back to the
queue with a countdown (``gateway.delivery.health``). All tasks are acks_late:
a message survives a worker crash, and the services' conditional claims make
running it twice harmless.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from gateway.delivery.horizon_watch import horizon_watch
from gateway.delivery.retention import bodies_expire_due, expiry_warnings_raise
from gateway.delivery.services import batch_build, batch_send, windows_dispatch
from gateway.delivery.streaming import stream_flush, streams_flush_waiting

logger = logging.getLogger(__name__)

DELIVERY_QUEUE = "delivery"
BUILD_QUEUE = "build"

# The sweeper treats a claim older than CELERY_TASK_TIME_LIMIT as dead, so no
# delivery task may run longer than that.
_HARD_LIMIT = settings.CELERY_TASK_TIME_LIMIT
_SOFT_LIMIT = settings.CELERY_TASK_SOFT_TIME_LIMIT
# A send is one HTTP request: a few timeouts' worth is plenty, and a stuck
# send is noticed quickly (its concurrency slot outlives this limit a little).
_SEND_HARD_LIMIT = settings.DELIVERY_SEND_TIME_LIMIT
# The dispatcher runs every few seconds; one that overruns is skipped, not queued up.
_DISPATCH_HARD_LIMIT = min(_HARD_LIMIT, 120)


def _soft(hard: int) -> int | None:
    """A soft limit shortly before the hard one, so the task can record its failure."""
    return hard - 10 if hard > 20 else None


@shared_task(
    name="delivery.dispatch_due_windows",
    acks_late=True,
    time_limit=_DISPATCH_HARD_LIMIT,
    soft_time_limit=_soft(_DISPATCH_HARD_LIMIT),
    ignore_result=True,
)
def dispatch_due_windows() -> None:
    now = timezone.now()
    windows_dispatch(now=now)
    # The safety net of streaming feeds: flush requests lost on the way.
    streams_flush_waiting(now=now)
    try:
        horizon_watch(now=now)
    except Exception:
        # Watching is best effort: it must never stop the dispatcher.
        logger.exception("watching the commit horizon failed")


@shared_task(
    name="delivery.build_batch",
    acks_late=True,
    time_limit=_HARD_LIMIT,
    soft_time_limit=_SOFT_LIMIT,
    ignore_result=True,
)
def build_batch(batch_id: str) -> None:
    batch_build(batch_id=batch_id)


@shared_task(
    bind=True,
    name="delivery.send_batch",
    acks_late=True,
    time_limit=_SEND_HARD_LIMIT,
    soft_time_limit=_soft(_SEND_HARD_LIMIT),
    ignore_result=True,
)
def send_batch(self: Task, batch_id: str) -> None:
    batch_send(batch_id=batch_id, task_id=self.request.id or "")


# A flush cuts and builds one micro-batch: seconds at most.
_FLUSH_HARD_LIMIT = min(_HARD_LIMIT, 120)


@shared_task(
    name="delivery.flush_stream",
    acks_late=True,
    time_limit=_FLUSH_HARD_LIMIT,
    soft_time_limit=_soft(_FLUSH_HARD_LIMIT),
    ignore_result=True,
)
def flush_stream(feed_id: int) -> None:
    stream_flush(feed_id=feed_id)


@shared_task(
    name="delivery.expire_batch_bodies",
    acks_late=True,
    time_limit=_HARD_LIMIT,
    soft_time_limit=_SOFT_LIMIT,
    ignore_result=True,
)
def expire_batch_bodies() -> None:
    now = timezone.now()
    expiry_warnings_raise(now=now)
    bodies_expire_due(now=now)
