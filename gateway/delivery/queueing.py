"""Queueing the build and send tasks of a batch, after the current transaction commits.

Shared by dispatch, build and send (``gateway.delivery.services`` and
``gateway.delivery.build``), so none of them imports another for it. Builds
go to the "build" queue and sends to the "delivery" queue, so a big build
never waits in front of a send.
"""

from __future__ import annotations

import uuid
from functools import partial

from django.db import transaction

BatchId = uuid.UUID | str


def enqueue_build(batch_id: BatchId) -> None:
    # Imported here: the tasks module imports the services.
    from gateway.delivery.tasks import BUILD_QUEUE, build_batch

    build_batch.apply_async(args=[str(batch_id)], queue=BUILD_QUEUE)


def enqueue_send(batch_id: BatchId, countdown: float = 0) -> None:
    from gateway.delivery.tasks import DELIVERY_QUEUE, send_batch

    send_batch.apply_async(args=[str(batch_id)], queue=DELIVERY_QUEUE, countdown=countdown or None)


def on_commit_build(batch_id: BatchId) -> None:
    """Queue the build of ``batch_id`` once the transaction commits."""
    # robust: a broker hiccup for one batch must not skip the others; the
    # sweeper re-queues whatever was not sent.
    transaction.on_commit(partial(enqueue_build, batch_id), robust=True)


def on_commit_send(batch_id: BatchId, countdown: float = 0) -> None:
    """Queue a send of ``batch_id`` (after ``countdown`` seconds) once the transaction commits."""
    transaction.on_commit(partial(enqueue_send, batch_id, countdown), robust=True)
