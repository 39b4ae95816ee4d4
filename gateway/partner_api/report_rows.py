"""Validation of the rows partners post to ``/reports``, without Django.

All rows are checked before anything is stored and every problem is reported
with its index, so a partner can fix a whole file in one round trip.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.errors import PayloadTooLarge, PermissionDenied, ValidationFailed

MAX_ROWS = 1000
MAX_CAMPAIGN_ID_LENGTH = 64
# PartnerReport.value is a PositiveBigIntegerField: a signed 64-bit column.
MAX_VALUE = 2**63 - 1
REQUIRED_FIELDS = ("campaign_id", "date", "metric", "value")
OPTIONAL_FIELDS = ("partner",)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


@dataclass(frozen=True)
class ReportRow:
    """One validated count: ``value`` of ``metric`` for a campaign on a local day."""

    campaign_id: str
    date: dt.date
    metric: str
    value: int

    @property
    def key(self) -> tuple[str, dt.date, str]:
        return (self.campaign_id, self.date, self.metric)


def row_error(*, index: int, field: str, code: str, detail: str) -> dict[str, Any]:
    return {"index": index, "field": field, "code": code, "detail": detail}


def report_rows_parse(
    body: object, *, partner_slug: str, metrics: Collection[str], today: date
) -> list[ReportRow]:
    """The rows of ``body`` (an object or an array of objects), or an error for all of them.

    ``today`` is the partner's current local day: nobody has counted tomorrow.
    A row naming another partner makes the whole request 403, before any
    field errors, because the key is being used for someone else's data.
    """
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ValidationFailed("Send at least one report row.", code="empty_report")
    if len(items) > MAX_ROWS:
        raise PayloadTooLarge(
            f"Send at most {MAX_ROWS} rows per request; got {len(items)}.", code="too_many_rows"
        )
    for index, item in enumerate(items):
        claimed = item.get("partner") if isinstance(item, Mapping) else None
        if isinstance(claimed, str) and claimed != partner_slug:
            raise PermissionDenied(
                f"Row {index} is for partner {claimed!r}; this API key belongs to "
                f"{partner_slug!r}.",
                code="partner_mismatch",
                index=index,
            )

    rows: list[ReportRow] = []
    errors: list[dict[str, Any]] = []
    first_index: dict[tuple[str, date, str], int] = {}
    for index, item in enumerate(items):
        row, row_errors = _row_parse(item, index=index, metrics=metrics, today=today)
        errors.extend(row_errors)
        if row is None:
            continue
        if row.key in first_index:
            errors.append(
                row_error(
                    index=index,
                    field="campaign_id",
                    code="duplicate_row",
                    detail=f"Same campaign_id, date and metric as row {first_index[row.key]}.",
                )
            )
            continue
        first_index[row.key] = index
        rows.append(row)
    if errors:
        raise ValidationFailed(
            f"{len({e['index'] for e in errors})} of {len(items)} rows are invalid; "
            "nothing was stored.",
            errors=errors,
        )
    return rows


def _row_parse(
    item: object, *, index: int, metrics: Collection[str], today: date
) -> tuple[ReportRow | None, list[dict[str, Any]]]:
    if not isinstance(item, Mapping):
        return None, [
            row_error(index=index, field="", code="not_an_object", detail="Must be an object.")
        ]
    errors: list[dict[str, Any]] = []

    def fail(field: str, code: str, detail: str) -> None:
        errors.append(row_error(index=index, field=field, code=code, detail=detail))

    for field in item:
        if field not in REQUIRED_FIELDS and field not in OPTIONAL_FIELDS:
            fail(str(field), "unknown_field", "Unknown field.")
    for field in REQUIRED_FIELDS:
        if field not in item:
            fail(field, "required", "This field is required.")

    if "partner" in item and not isinstance(item["partner"], str):
        fail("partner", "invalid", "Must be your partner slug, as a string.")

    campaign_id = item.get("campaign_id")
    if "campaign_id" in item and (
        not isinstance(campaign_id, str)
        or not campaign_id.strip()
        or len(campaign_id) > MAX_CAMPAIGN_ID_LENGTH
    ):
        fail(
            "campaign_id",
            "invalid",
            f"Must be a string of 1 to {MAX_CAMPAIGN_ID_LENGTH} characters.",
        )

    day = None
    if "date" in item:
        day = _date_parse(item["date"])
        if day is None:
            fail("date", "invalid_date", "Must be a calendar date as YYYY-MM-DD.")
        elif day > today:
            fail(
                "date", "date_in_future", f"Must not be after {today.isoformat()} (your time zone)."
            )

    metric = item.get("metric")
    if "metric" in item and metric not in metrics:
        fail("metric", "unknown_metric", f"Must be one of: {', '.join(sorted(metrics))}.")

    value: Any = item.get("value")
    # bool is an int subclass in Python; true/false are not counts.
    if "value" in item and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_VALUE
    ):
        fail("value", "invalid_value", "Must be an integer of at least 0.")

    if errors or day is None:
        return None, errors
    return ReportRow(
        campaign_id=str(campaign_id), date=day, metric=str(metric), value=int(value)
    ), []


def _date_parse(value: object) -> date | None:
    # fromisoformat alone would also take "20261124" and week dates; the API says YYYY-MM-DD.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
