"""Celery entry points of delivery. Each takes ids, calls one service and returns.

Build and send run on the "delivery" queue (workers: ``-Q default,delivery``),
so slow partner endpoints never hold up the periodic dispatcher. The queue is
given when the services queue them (the ``queue`` task attribute is deprecated
in Celery 5.x); ``CELERY_TASK_ROUTES`` may route them too. All tasks are
acks_late: a message survives a worker crash, and the services' conditional
claims make running it twice harmless.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from gateway.delivery.services import batch_build, batch_send, windows_dispatch

DELIVERY_QUEUE = "delivery"

# The sweeper treats a claim older than CELERY_TASK_TIME_LIMIT as dead, so no
# delivery task may run longer than that.
_HARD_LIMIT = settings.CELERY_TASK_TIME_LIMIT
_SOFT_LIMIT = settings.CELERY_TASK_SOFT_TIME_LIMIT
# A send is one HTTP request: a few timeouts' worth is plenty, and a stuck
# send is noticed quickly.
_SEND_HARD_LIMIT = min(_HARD_LIMIT, settings.DELIVERY_TIMEOUT_SECONDS * 3 + 30)
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
    windows_dispatch(now=timezone.now())


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
