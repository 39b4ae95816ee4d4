"""Parsing of the batch list's query parameters, without HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import InvalidRequest
from gateway.partner_api.params import (
    DEFAULT_LIMIT,
    BatchListParams,
    Cursor,
    batch_list_params,
    parse_rfc3339,
)


def _parse(**params: str) -> BatchListParams:
    return batch_list_params([(name, [value]) for name, value in params.items()])


def _fields(exc: pytest.ExceptionInfo[InvalidRequest]) -> list[str]:
    return [error["field"] for error in exc.value.extra["errors"]]


def test_no_parameters_give_the_defaults() -> None:
    assert _parse() == BatchListParams(feed=None, since=None, limit=DEFAULT_LIMIT, cursor=None)


def test_all_parameters_are_parsed() -> None:
    cursor = Cursor(window_start=datetime(2026, 11, 24, 9, tzinfo=UTC), batch_id=uuid.uuid4())
    params = _parse(
        feed="exposures", since="2026-11-24T00:00:00Z", limit="500", cursor=cursor.encode()
    )
    assert params == BatchListParams(
        feed="exposures",
        since=datetime(2026, 11, 24, tzinfo=UTC),
        limit=500,
        cursor=cursor,
    )


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5", "", "9999999", "\u0661\u0660"])
def test_a_limit_outside_1_to_500_names_the_limit_field(limit: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        _parse(limit=limit)
    assert exc.value.status == 400
    assert _fields(exc) == ["limit"]
    assert "limit" in exc.value.detail


@pytest.mark.parametrize(
    "since", ["yesterday", "2026-11-24", "2026-11-24T00:00:00", "2026-13-01T00:00:00Z", ""]
)
def test_since_must_be_rfc3339_with_an_offset(since: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        _parse(since=since)
    assert _fields(exc) == ["since"]


def test_an_unencoded_plus_in_the_offset_is_understood() -> None:
    # "?since=2026-11-24T01:00:00+01:00" decodes to a space where the "+" was.
    assert parse_rfc3339("2026-11-24T01:00:00 01:00") == datetime(2026, 11, 24, tzinfo=UTC)


def test_fractional_seconds_beyond_microseconds_are_accepted() -> None:
    parsed = parse_rfc3339("2026-11-24T00:00:00.123456789-05:00")
    assert parsed.utcoffset() == timedelta(hours=-5)
    assert parsed.microsecond == 123456


def test_a_cursor_that_was_not_issued_by_the_api_is_refused() -> None:
    with pytest.raises(InvalidRequest) as exc:
        _parse(cursor="bm90LWEtY3Vyc29y")
    assert _fields(exc) == ["cursor"]


def test_a_cursor_survives_encoding() -> None:
    cursor = Cursor(window_start=datetime(2026, 11, 24, 9, 30, tzinfo=UTC), batch_id=uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


def test_unknown_and_repeated_parameters_are_reported_together() -> None:
    with pytest.raises(InvalidRequest) as exc:
        batch_list_params([("offset", ["10"]), ("limit", ["1", "2"]), ("feed", [""])])
    assert _fields(exc) == ["offset", "limit", "feed"]
    assert [e["code"] for e in exc.value.extra["errors"]] == [
        "unknown_parameter",
        "repeated_parameter",
        "blank",
    ]
