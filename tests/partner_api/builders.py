"""Test data of the partner API: batches with a real gzip NDJSON body."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.delivery.models import Batch
from gateway.delivery.storage import body_name, body_save
from partners.models import Feed

WINDOW_START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def ndjson(records: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(record, sort_keys=True).encode() + b"\n" for record in records)


def make_ready_batch(
    *,
    feed: Feed,
    sequence: int = 1,
    window_start: datetime = WINDOW_START,
    records: Sequence[dict[str, Any]] = ({"event_id": "evt-1", "campaign_id": "cmp-1"},),
    status: Batch.Status = Batch.Status.READY,
    **fields: Any,
) -> Batch:
    """A built batch of ``feed`` whose body holds ``records``, stored as delivery stores it."""
    body = ndjson(records)
    batch_id = fields.setdefault("id", uuid.uuid4())
    if "body_path" not in fields:
        name = body_name(feed_id=feed.pk, batch_id=batch_id)
        fields["body_path"] = body_save(name=name, content=io.BytesIO(gzip.compress(body)))
    fields.setdefault("body_sha256", hashlib.sha256(body).hexdigest())
    fields.setdefault("body_bytes", len(body))
    return Batch.objects.create(
        feed=feed,
        sequence=sequence,
        window_start=window_start,
        window_end=window_start + timedelta(seconds=feed.batch_window_seconds),
        status=status,
        delivered_count=len(records),
        **fields,
    )


def response_body(response: Any) -> bytes:
    """A download's bytes, whether streamed from storage (gzip feeds) or made in memory."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return bytes(response.content)
