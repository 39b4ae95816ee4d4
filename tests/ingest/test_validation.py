"""The ingest contract: gateway.ingest.validation.exposure_validate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.ingest.validation import MAX_TEXT, Checked, InvalidJson, exposure_validate
from tests.factories import exposure_payload

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _check(**overrides: Any) -> Checked:
    return exposure_validate(record=exposure_payload(**overrides), now=NOW)


def _without(path: str) -> dict[str, Any]:
    record = exposure_payload()
    *parents, leaf = path.split(".")
    target = record
    for parent in parents:
        target = target[parent]
    del target[leaf]
    return record


def _codes(checked: Checked) -> set[tuple[str, str]]:
    return {(p["field"], p["code"]) for p in checked.problems}


# --- A valid record -------------------------------------------------------------


def test_a_valid_record_comes_back_normalised_with_occurred_at_in_utc() -> None:
    record = exposure_payload()

    checked = exposure_validate(record=record, now=NOW)

    assert checked.problems == []
    assert checked.record == {**record, "occurred_at": "2026-11-24T09:15:00Z"}
    assert checked.event_id == record["event_id"]
    assert checked.occurred_at == datetime(2026, 11, 24, 9, 15, tzinfo=UTC)


def test_the_input_record_is_not_modified() -> None:
    record = exposure_payload()
    before = repr(record)

    exposure_validate(record=record, now=NOW)

    assert repr(record) == before


def test_fractional_seconds_are_kept_to_the_microsecond_and_padded() -> None:
    assert _check(occurred_at="2026-11-24T10:15:00.5-02:30").record["occurred_at"] == (
        "2026-11-24T12:45:00.500000Z"
    )
    # Digits beyond microseconds are truncated, not rounded.
    assert _check(occurred_at="2026-11-24T10:15:00.123456789Z").record["occurred_at"] == (
        "2026-11-24T10:15:00.123456Z"
    )


def test_lower_case_t_and_z_are_accepted_as_rfc_3339_allows() -> None:
    assert _check(occurred_at="2026-11-24t10:15:00z").record["occurred_at"] == (
        "2026-11-24T10:15:00Z"
    )


def test_absent_optional_fields_are_omitted_not_filled_with_null() -> None:
    record = exposure_payload(consent={})
    for key in ("placement_id", "content_id", "household_id"):
        del record[key]
    del record["device"]["ifa"]
    record["geo"] = {"country": "DE"}

    checked = exposure_validate(record=record, now=NOW)

    assert checked.problems == []
    assert "placement_id" not in checked.record
    assert "household_id" not in checked.record
    assert checked.record["device"] == {"type": "mobile", "os": "ios", "lmt": False}
    assert checked.record["geo"] == {"country": "DE"}
    assert checked.record["consent"] == {}


def test_a_full_consent_object_is_kept_as_sent() -> None:
    consent = {
        "gdpr": 1,
        "tcf": "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        "gpp": "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        "gpp_sid": [2, 7],
        "us_privacy": "1---",
        "gpc": True,
        "coppa": False,
    }

    assert _check(consent=consent).record["consent"] == consent


def test_gdpr_null_is_accepted_and_kept() -> None:
    assert _check(consent={"gdpr": None}).record["consent"] == {"gdpr": None}


def test_an_ipv6_address_is_stored_in_its_canonical_form() -> None:
    assert _check(ip="2001:DB8:0:0::1").record["ip"] == "2001:db8::1"


# --- Shape ----------------------------------------------------------------------


@pytest.mark.parametrize("record", [[], "evt-1", 42, None, True])
def test_a_record_that_is_not_an_object_is_rejected(record: Any) -> None:
    checked = exposure_validate(record=record, now=NOW)

    assert checked.record is None
    assert _codes(checked) == {("", "wrong_type")}
    assert checked.event_id is None


def test_an_ndjson_line_that_was_not_json_is_rejected_with_its_parser_message() -> None:
    checked = exposure_validate(record=InvalidJson(detail="Expecting value"), now=NOW)

    assert checked.record is None
    assert checked.problems == [{"field": "", "code": "invalid_json", "detail": "Expecting value"}]


@pytest.mark.parametrize(
    "path",
    [
        "event_id",
        "occurred_at",
        "event_type",
        "media_type",
        "content_type",
        "advertiser_id",
        "campaign_id",
        "line_item_id",
        "creative_id",
        "device",
        "device.type",
        "device.os",
        "device.lmt",
        "ip",
        "user_agent",
        "geo",
        "geo.country",
        "user_id",
        "consent",
    ],
)
def test_a_missing_required_field_is_reported_as_required(path: str) -> None:
    checked = exposure_validate(record=_without(path), now=NOW)

    assert checked.record is None
    assert _codes(checked) == {(path, "required")}


@pytest.mark.parametrize(
    "path",
    [
        "placement_id",
        "content_id",
        "household_id",
        "device.ifa",
        "geo.region",
        "geo.city",
        "geo.postal_code",
        "geo.lat",
        "geo.lon",
        "consent.gdpr",
        "consent.us_privacy",
        "consent.gpc",
        "consent.coppa",
    ],
)
def test_an_optional_field_may_be_left_out(path: str) -> None:
    assert exposure_validate(record=_without(path), now=NOW).problems == []


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"event_id": 42}, "event_id"),
        ({"occurred_at": 1764064500}, "occurred_at"),
        ({"event_type": ["impression"]}, "event_type"),
        ({"campaign_id": 7}, "campaign_id"),
        ({"placement_id": None}, "placement_id"),
        ({"device": "mobile"}, "device"),
        ({"device": {"type": "mobile", "os": "ios", "lmt": "false"}}, "device.lmt"),
        ({"device": {"type": 1, "os": "ios", "lmt": False}}, "device.type"),
        ({"ip": 3405803853}, "ip"),
        ({"user_agent": None}, "user_agent"),
        ({"geo": {"country": "US", "lat": "37.8"}}, "geo.lat"),
        ({"geo": {"country": "US", "lon": True}}, "geo.lon"),
        ({"geo": {"country": "US", "city": 1}}, "geo.city"),
        ({"user_id": 123}, "user_id"),
        ({"consent": []}, "consent"),
        ({"consent": {"tcf": 1}}, "consent.tcf"),
        ({"consent": {"gpp_sid": "2,7"}}, "consent.gpp_sid"),
        ({"consent": {"gpc": 0}}, "consent.gpc"),
        ({"consent": {"coppa": "no"}}, "consent.coppa"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_rejected(override: dict[str, Any], path: str) -> None:
    checked = _check(**override)

    assert checked.record is None
    assert _codes(checked) == {(path, "wrong_type")}


# --- Strings and identifiers ------------------------------------------------------


@pytest.mark.parametrize(
    ("event_id", "code"),
    [
        ("", "too_short"),
        ("e" * 129, "too_long"),
        ("evt\n1", "not_printable"),
        ("a\x00b", "not_printable"),
    ],
)
def test_an_event_id_must_be_1_to_128_printable_characters(event_id: str, code: str) -> None:
    checked = _check(event_id=event_id)

    assert _codes(checked) == {("event_id", code)}
    assert checked.event_id is None


def test_an_event_id_of_exactly_128_characters_is_accepted() -> None:
    assert _check(event_id="e" * 128).problems == []


@pytest.mark.parametrize(
    "field", ["advertiser_id", "campaign_id", "line_item_id", "creative_id", "placement_id"]
)
def test_identifiers_must_be_1_to_64_characters(field: str) -> None:
    assert _codes(_check(**{field: ""})) == {(field, "too_short")}
    assert _codes(_check(**{field: "x" * 65})) == {(field, "too_long")}
    assert _check(**{field: "x" * 64}).problems == []


def test_a_user_agent_longer_than_1024_characters_is_rejected() -> None:
    assert _check(user_agent="u" * 1024).problems == []
    assert _codes(_check(user_agent="u" * 1025)) == {("user_agent", "too_long")}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_type", "view"),
        ("event_type", "Impression"),
        ("media_type", "radio"),
        ("content_type", "news"),
    ],
)
def test_an_enumerated_field_outside_its_choices_is_rejected(field: str, value: str) -> None:
    checked = _check(**{field: value})

    assert _codes(checked) == {(field, "invalid_choice")}
    assert "must be one of" in checked.problems[0]["detail"]


@pytest.mark.parametrize(
    "event_type",
    ["impression", "start", "first_quartile", "midpoint", "third_quartile", "complete", "click"],
)
def test_every_event_type_of_the_contract_is_accepted(event_type: str) -> None:
    assert _check(event_type=event_type).problems == []


# --- occurred_at ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["2026-11-24T10:15:00", "2026-11-24 10:15:00", "2026-11-24T10:15", "2026-11-24T10:15:00.5"],
)
def test_a_naive_timestamp_is_rejected_as_missing_its_offset(value: str) -> None:
    assert _codes(_check(occurred_at=value)) == {("occurred_at", "missing_offset")}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2026-11-24",
        "2026-11-24T10:15:00+0100",
        "20261124T101500Z",
        "2026-11-24T10:15:00 Z",
        "2026-02-30T10:15:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T10:15:60Z",
        "2026-11-24T10:15:00+24:00",
        "2026-11-24T10:15:00+01:60",
        "\uff12\uff10\uff12\uff16-11-24T10:15:00Z",  # full-width digits
        "9999-12-31T23:59:59-01:00",
        "Tue, 24 Nov 2026 10:15:00 GMT",
    ],
)
def test_a_timestamp_that_is_not_rfc_3339_is_rejected(value: str) -> None:
    assert _codes(_check(occurred_at=value)) == {("occurred_at", "invalid_timestamp")}


def test_a_timestamp_up_to_one_hour_ahead_of_now_is_accepted() -> None:
    assert _check(occurred_at="2026-11-25T13:00:00Z").problems == []
    assert _check(occurred_at="2026-11-25T14:00:00+01:00").problems == []


def test_a_timestamp_more_than_one_hour_ahead_of_now_is_rejected() -> None:
    assert _codes(_check(occurred_at="2026-11-25T13:00:00.000001Z")) == {
        ("occurred_at", "in_future")
    }


def test_a_timestamp_older_than_400_days_is_rejected() -> None:
    limit = NOW - timedelta(days=400)

    assert _check(occurred_at=limit.isoformat()).problems == []
    assert _codes(_check(occurred_at=(limit - timedelta(seconds=1)).isoformat())) == {
        ("occurred_at", "too_old")
    }


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        exposure_validate(record=exposure_payload(), now=datetime(2026, 11, 25, 12, 0))


# --- Network, geo and consent -------------------------------------------------------


@pytest.mark.parametrize(
    "ip", ["", "256.1.1.1", "203.0.113", "203.0.113.077", "fe80::1%eth0", "example.com", "::g"]
)
def test_an_invalid_ip_address_is_rejected(ip: str) -> None:
    assert _codes(_check(ip=ip)) == {("ip", "invalid_ip")}


@pytest.mark.parametrize("country", ["us", "USA", "U", "U1", "ÜS", ""])
def test_a_country_must_be_two_upper_case_letters(country: str) -> None:
    record = exposure_payload()
    record["geo"]["country"] = country

    checked = exposure_validate(record=record, now=NOW)

    assert _codes(checked) == {("geo.country", "invalid_country")}


@pytest.mark.parametrize(
    ("field", "value"),
    [("lat", 90.000001), ("lat", -91), ("lon", 180.5), ("lon", -181), ("lat", float("nan"))],
)
def test_coordinates_outside_the_globe_are_out_of_range(field: str, value: float) -> None:
    record = exposure_payload()
    record["geo"][field] = value

    assert _codes(exposure_validate(record=record, now=NOW)) == {(f"geo.{field}", "out_of_range")}


def test_coordinates_on_the_boundaries_are_accepted_as_integers_or_floats() -> None:
    assert _check(geo={"country": "NZ", "lat": -90, "lon": 180.0}).problems == []


@pytest.mark.parametrize("gdpr", [2, -1, True, "1", 1.0])
def test_gdpr_must_be_0_1_or_null(gdpr: Any) -> None:
    assert _codes(_check(consent={"gdpr": gdpr})) == {("consent.gdpr", "invalid_choice")}


def test_each_bad_gpp_section_id_is_reported_with_its_position() -> None:
    checked = _check(consent={"gpp_sid": [7, "8", True, 2.5]})

    assert _codes(checked) == {
        ("consent.gpp_sid[1]", "wrong_type"),
        ("consent.gpp_sid[2]", "wrong_type"),
        ("consent.gpp_sid[3]", "wrong_type"),
    }


# --- Unknown fields and collecting problems --------------------------------------------


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"email": "a@example.com"}, "email"),
        ({"device": {"type": "tv", "os": "tizen", "lmt": False, "model": "QN90"}}, "device.model"),
        ({"geo": {"country": "US", "dma": "807"}}, "geo.dma"),
        ({"consent": {"tcf_v3": "x"}}, "consent.tcf_v3"),
    ],
)
def test_an_unknown_field_at_any_level_rejects_the_record(
    override: dict[str, Any], path: str
) -> None:
    checked = _check(**override)

    assert checked.record is None
    assert _codes(checked) == {(path, "unknown_field")}


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfffy"])
@pytest.mark.parametrize("field", ["campaign_id", "user_agent", "user_id"])
def test_strings_the_database_cannot_store_are_rejected(field: str, value: str) -> None:
    assert _codes(_check(**{field: value})) == {(field, "invalid_character")}


def test_an_unknown_key_is_echoed_escaped_and_shortened() -> None:
    checked = _check(**{"bad\ud800\n": 1, "k" * 1000: 2})

    assert {p["field"] for p in checked.problems} == {
        "bad\\ud800\\n",
        "k" * MAX_TEXT + "...",
    }


def test_an_unknown_field_is_found_even_beside_members_with_several_problems() -> None:
    record = exposure_payload(consent={"gpp_sid": ["a", "b", "c"]}, extra=1)
    del record["event_type"]

    assert _codes(exposure_validate(record=record, now=NOW)) == {
        ("consent.gpp_sid[0]", "wrong_type"),
        ("consent.gpp_sid[1]", "wrong_type"),
        ("consent.gpp_sid[2]", "wrong_type"),
        ("event_type", "required"),
        ("extra", "unknown_field"),
    }


def test_all_problems_of_a_record_are_reported_together() -> None:
    record = exposure_payload(
        event_type="view",
        ip="not-an-ip",
        geo={"country": "usa", "lat": 123, "extra": 1},
        consent={"gdpr": 5},
        surprise=True,
    )
    del record["user_id"]

    checked = exposure_validate(record=record, now=NOW)

    assert _codes(checked) == {
        ("event_type", "invalid_choice"),
        ("ip", "invalid_ip"),
        ("geo.country", "invalid_country"),
        ("geo.lat", "out_of_range"),
        ("geo.extra", "unknown_field"),
        ("consent.gdpr", "invalid_choice"),
        ("surprise", "unknown_field"),
        ("user_id", "required"),
    }
    assert all(p["detail"] for p in checked.problems)
    # The event id itself was fine, so the error can name the row.
    assert checked.event_id == record["event_id"]


@pytest.mark.parametrize("status", [0, 1, 2, 3])
def test_it_accepts_an_ios_att_status(status: int) -> None:
    record = exposure_payload()
    record["device"]["atts"] = status
    checked = exposure_validate(record=record, now=NOW)
    assert not checked.problems
    assert checked.record["device"]["atts"] == status


@pytest.mark.parametrize("status", [4, -1, "2", True, 1.0])
def test_it_rejects_an_att_status_that_is_not_0_to_3(status: object) -> None:
    record = exposure_payload()
    record["device"]["atts"] = status
    checked = exposure_validate(record=record, now=NOW)
    assert [(p["field"], p["code"]) for p in checked.problems] == [
        ("device.atts", "invalid_choice")
    ]
