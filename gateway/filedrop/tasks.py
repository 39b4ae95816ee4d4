"""Celery entry points of file drops: thin, like every task (``gateway.delivery.tasks``).

Uploads themselves run in ``delivery.send_batch``; only the deadline check is here.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from gateway.filedrop.services import file_deadlines_check

# One query and a notice per missed batch: well under a minute.
_CHECK_HARD_LIMIT = 120


@shared_task(
    name="filedrop.check_deadlines",
    acks_late=True,
    time_limit=_CHECK_HARD_LIMIT,
    soft_time_limit=_CHECK_HARD_LIMIT - 10,
    ignore_result=True,
)
def check_deadlines() -> None:
    file_deadlines_check(now=timezone.now())
