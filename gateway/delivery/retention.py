"""How long batch bodies are kept: ``BATCH_BODY_RETENTION_DAYS`` after their build.

A body is the exposures as the partner received them (pseudonymised, but
still about people): it is kept for replays, pull downloads and audits, not
forever. Once a batch is done with, and built longer ago than the retention
period, ``bodies_expire`` deletes its body and notes when
(``Batch.body_expired_at``); the batch row stays, with its digest, counts and
attempts, so the feed's history and reconciliation are whole.

Done with means delivered, failed (dead, retries exhausted) or superseded,
or, on a pull feed, ready: a partner has the retention period to download
it. A batch being built, sent or waiting for a retry keeps its body. An
expired batch cannot be replayed or downloaded again (410 on the partner
API); re-building its window makes new batches from the exposures, as long
as they are kept.

Pull batches never downloaded are announced before they go: a feed notice
(``bodies_expiring``) once their body is due to expire within
``EXPIRY_WARNING_DAYS``, so a partner manager can chase the partner.

A batch is marked first (``body_expired_at``), with a conditional update
that fails if its state moved meanwhile (a replay claimed it); from then on
nothing reads its body. The body is deleted after that, and ``body_path``
cleared once it is gone: a deletion that fails (storage out of reach) is
tried again at the next run, so no expired body is left behind.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from gateway.delivery.models import Batch, FeedNotice
from gateway.delivery.storage import bodies_delete
from gateway.errors import DeliveryError
from partners.models import Feed

logger = logging.getLogger(__name__)

# Batches expired per chunk, and how long one run keeps taking chunks: a
# streaming feed makes hundreds of thousands of batches a day, so a run goes
# on while there are more, within a budget well inside the task's time limit.
DEFAULT_LIMIT = 500
RUN_SECONDS = 600
# How long before its body expires a pull batch nobody downloaded is announced.
EXPIRY_WARNING_DAYS = 3
BODIES_EXPIRING = "bodies_expiring"

_DONE_WITH = Q(
    status__in=[Batch.Status.DELIVERED, Batch.Status.FAILED, Batch.Status.SUPERSEDED]
) | Q(status=Batch.Status.READY, feed__mode=Feed.Mode.PULL)


def attempt_body_error(batch: Batch) -> DeliveryError | None:
    """Why an attempt (push or upload) cannot read ``batch``'s body, if it cannot: permanent.

    Its body expired under the retention policy, or was never stored.
    """
    if batch.body_expired_at is not None:
        return DeliveryError(
            f"its body was deleted on {batch.body_expired_at:%Y-%m-%d} under the retention "
            "policy (BATCH_BODY_RETENTION_DAYS); re-build its window to send its exposures again",
            transient=False,
        )
    if not batch.body_path:
        return DeliveryError("the batch has no body", transient=False)
    return None


def retention_period() -> timedelta | None:
    """How long a body is kept after its build; None when the policy keeps them forever (0 days)."""
    days = settings.BATCH_BODY_RETENTION_DAYS
    return timedelta(days=days) if days else None


def retention_cutoff(*, now: datetime) -> datetime | None:
    """Bodies built before this may go; None when the policy keeps them forever."""
    period = retention_period()
    return now - period if period else None


def bodies_expire_due(
    *, now: datetime, seconds: float = RUN_SECONDS, limit: int = DEFAULT_LIMIT
) -> int:
    """Expire every body past retention, ``limit`` at a time, for at most ``seconds``; how many."""
    stop = time.monotonic() + seconds
    expired = 0
    while True:
        chunk = bodies_expire(now=now, limit=limit)
        expired += chunk
        if chunk < limit or time.monotonic() >= stop:
            return expired


def bodies_expire(*, now: datetime, limit: int = DEFAULT_LIMIT) -> int:
    """Expire up to ``limit`` bodies past retention; returns how many batches expired.

    Then deletes the bodies expired, these and any whose deletion failed before.
    """
    cutoff = retention_cutoff(now=now)
    if cutoff is None:
        return 0
    expirable = Batch.objects.filter(
        _DONE_WITH, built_at__lt=cutoff, body_expired_at__isnull=True
    ).exclude(body_path="")
    due = list(expirable.order_by("built_at").values_list("pk", flat=True)[:limit])
    # One update, checked again row by row: a batch whose state moved meanwhile
    # (a replay claimed it) is no longer done with, and keeps its body.
    expired = expirable.filter(pk__in=due).update(body_expired_at=now)
    if expired:
        logger.info("expired the bodies of %d batches built before %s", expired, cutoff)
    _expired_bodies_delete(limit=limit)
    return expired


def _expired_bodies_delete(*, limit: int) -> None:
    undeleted = dict(
        Batch.objects.filter(body_expired_at__isnull=False)
        .exclude(body_path="")
        .order_by("body_expired_at")
        .values_list("pk", "body_path")[:limit]
    )
    # What could not be deleted keeps its body_path, for the next run to try again.
    deleted = bodies_delete(list(undeleted.values()))
    if deleted:
        # Each name holds its batch's id, so a name deleted is that batch's body.
        Batch.objects.filter(
            pk__in=[batch_id for batch_id, path in undeleted.items() if path in deleted],
            body_path__in=deleted,
        ).update(body_path="")
    if len(deleted) < len(undeleted):
        logger.warning(
            "%d expired batch bodies not deleted; the next run tries again",
            len(undeleted) - len(deleted),
        )


def expiry_warnings_raise(*, now: datetime) -> int:
    """A notice per pull feed with batches never downloaded whose body expires soon; how many.

    One open notice per feed at a time: none is added while the last is not
    acknowledged.
    """
    cutoff = retention_cutoff(now=now + timedelta(days=EXPIRY_WARNING_DAYS))
    if cutoff is None:
        return 0
    undownloaded = Batch.objects.filter(
        feed__mode=Feed.Mode.PULL,
        status=Batch.Status.READY,
        first_downloaded_at__isnull=True,
        body_expired_at__isnull=True,
        built_at__lt=cutoff,
    ).exclude(body_path="")
    raised = 0
    for feed in Feed.objects.filter(pk__in=undownloaded.values("feed_id")).select_related(
        "partner"
    ):
        if feed.notices.filter(code=BODIES_EXPIRING, acknowledged_at__isnull=True).exists():
            continue
        batches = undownloaded.filter(feed=feed)
        oldest = batches.order_by("built_at").first()
        period = retention_period()
        assert oldest is not None and oldest.built_at is not None and period is not None
        expires = oldest.built_at + period
        message = (
            f"{batches.count()} batches of {feed.partner.slug}/{feed.name} were never "
            f"downloaded and lose their bodies within {EXPIRY_WARNING_DAYS} days under the "
            f"retention policy, the first (#{oldest.sequence}) on {expires:%Y-%m-%d %H:%M} UTC."
        )
        FeedNotice.objects.create(
            feed=feed, level=FeedNotice.Level.WARNING, code=BODIES_EXPIRING, message=message
        )
        logger.warning("feed %s: %s", feed, message)
        raised += 1
    return raised
