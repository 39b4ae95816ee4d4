"""Validated exposure rows, as the ingest API hands them to ``exposures_insert``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.ingest.insert import ExposureRow

OCCURRED = datetime(2026, 11, 24, 9, 15, 0, 123456, tzinfo=UTC)


def exposure_row(event_id: str, **fields: Any) -> ExposureRow:
    """A valid, normalised record occurring at ``OCCURRED``; ``fields`` add or replace fields."""
    record: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": "2026-11-24T09:15:00.123456Z",
        "event_type": "impression",
        "media_type": "audio",
        "content_type": "podcast",
        "advertiser_id": "adv-1",
        "campaign_id": "cmp-1",
        "line_item_id": "li-1",
        "creative_id": "cr-1",
        **fields,
    }
    return ExposureRow(occurred_at=OCCURRED, record=record)
