"""JSON shapes of partner API responses, kept apart from views so they stay small."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework.request import Request

from gateway.delivery.encryption import JOSE_CONTENT_TYPE
from gateway.delivery.models import Batch
from gateway.delivery.wire import NDJSON_CONTENT_TYPE
from partners.models import Feed


def batch_data(*, batch: Batch, request: Request) -> dict[str, Any]:
    """A batch's metadata as a partner sees it (no internal counts or errors)."""
    encrypted = batch.feed.encryption != Feed.Encryption.NONE
    download_path = reverse("partner_api:batch-download", kwargs={"batch_id": str(batch.pk)})
    return {
        "id": str(batch.pk),
        "feed": batch.feed.name,
        "sequence": batch.sequence,
        # window | late (exposures of earlier windows that arrived after those
        # were cut) | stream | test; "supersedes": the batch a re-build replaces.
        "kind": batch.kind,
        # Which part of its claim this batch is (1 of 1 unless the feed caps
        # events or bytes per batch), and part 1's id on every part of a
        # claim in parts (its own on part 1).
        "part": batch.part,
        "part_count": batch.part_count,
        "first_part": _optional_id(batch.claim_first_part_id),
        "supersedes": _superseded_id(batch),
        "window_start": batch.window_start,
        "window_end": batch.window_end,
        "event_count": batch.delivered_count,
        "body_sha256": batch.body_sha256,
        "body_bytes": batch.body_bytes,
        # What the download will be: NDJSON (gzip-encoded or not), or for
        # encrypted feeds the JWE text ("application/jose", no encoding).
        "content_type": JOSE_CONTENT_TYPE if encrypted else NDJSON_CONTENT_TYPE,
        "content_encoding": "gzip" if batch.feed.gzip and not encrypted else "identity",
        # Null once the body was deleted under the retention policy (then
        # body_expired_at says when); downloading it is 410.
        "download_url": (
            None if batch.body_expired_at else request.build_absolute_uri(download_path)
        ),
        "body_expired_at": batch.body_expired_at,
    }


def _superseded_id(batch: Batch) -> str | None:
    # ``supersedes`` is prefetched by the selectors: no query per batch. A claim
    # delivered in parts is replaced whole; its first part is named.
    replaced = min(batch.supersedes.all(), key=lambda old: old.part, default=None)
    return str(replaced.pk) if replaced is not None else None


def _optional_id(value: object | None) -> str | None:
    return str(value) if value is not None else None
