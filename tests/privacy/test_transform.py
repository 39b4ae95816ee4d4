from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy.pseudonyms import pseudonymise, pseudonymiser
from gateway.privacy.transform import ACTIVITY_FIELDS, transform_event

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


@pytest.mark.parametrize("key", [b"k", b"k" * 64, b"k" * 65, bytes(range(256))])
@pytest.mark.parametrize("raw", ["user-123", "Zoë-ユーザー-🎧", "x" * 1000])
def test_pseudonyms_are_standard_hmac_sha256_for_any_key_and_value(key: bytes, raw: str) -> None:
    out = _transform(exposure(user_id=raw), {"user_id"}, pseudonym_key=key)

    assert out == {"user_id": hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()}


def test_a_value_without_a_utf8_form_is_removed() -> None:
    assert _transform(exposure(user_id="user-\ud800"), {"user_id", "event_id"}) == {
        "event_id": "evt-00000001"
    }


@pytest.mark.parametrize("value", ["user-123", "", None, 5, "user-\ud800", ["user-123"]])
@pytest.mark.parametrize("key", [b"partner-key", b"", "not-bytes"])
def test_a_bound_pseudonymiser_answers_as_pseudonymise(value: object, key: object) -> None:
    pseudonym = pseudonymiser(key)  # type: ignore[arg-type]

    for _ in range(2):  # the second time from the cache
        assert pseudonym(value) == pseudonymise(value, key=key)  # type: ignore[arg-type]


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


def test_a_parent_path_keeps_the_whole_object_minimised() -> None:
    out = _transform(exposure(), {"geo"})

    assert out == {"geo": {**exposure()["geo"], "lat": 37.8, "lon": -122.27}}


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


def test_the_policy_is_the_only_required_argument() -> None:
    # filter.py and older callers pass (event, policy) only.
    out = transform_event(exposure(), policy(field_allowlist=frozenset({"event_id"})))

    assert out == {"event_id": "evt-00000001"}


# --- Denied activities ---------------------------------------------------------------------


ALL_FIELDS = frozenset({"event_id", "user_id", "household_id", "device", "ip", "geo", "user_agent"})


def _paths(record: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in record.items():
        path = f"{prefix}{key}"
        paths |= _paths(value, f"{path}.") if isinstance(value, dict) else {path}
    return paths


@pytest.mark.parametrize("activity", sorted(ACTIVITY_FIELDS))
def test_a_denied_activity_removes_exactly_its_fields(activity: str) -> None:
    everything = _transform(exposure(), set(ALL_FIELDS))

    out = transform_event(
        exposure(),
        policy(field_allowlist=ALL_FIELDS),
        denied_activities=frozenset({activity}),
    )

    assert _paths(everything) - _paths(out) == set(ACTIVITY_FIELDS[activity])
    assert all(out_value_is_unchanged(everything, out, path) for path in _paths(out))


def out_value_is_unchanged(everything: dict[str, Any], out: dict[str, Any], path: str) -> bool:
    def get(record: dict[str, Any]) -> Any:
        for segment in path.split("."):
            record = record[segment]
        return record

    return get(everything) == get(out)


def test_the_activities_cover_the_fields_the_issue_names() -> None:
    assert dict(ACTIVITY_FIELDS) == {
        "transmit_user_ids": ("user_id", "household_id"),
        "transmit_device_ids": ("device.ifa",),
        "transmit_precise_geo": ("geo.lat", "geo.lon", "geo.city", "geo.postal_code"),
        "transmit_ip": ("ip",),
        "transmit_user_agent": ("user_agent",),
    }


def test_every_denied_activity_at_once_leaves_only_the_other_fields() -> None:
    out = transform_event(
        exposure(), policy(field_allowlist=ALL_FIELDS), denied_activities=frozenset(ACTIVITY_FIELDS)
    )

    assert out == {
        "event_id": "evt-00000001",
        "device": {"type": "mobile", "os": "ios", "lmt": False},
        "geo": {"country": "US", "region": "CA"},
    }


def test_a_denied_field_listed_by_its_own_path_is_removed_too() -> None:
    out = transform_event(
        exposure(),
        policy(field_allowlist=frozenset({"geo.lat", "geo.city", "geo.country"})),
        denied_activities=frozenset({"transmit_precise_geo"}),
    )

    assert out == {"geo": {"country": "US"}}


def test_denied_activities_may_be_any_iterable_of_names() -> None:
    out = transform_event(
        exposure(),
        policy(field_allowlist=frozenset({"ip", "event_id"})),
        denied_activities={"transmit_ip"},  # type: ignore[arg-type]
    )

    assert out == {"event_id": "evt-00000001"}


@pytest.mark.parametrize("activity", ["transmit_event", "transmit_userids", ""])
def test_a_denied_activity_without_fields_of_its_own_is_refused(activity: str) -> None:
    # transmit_event means "do not send"; an unknown name is an unreviewed denial.
    with pytest.raises(ValueError):
        transform_event(
            exposure(),
            policy(field_allowlist=ALL_FIELDS),
            denied_activities=frozenset({activity}),
        )


# --- Feed minimisation settings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "expected"),
    [(8, {"ip": "203.0.0.0"}), (24, {"ip": "203.0.113.0"}), (32, {"ip": "203.0.113.77"}), (0, {})],
)
def test_the_ipv4_prefix_comes_from_the_policy(bits: int, expected: dict) -> None:
    assert _transform(exposure(), {"ip"}, ipv4_prefix_bits=bits) == expected


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        (0, {}),
        (56, {"ip": "2001:db8:abcd:1200::"}),
        (128, {"ip": "2001:db8:abcd:12ff:1234:5678:9abc:def0"}),
    ],
)
def test_the_ipv6_prefix_comes_from_the_policy(bits: int, expected: dict) -> None:
    event = exposure(ip="2001:db8:abcd:12ff:1234:5678:9abc:def0")

    assert _transform(event, {"ip"}, ipv6_prefix_bits=bits) == expected


@pytest.mark.parametrize(
    ("decimals", "lat", "lon"), [(0, 38.0, -122.0), (2, 37.8, -122.27), (4, 37.8044, -122.2711)]
)
def test_lat_and_lon_are_rounded_to_the_policy_decimals(
    decimals: int, lat: float, lon: float
) -> None:
    out = _transform(exposure(), {"geo.lat", "geo.lon"}, geo_decimals=decimals)

    assert out == {"geo": {"lat": lat, "lon": lon}}


def test_city_and_postal_code_are_sent_only_when_allowlisted() -> None:
    assert _transform(exposure(), {"geo.country", "geo.lat"}) == {
        "geo": {"country": "US", "lat": 37.8}
    }
    assert _transform(exposure(), {"geo.city", "geo.postal_code"}) == {
        "geo": {"city": "Oakland", "postal_code": "94607"}
    }


@pytest.mark.parametrize("lat", ["37.8", None, 91.0, True])
def test_an_unusable_latitude_is_removed(lat: object) -> None:
    event = exposure(geo={"country": "US", "lat": lat, "lon": 1.234})

    assert _transform(event, {"geo"}) == {"geo": {"country": "US", "lon": 1.23}}


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("family", {"user_agent": "Podcasts; iOS"}),
        ("major", {"user_agent": "Podcasts 1580; iOS 16"}),
        ("full", {"user_agent": "Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0"}),
        ("remove", {}),
    ],
)
def test_the_user_agent_is_reduced_to_the_policy_level(level: str, expected: dict) -> None:
    assert _transform(exposure(), {"user_agent"}, user_agent_level=level) == expected


def test_the_user_agent_is_sent_only_when_allowlisted() -> None:
    assert _transform(exposure(), {"event_id"}, user_agent_level="full") == {
        "event_id": "evt-00000001"
    }


def test_an_unknown_user_agent_level_fails_rather_than_sending_the_string() -> None:
    with pytest.raises(ValueError):
        _transform(exposure(), {"user_agent"}, user_agent_level="everything")


# --- Pseudonym key rotation ----------------------------------------------------------------


OLD_KEY = b"old-key-of-the-partner"
NEW_KEY = b"new-key-of-the-partner"


def _hmac(key: bytes, raw: str) -> str:
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def test_during_an_overlap_each_pseudonym_comes_with_the_previous_keys_one() -> None:
    out = _transform(exposure(), IDENTIFIERS, pseudonym_key=NEW_KEY, previous_pseudonym_key=OLD_KEY)

    assert out == {
        "user_id": _hmac(NEW_KEY, RAW_USER_ID),
        "user_id_previous": _hmac(OLD_KEY, RAW_USER_ID),
        "household_id": _hmac(NEW_KEY, RAW_HOUSEHOLD_ID),
        "household_id_previous": _hmac(OLD_KEY, RAW_HOUSEHOLD_ID),
        "device": {"ifa": _hmac(NEW_KEY, RAW_IFA), "ifa_previous": _hmac(OLD_KEY, RAW_IFA)},
    }


def test_the_previous_pseudonym_links_to_what_the_partner_received_before_the_rotation() -> None:
    before = _transform(exposure(), IDENTIFIERS, pseudonym_key=OLD_KEY)
    during = _transform(
        exposure(), IDENTIFIERS, pseudonym_key=NEW_KEY, previous_pseudonym_key=OLD_KEY
    )
    after = _transform(exposure(), IDENTIFIERS, pseudonym_key=NEW_KEY)

    assert during["user_id_previous"] == before["user_id"]
    assert during["device"]["ifa_previous"] == before["device"]["ifa"]
    assert during["user_id"] == after["user_id"]
    assert "user_id_previous" not in after


def test_without_an_overlap_no_previous_pseudonym_is_sent() -> None:
    out = _transform(exposure(), IDENTIFIERS)

    assert not any(key.endswith("_previous") for key in out)
    assert "ifa_previous" not in out["device"]


def test_a_previous_pseudonym_is_sent_only_beside_a_current_one() -> None:
    lmt = exposure(device={"type": "mobile", "ifa": RAW_IFA, "lmt": True})

    out = transform_event(
        lmt,
        policy(
            field_allowlist=frozenset({"user_id", "device"}),
            previous_pseudonym_key=OLD_KEY,
        ),
        denied_activities=frozenset({"transmit_user_ids"}),
    )

    assert out == {"device": {"type": "mobile", "lmt": True}}


def test_previous_fields_in_the_event_are_never_copied() -> None:
    event = exposure(
        user_id_previous="raw-old-user",
        device={"type": "mobile", "ifa": RAW_IFA, "lmt": True, "ifa_previous": "raw-old-ifa"},
    )

    out = _transform(event, {"user_id_previous", "device"}, previous_pseudonym_key=OLD_KEY)

    assert out == {"device": {"type": "mobile", "lmt": True}}


def test_previous_pseudonyms_are_stable_for_the_previous_key() -> None:
    one = _transform(exposure(), {"user_id"}, previous_pseudonym_key=OLD_KEY)
    two = _transform(exposure(event_id="evt-2"), {"user_id"}, previous_pseudonym_key=OLD_KEY)

    assert one == two
    assert HEX_64.fullmatch(one["user_id_previous"])


@pytest.mark.parametrize("lmt", [False, True])
def test_no_raw_identifier_leaves_during_an_overlap(lmt: bool) -> None:
    event = exposure(device={"type": "mobile", "os": "ios", "ifa": RAW_IFA, "lmt": lmt})

    text = json.dumps(_transform(event, set(EVERYTHING), previous_pseudonym_key=OLD_KEY))

    for raw in (RAW_USER_ID, RAW_IFA, RAW_HOUSEHOLD_ID, RAW_IP):
        assert raw not in text


# --- Property: never more than the rules allow -----------------------------------------------


_CANDIDATE_PATHS = sorted(
    {"event_id", "user_id", "household_id", "device", "device.ifa", "device.os", "ip", "geo"}
    | {"geo.lat", "geo.lon", "geo.city", "geo.postal_code", "geo.country", "user_agent"}
    | {"user_id_previous", "device.ifa_previous", "consent"}
)


@given(
    allowlist=st.frozensets(st.sampled_from(_CANDIDATE_PATHS)),
    denied=st.frozensets(st.sampled_from(sorted(ACTIVITY_FIELDS))),
    ipv4_bits=st.integers(0, 32),
    decimals=st.integers(0, 6),
    level=st.sampled_from(["remove", "family", "major", "full"]),
    previous=st.booleans(),
    lmt=st.booleans(),
)
def test_the_record_never_holds_more_than_the_allowlist_and_activities_allow(
    allowlist: frozenset[str],
    denied: frozenset[str],
    ipv4_bits: int,
    decimals: int,
    level: str,
    previous: bool,
    lmt: bool,
) -> None:
    event = exposure(device={"type": "mobile", "os": "ios", "ifa": RAW_IFA, "lmt": lmt})
    rules = policy(
        field_allowlist=allowlist,
        ipv4_prefix_bits=ipv4_bits,
        geo_decimals=decimals,
        user_agent_level=level,
        previous_pseudonym_key=OLD_KEY if previous else b"",
    )

    out = transform_event(event, rules, denied_activities=denied)

    removed = {path for activity in denied for path in ACTIVITY_FIELDS[activity]}
    for path in _paths(out):
        base = path.removesuffix("_previous")
        assert any(".".join(base.split(".")[:n]) in allowlist for n in (1, 2)), path
        assert base not in removed, path
    text = json.dumps(out)
    for raw in (RAW_USER_ID, RAW_IFA, RAW_HOUSEHOLD_ID):
        assert raw not in text
    if ipv4_bits < 32:
        assert RAW_IP not in text
    if "geo" in out and "lat" in out["geo"]:
        assert out["geo"]["lat"] == round(37.80437, decimals)
    if lmt:
        assert "ifa" not in out.get("device", {})
