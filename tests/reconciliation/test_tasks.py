"""The periodic reconciliation task: registered as beat expects, and doing the work."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from config.celery import app
from gateway.reconciliation import tasks
from gateway.reconciliation.models import Discrepancy, PartnerReport
from partners.models import Partner


def test_the_task_has_the_name_beat_schedules_and_explicit_limits() -> None:
    app.loader.import_default_modules()
    task = app.tasks["reconciliation.run"]
    assert task.name == tasks.reconciliation_run.name
    assert app.amqp.router.route({}, task.name)["queue"].name == tasks.QUEUE == "default"
    assert task.time_limit == tasks.TIME_LIMIT_SECONDS
    assert task.soft_time_limit < task.time_limit
    assert app.conf.beat_schedule["reconciliation-run"]["task"] == "reconciliation.run"


@pytest.mark.django_db
def test_running_the_task_reconciles_active_partners(partner: Partner) -> None:
    # The partner's today: reconciliation counts local days (UTC's date is a
    # day ahead of New York's every evening).
    today = timezone.localdate(timezone=ZoneInfo(partner.reporting_time_zone))
    PartnerReport.objects.create(
        partner=partner, campaign_id="cmp-1", date=today, metric="impressions", value=3
    )
    # Eagerly, as a worker would run it, without a broker.
    result = tasks.reconciliation_run.apply()
    assert result.successful()
    assert result.result == Discrepancy.objects.count() >= 1
