from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from typing import Any

import pytest

from gateway.privacy.transform import transform_event

from .builders import RAW_HOUSEHOLD_ID, RAW_IFA, RAW_IP, RAW_USER_ID, exposure, policy

IDENTIFIERS = frozenset({"user_id", "household_id", "device.ifa"})
HEX_64 = re.compile(r"[0-9a-f]{64}")


def _transform(event: dict[str, Any], fields: set[str], **policy_overrides: Any) -> dict:
    return transform_event(event, policy(field_allowlist=frozenset(fields), **policy_overrides))


# --- Pseudonyms ----------------------------------------------------------------------------


def test_identifiers_are_sent_as_hmac_sha256_under_the_partners_key() -> None:
    key = b"partner-key"

    out = _transform(exposure(), IDENTIFIERS, pseudonym_key=key)

    expected = {raw: hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()
                for raw in (RAW_USER_ID, RAW_HOUSEHOLD_ID, RAW_IFA)}  # fmt: skip
    assert out == {
        "user_id": expected[RAW_USER_ID],
        "household_id": expected[RAW_HOUSEHOLD_ID],
        "device": {"ifa": expected[RAW_IFA]},
    }


def test_two_partners_never_see_the_same_pseudonym() -> None:
    nielsen = _transform(exposure(), IDENTIFIERS, pseudonym_key=b"nielsen")
    ias = _transform(exposure(), IDENTIFIERS, pseudonym_key=b"ias")

    assert nielsen["user_id"] != ias["user_id"]
    assert nielsen["household_id"] != ias["household_id"]
    assert nielsen["device"]["ifa"] != ias["device"]["ifa"]


def test_a_pseudonym_is_stable_for_the_same_key_and_value() -> None:
    first = _transform(exposure(), IDENTIFIERS)
    second = _transform(exposure(event_id="evt-2"), IDENTIFIERS)

    assert first == second
    assert HEX_64.fullmatch(first["user_id"])


def test_different_values_get_different_pseudonyms() -> None:
    one = _transform(exposure(user_id="user-1"), {"user_id"})
    two = _transform(exposure(user_id="user-2"), {"user_id"})

    assert one["user_id"] != two["user_id"]


def test_without_a_pseudonym_key_identifiers_are_removed() -> None:
    out = _transform(exposure(), IDENTIFIERS | {"event_id"}, pseudonym_key=b"")

    assert out == {"event_id": "evt-00000001"}


@pytest.mark.parametrize("user_id", [12345, None, "", ["user-123"], {"id": "user-123"}, True])
def test_an_identifier_that_is_not_a_non_empty_string_is_removed(user_id: object) -> None:
    out = _transform(exposure(user_id=user_id), {"user_id", "event_id"})

    assert out == {"event_id": "evt-00000001"}


def test_an_identifier_is_pseudonymised_when_its_parent_is_allowlisted() -> None:
    out = _transform(exposure(), {"device"})

    assert out["device"]["ifa"] != RAW_IFA
    assert HEX_64.fullmatch(out["device"]["ifa"])
    assert out["device"]["type"] == "mobile"


def test_a_path_below_an_identifier_does_not_reach_the_raw_value() -> None:
    event = exposure(device={"type": "mobile", "ifa": {"raw": RAW_IFA}, "lmt": False})

    out = _transform(event, {"device.ifa.raw", "device.type"})

    assert out == {"device": {"type": "mobile"}}


# --- Limit ad tracking ---------------------------------------------------------------------


@pytest.mark.parametrize("lmt", [True, 1])
def test_limit_ad_tracking_removes_the_advertising_id(lmt: object) -> None:
    event = exposure(device={"type": "mobile", "ifa": RAW_IFA, "lmt": lmt})

    out = _transform(event, {"device"})

    assert "ifa" not in out["device"]
    assert out["device"]["type"] == "mobile"


@pytest.mark.parametrize("lmt", ["false", 2, [0]], ids=["string", "two", "list"])
def test_an_unreadable_lmt_flag_counts_as_on(lmt: object) -> None:
    event = exposure(device={"type": "mobile", "ifa": RAW_IFA, "lmt": lmt})

    assert _transform(event, {"device.ifa"}) == {}


def test_an_absent_lmt_flag_counts_as_off() -> None:
    event = exposure(device={"type": "mobile", "ifa": RAW_IFA})

    assert HEX_64.fullmatch(_transform(event, {"device.ifa"})["device"]["ifa"])


def test_lmt_is_ignored_by_a_partner_that_does_not_honour_it() -> None:
    event = exposure(device={"type": "mobile", "ifa": RAW_IFA, "lmt": True})

    out = _transform(event, {"device.ifa"}, honour_lmt=False)

    assert HEX_64.fullmatch(out["device"]["ifa"])


# --- IP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("10.0.0.255", "10.0.0.0"),
        ("2001:db8:abcd:12ff:1234:5678:9abc:def0", "2001:db8:abcd:1200::"),
        ("2001:db8::1", "2001:db8::"),
    ],
)
def test_the_ip_is_truncated(ip: str, expected: str) -> None:
    assert _transform(exposure(ip=ip), {"ip"}) == {"ip": expected}


@pytest.mark.parametrize("ip", ["999.1.1.1", "203.0.113", "not an ip", "", 2130706433, None])
def test_an_ip_that_cannot_be_parsed_is_removed(ip: object) -> None:
    assert _transform(exposure(ip=ip), {"ip", "event_id"}) == {"event_id": "evt-00000001"}


# --- Allowlist -----------------------------------------------------------------------------


def test_a_dotted_path_keeps_only_that_nested_field() -> None:
    out = _transform(exposure(), {"geo.country", "device.os"})

    assert out == {"geo": {"country": "US"}, "device": {"os": "ios"}}


def test_a_parent_path_keeps_the_whole_object() -> None:
    out = _transform(exposure(), {"geo"})

    assert out == {"geo": exposure()["geo"]}


def test_fields_that_are_not_listed_are_removed() -> None:
    out = _transform(exposure(), {"event_id", "campaign_id"})

    assert out == {"event_id": "evt-00000001", "campaign_id": "cmp-1"}


def test_an_empty_allowlist_sends_nothing() -> None:
    assert _transform(exposure(), set()) == {}


def test_a_listed_field_missing_from_the_event_is_simply_absent() -> None:
    event = exposure()
    del event["geo"]["region"]

    assert _transform(event, {"geo.region", "event_id"}) == {"event_id": "evt-00000001"}


# --- What never leaves ---------------------------------------------------------------------


EVERYTHING = frozenset(
    {"event_id", "user_id", "household_id", "device", "ip", "geo", "consent", "user_agent"}
)


@pytest.mark.parametrize("lmt", [False, True])
def test_raw_identifiers_and_the_full_ip_never_reach_the_output(lmt: bool) -> None:
    event = exposure(device={"type": "mobile", "os": "ios", "ifa": RAW_IFA, "lmt": lmt})

    text = json.dumps(_transform(event, set(EVERYTHING)))

    for raw in (RAW_USER_ID, RAW_IFA, RAW_HOUSEHOLD_ID, RAW_IP):
        assert raw not in text
    assert "203.0.113.0" in text


def test_the_input_event_is_not_mutated() -> None:
    event = exposure(device={"type": "mobile", "ifa": RAW_IFA, "lmt": True})
    before = copy.deepcopy(event)

    _transform(event, set(EVERYTHING))

    assert event == before


def test_the_output_shares_no_mutable_object_with_the_input() -> None:
    event = exposure(geo={"country": "US", "extra": {"tags": ["a"]}})

    out = _transform(event, {"geo", "device"})
    out["geo"]["extra"]["tags"].append("b")
    out["device"]["os"] = "android"

    assert event["geo"]["extra"]["tags"] == ["a"]
    assert event["device"]["os"] == "ios"
