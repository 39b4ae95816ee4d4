"""Test data for delivery: exposures in a window, and batches in a given state."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.delivery.body import BodyWriter
from gateway.delivery.models import Batch
from gateway.ingest.models import Exposure
from partners.models import Feed
from tests.factories import exposure_payload

# A whole minute, so windows of 60 s start exactly here.
WINDOW_START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_exposure(
    *, received_at: datetime, occurred_at: datetime | None = None, **overrides: Any
) -> Exposure:
    """An exposure whose columns agree with its payload, as ingest would store it."""
    occurred_at = occurred_at or received_at - timedelta(seconds=5)
    payload = exposure_payload(occurred_at=occurred_at.isoformat(), **overrides)
    return Exposure.objects.create(
        event_id=payload["event_id"],
        occurred_at=occurred_at,
        received_at=received_at,
        event_type=payload["event_type"],
        media_type=payload["media_type"],
        content_type=payload["content_type"],
        advertiser_id=payload["advertiser_id"],
        campaign_id=payload["campaign_id"],
        line_item_id=payload["line_item_id"],
        creative_id=payload["creative_id"],
        payload=payload,
    )


def make_batch(
    *,
    feed: Feed,
    sequence: int = 1,
    window_start: datetime = WINDOW_START,
    status: Batch.Status = Batch.Status.PENDING,
    records: Iterable[dict[str, Any]] = (),
    **fields: Any,
) -> Batch:
    """A batch of ``feed``; with ``records`` it carries a gzip NDJSON body of them."""
    writer = BodyWriter()
    for record in records:
        writer.write(record)
    body = writer.finish()
    if body.records:
        fields.setdefault("body_gzip", body.gzip_bytes)
        fields.setdefault("body_sha256", body.sha256)
        fields.setdefault("body_bytes", body.uncompressed_bytes)
        fields.setdefault("delivered_count", body.records)
    return Batch.objects.create(
        feed=feed,
        sequence=sequence,
        window_start=window_start,
        window_end=window_start + timedelta(seconds=feed.batch_window_seconds),
        status=status,
        **fields,
    )
