"""Celery entry points of reconciliation; the work is in ``services``."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from gateway.reconciliation.services import reconcile_all

# Beat enqueues this every RECONCILIATION_INTERVAL_SECONDS (with the same
# expiry); a run over the limit is killed rather than overlapping the next.
TIME_LIMIT_SECONDS = 600
# Where it runs. Not a task attribute (deprecated in Celery 5): messages
# without a route go to CELERY_TASK_DEFAULT_QUEUE, which is this queue.
QUEUE = "default"


@shared_task(
    name="reconciliation.run",
    time_limit=TIME_LIMIT_SECONDS,
    soft_time_limit=TIME_LIMIT_SECONDS - 30,
)
def reconciliation_run() -> int:
    """Reconcile every active partner over the lookback window; returns the row count."""
    return len(reconcile_all(now=timezone.now()))
