"""Read queries of the partner API: which batches a partner may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from gateway.delivery.models import Batch
from gateway.errors import NotFound
from gateway.partner_api.params import BatchListParams, Cursor, invalid_parameters
from partners.models import Feed, Partner

# Pull feeds stop at "ready"; "delivered" is listed too in case delivery ever
# marks a downloaded pull batch, so a partner can always fetch a body again.
PULLABLE_STATUSES = (Batch.Status.READY, Batch.Status.DELIVERED)


@dataclass(frozen=True)
class BatchPage:
    """One page of a partner's batches and the cursor of the next page, if any."""

    batches: list[Batch]
    next_cursor: Cursor | None


def pullable_batches(*, partner: Partner) -> QuerySet[Batch]:
    """Batches of ``partner``'s pull feeds whose body was built, and nobody else's.

    Those whose body expired under the retention policy are listed too, so a
    partner's sequence has no unexplained gaps; downloading one is 410.
    """
    return (
        Batch.objects.select_related("feed")
        .prefetch_related("supersedes")
        .filter(
            Q(body_expired_at__isnull=False) | ~Q(body_path=""),
            feed__partner=partner,
            feed__mode=Feed.Mode.PULL,
            status__in=PULLABLE_STATUSES,
        )
    )


def batch_page(*, partner: Partner, params: BatchListParams) -> BatchPage:
    """The batches ``params`` asks for, newest window first (ties broken by id)."""
    batches = pullable_batches(partner=partner)
    if params.feed is not None:
        if not partner.feeds.filter(name=params.feed, mode=Feed.Mode.PULL).exists():
            detail = f"You have no pull feed named {params.feed!r}."
            raise invalid_parameters([{"field": "feed", "code": "unknown_feed", "detail": detail}])
        batches = batches.filter(feed__name=params.feed)
    if params.since is not None:
        batches = batches.filter(window_start__gte=params.since)
    if params.cursor is not None:
        # Keyset pagination: stable while new batches arrive, unlike offsets.
        start, batch_id = params.cursor.window_start, params.cursor.batch_id
        batches = batches.filter(Q(window_start__lt=start) | Q(window_start=start, id__lt=batch_id))
    rows = list(batches.order_by("-window_start", "-id")[: params.limit + 1])
    if len(rows) <= params.limit:
        return BatchPage(batches=rows, next_cursor=None)
    last = rows[params.limit - 1]
    return BatchPage(
        batches=rows[: params.limit],
        next_cursor=Cursor(window_start=last.window_start, batch_id=last.id),
    )


def batch_for_partner(*, partner: Partner, batch_id: uuid.UUID) -> Batch:
    """``partner``'s pullable batch ``batch_id``, or NotFound.

    Another partner's batch is "not found" too, never "forbidden": a partner
    must not learn that a batch id exists.
    """
    batches = pullable_batches(partner=partner)
    batch = batches.filter(pk=batch_id).first()
    if batch is None:
        raise NotFound("No such batch.", code="batch_not_found")
    return batch
