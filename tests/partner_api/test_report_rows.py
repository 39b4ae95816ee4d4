"""Validation of posted report rows, without HTTP or a database."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.errors import PayloadTooLarge, PermissionDenied, ValidationFailed
from gateway.partner_api.report_rows import MAX_ROWS, ReportRow, report_rows_parse

TODAY = date(2026, 11, 25)


def _parse(body: object) -> list[ReportRow]:
    return report_rows_parse(body, partner_slug="nielsen", metrics={"impressions"}, today=TODAY)


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "campaign_id": "cmp-1",
        "date": "2026-11-24",
        "metric": "impressions",
        "value": 100,
    }
    row.update(overrides)
    return {key: value for key, value in row.items() if value is not ...}


def _errors(body: object) -> list[tuple[int, str, str]]:
    with pytest.raises(ValidationFailed) as exc:
        _parse(body)
    return [(e["index"], e["field"], e["code"]) for e in exc.value.extra["errors"]]


def test_a_single_object_is_one_row() -> None:
    assert _parse(_row()) == [
        ReportRow(campaign_id="cmp-1", date=date(2026, 11, 24), metric="impressions", value=100)
    ]


def test_an_array_keeps_its_order_and_today_is_allowed() -> None:
    rows = _parse([_row(value=0), _row(campaign_id="cmp-2", date="2026-11-25", partner="nielsen")])
    assert [(r.campaign_id, r.date, r.value) for r in rows] == [
        ("cmp-1", date(2026, 11, 24), 0),
        ("cmp-2", date(2026, 11, 25), 100),
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"campaign_id": ...}, "campaign_id", "required"),
        ({"campaign_id": ""}, "campaign_id", "invalid"),
        ({"campaign_id": 42}, "campaign_id", "invalid"),
        ({"campaign_id": "c" * 65}, "campaign_id", "invalid"),
        ({"date": "24/11/2026"}, "date", "invalid_date"),
        ({"date": "20261124"}, "date", "invalid_date"),
        ({"date": "2026-02-30"}, "date", "invalid_date"),
        ({"date": "2026-11-26"}, "date", "date_in_future"),
        ({"metric": "clicks"}, "metric", "unknown_metric"),
        ({"value": -1}, "value", "invalid_value"),
        ({"value": 1.5}, "value", "invalid_value"),
        ({"value": "100"}, "value", "invalid_value"),
        ({"value": True}, "value", "invalid_value"),
        ({"value": 2**63}, "value", "invalid_value"),
        ({"value": None}, "value", "invalid_value"),
        ({"partner": 7}, "partner", "invalid"),
        ({"valeu": 3}, "valeu", "unknown_field"),
    ],
)
def test_each_bad_field_is_reported_with_its_index(
    overrides: dict[str, Any], field: str, code: str
) -> None:
    assert _errors([_row(campaign_id="cmp-0"), _row(**overrides)]) == [(1, field, code)]


def test_every_bad_row_is_reported_not_only_the_first() -> None:
    assert _errors([_row(value=-1), _row(campaign_id="cmp-2"), "oops", _row(metric="x")]) == [
        (0, "value", "invalid_value"),
        (2, "", "not_an_object"),
        (3, "metric", "unknown_metric"),
    ]


def test_the_same_key_twice_in_one_body_is_refused() -> None:
    assert _errors([_row(value=1), _row(value=2)]) == [(1, "campaign_id", "duplicate_row")]


@pytest.mark.parametrize("body", [[], {}, "text", 3, None])
def test_bodies_that_are_not_rows_are_refused(body: object) -> None:
    with pytest.raises(ValidationFailed):
        _parse(body)


def test_more_than_the_maximum_rows_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as exc:
        _parse([_row()] * (MAX_ROWS + 1))
    assert exc.value.code == "too_many_rows"


def test_a_row_for_another_partner_forbids_the_whole_request_before_field_errors() -> None:
    with pytest.raises(PermissionDenied) as exc:
        _parse([_row(value=-1), _row(partner="comscore")])
    assert exc.value.code == "partner_mismatch"
    assert exc.value.extra == {"index": 1}
