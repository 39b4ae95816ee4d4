"""Test data for delivery: exposures in a window, and batches in a given state."""

from __future__ import annotations

import gzip
import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from gateway.delivery.body import BodyWriter
from gateway.delivery.first_signature import FirstSignature
from gateway.delivery.models import Batch
from gateway.delivery.signing import signature_headers
from gateway.delivery.storage import body_name, body_read, body_save
from gateway.ingest.models import Exposure
from partners.models import Feed
from tests.factories import exposure_payload

# A whole minute, so windows of 60 s start exactly here.
WINDOW_START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
# A claim reaching past every commit sequence: tests run inside one open
# transaction, which the commit horizon never passes, so batches they build by
# hand claim everything instead (claims themselves are tested with commits).
CLAIM_ALL = 2**62


def batch_body(batch: Batch) -> bytes:
    """The uncompressed body a batch stored."""
    return gzip.decompress(body_read(batch.body_path))


def first_signature_verified(batch: Batch, *, secret: str) -> FirstSignature:
    """The signatures ``batch``'s build made, verified as the partner holding ``secret`` would,
    over the body stored, whose SHA-256 they recorded."""
    first = FirstSignature.from_json(batch.first_signature)
    assert first is not None, "the build signed the batch"
    headers = signature_headers(
        msg_id=str(batch.pk), timestamp=first.timestamp, signatures=first.signatures
    )
    Webhook(secret).verify(batch_body(batch), headers, json_parse=False)
    assert first.stored_sha256 == hashlib.sha256(body_read(batch.body_path)).hexdigest()
    return first


def make_exposure(
    *, received_at: datetime, occurred_at: datetime | None = None, **overrides: Any
) -> Exposure:
    """An exposure whose columns agree with its payload, as ingest would store it."""
    occurred_at = occurred_at or received_at
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
    window_end: datetime | None = None,
    status: Batch.Status = Batch.Status.PENDING,
    records: Iterable[dict[str, Any]] = (),
    **fields: Any,
) -> Batch:
    """A batch of ``feed``; with ``records`` it carries a gzip NDJSON body of them."""
    writer = BodyWriter()
    for record in records:
        writer.write(record)
    body = writer.finish()
    batch_id = fields.setdefault("id", uuid.uuid4())
    fields.setdefault("claim_to", CLAIM_ALL)
    if body.records:
        name = body_name(feed_id=feed.pk, batch_id=batch_id)
        fields.setdefault("body_path", body_save(name=name, content=body.file))
        fields.setdefault("body_sha256", body.sha256)
        fields.setdefault("body_bytes", body.uncompressed_bytes)
        fields.setdefault("delivered_count", body.records)
    return Batch.objects.create(
        feed=feed,
        sequence=sequence,
        window_start=window_start,
        window_end=window_end or window_start + timedelta(seconds=feed.batch_window_seconds),
        status=status,
        **fields,
    )
