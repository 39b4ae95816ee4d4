"""Validated exposure rows, as the ingest API hands them to ``exposures_insert``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.ingest.insert import ExposureRow
from tests.privacy.builders import AD_SERVER_FIELDS

OCCURRED = datetime(2026, 11, 24, 9, 15, 0, 123456, tzinfo=UTC)


def exposure_row(event_id: str, **fields: Any) -> ExposureRow:
    """A valid, normalised record occurring at ``OCCURRED``; ``fields`` add or replace fields."""
    record: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": "2026-11-24T09:15:00.123456Z",
        **AD_SERVER_FIELDS,
        **fields,
    }
    return ExposureRow(occurred_at=OCCURRED, record=record)
