"""Test data of reconciliation: exposures at given instants, batches with per-day counts."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from gateway.delivery.models import Batch
from gateway.ingest.models import Exposure
from partners.models import Feed
from tests.factories import exposure_payload

_sequence = itertools.count(1)


def make_exposure(
    *, occurred_at: datetime, campaign_id: str = "cmp-1", **overrides: Any
) -> Exposure:
    """An exposure whose columns agree with its payload, as ingest stores it."""
    payload = exposure_payload(
        occurred_at=occurred_at.isoformat(), campaign_id=campaign_id, **overrides
    )
    return Exposure.objects.create(
        event_id=payload["event_id"],
        occurred_at=occurred_at,
        received_at=occurred_at + timedelta(seconds=5),
        event_type=payload["event_type"],
        media_type=payload["media_type"],
        content_type=payload["content_type"],
        advertiser_id=payload["advertiser_id"],
        campaign_id=campaign_id,
        line_item_id=payload["line_item_id"],
        creative_id=payload["creative_id"],
        payload=payload,
    )


def make_batch(
    *,
    feed: Feed,
    window_start: datetime,
    delivered: dict[str, int],
    status: Batch.Status = Batch.Status.DELIVERED,
    **fields: Any,
) -> Batch:
    """A batch of ``feed`` that delivered ``{"<campaign>|<day>|<event_type>": n}`` exposures."""
    return Batch.objects.create(
        feed=feed,
        sequence=next(_sequence),
        window_start=window_start,
        window_end=window_start + timedelta(seconds=feed.batch_window_seconds),
        status=status,
        delivered_count=sum(delivered.values()),
        delivered_by_campaign_day_event=delivered,
        **fields,
    )
