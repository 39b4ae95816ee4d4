"""The Celery application: broker from settings, periodic schedule in code."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("measurement_gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _create_broker_folders(sender: Celery, **_: object) -> None:
    # kombu's filesystem transport expects its folders to exist already.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _install_periodic_schedule(sender: Celery, **_: object) -> None:
    from django.conf import settings

    # Beat only enqueues small "dispatch" tasks; each creates per-feed,
    # per-window batches and queues one task per batch id.
    sender.conf.beat_schedule = {
        "delivery-dispatch-due-windows": {
            "task": "delivery.dispatch_due_windows",
            "schedule": float(settings.DISPATCH_INTERVAL_SECONDS),
            "options": {"expires": float(settings.DISPATCH_INTERVAL_SECONDS)},
        },
        "filedrop-check-deadlines": {
            "task": "filedrop.check_deadlines",
            "schedule": float(settings.FILEDROP_DEADLINE_CHECK_SECONDS),
            "options": {"expires": float(settings.FILEDROP_DEADLINE_CHECK_SECONDS)},
        },
        "delivery-expire-batch-bodies": {
            "task": "delivery.expire_batch_bodies",
            "schedule": float(settings.BATCH_BODY_RETENTION_CHECK_SECONDS),
            "options": {"expires": float(settings.BATCH_BODY_RETENTION_CHECK_SECONDS)},
        },
        "reconciliation-run": {
            "task": "reconciliation.run",
            "schedule": float(settings.RECONCILIATION_INTERVAL_SECONDS),
            "options": {"expires": float(settings.RECONCILIATION_INTERVAL_SECONDS)},
        },
    }
