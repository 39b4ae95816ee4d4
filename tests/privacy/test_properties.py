"""Properties of the whole filter, over generated events, rules and consent strings.

- What a partner receives is a subset of what its rules allow: only allowlisted
  fields, never a field of a denied activity, nothing at all for a dropped event.
- Raw identifiers, full IPs and unrounded coordinates never appear in an output.
- Two partners never share a pseudonym.
- Random, truncated, wrong-alphabet and absurdly long consent strings never crash
  the engine and always fail closed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.privacy.activities import ACTIVITIES, FIELD_ACTIVITIES, ActivityRuleSpec
from gateway.privacy.consent import evaluate
from gateway.privacy.errors import MalformedConsent
from gateway.privacy.filter import ACTIVITY_FIELDS, filter_event
from gateway.privacy.gpp import decode_gpp_string
from gateway.privacy.gpp import reasons as gpp_reasons
from gateway.privacy.reasons import Reason
from gateway.privacy.tcf import decode_tc_string
from gateway.privacy.usprivacy import parse_us_privacy

from .builders import VENDOR_ID, tc_string
from .engine_builders import policy

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
HEX_64 = re.compile(r"[0-9a-f]{64}")
PATHS = (
    "event_id",
    "campaign_id",
    "user_id",
    "household_id",
    "device",
    "device.ifa",
    "device.os",
    "geo",
    "geo.country",
    "geo.region",
    "geo.lat",
    "geo.lon",
    "geo.city",
    "geo.postal_code",
    "ip",
    "user_agent",
    "consent",
)
TC_STRINGS = (
    tc_string(),
    tc_string(purpose_consents={1, 2, 7}, special_feature_opt_ins={1}),
    tc_string(purpose_consents={7}),
    tc_string(vendor_consents=set()),
    tc_string(is_service_specific=False),
)
GPP_STRINGS = (
    "DBABTA~1YNN",
    "DBABTA~1YYY",
    "DBABLA~CAAAAAAAAABA.QA",
    "DBABLA~CVVVAAAAAABA.YA",
    "DBABLA~CAAAAAAAAABk.QA",
    "DBABh2A~BAQAAABA.QA~BAEAABA~BAAAAEA.YA~BAAQAAQA~BAAAAFUA.QA",
)
FAIL_CLOSED = {
    Reason.MALFORMED_CONSENT,
    gpp_reasons.GPP_SID_MISMATCH,
    gpp_reasons.GPP_SECTION_UNSUPPORTED,
}

flags = st.sampled_from([None, True, False, 0, 1])
consents = st.fixed_dictionaries(
    {},
    optional={
        "gdpr": st.sampled_from([None, 0, 1]),
        "tcf": st.sampled_from(TC_STRINGS),
        "gpp": st.sampled_from(GPP_STRINGS),
        "gpp_sid": st.lists(st.sampled_from([2, 6, 7, 8, 9, 10, 11, 12]), max_size=3),
        "us_privacy": st.sampled_from(["1YNN", "1YYN", "1---", "1NYY", ""]),
        "gpc": flags,
        "coppa": flags,
    },
)
geos = st.fixed_dictionaries(
    {"country": st.sampled_from(["US", "DE", "GB", "BR", "FR"])},
    optional={
        "region": st.sampled_from(["CA", "FL", "VA", "US-CO", "TX", "BY"]),
        "city": st.sampled_from(["Oakland", "Berlin"]),
        "postal_code": st.sampled_from(["94607", "10115"]),
        "lat": st.floats(-89.999, 89.999).map(lambda v: round(v, 6) + 0.000123),
        "lon": st.floats(-179.999, 179.999).map(lambda v: round(v, 6) + 0.000123),
    },
)
devices = st.fixed_dictionaries(
    {"type": st.just("mobile"), "os": st.just("ios"), "lmt": st.booleans()},
    optional={
        "ifa": st.uuids().map(lambda u: str(u).upper()),
        "atts": st.sampled_from([0, 1, 2, 3]),
    },
)
events = st.fixed_dictionaries(
    {
        "event_id": st.just("evt-1"),
        "campaign_id": st.just("cmp-1"),
        "user_id": st.text(alphabet="abcdef0123456789-", min_size=6, max_size=20).map(
            lambda v: f"user-{v}"
        ),
        "household_id": st.just("hh-raw-9"),
        "device": devices,
        "geo": geos,
        "ip": st.ip_addresses(v=4).map(lambda a: str(a)).filter(lambda a: not a.endswith(".0")),
        "user_agent": st.just("Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0"),
        "consent": consents,
    }
)
rules = st.lists(
    st.builds(
        ActivityRuleSpec,
        activity=st.sampled_from(ACTIVITIES),
        position=st.integers(1, 5),
        effect=st.sampled_from(["allow", "deny"]),
        regimes=st.frozensets(st.sampled_from(["tcf", "us_state", "us_national", "none"])),
        countries=st.frozensets(st.sampled_from(["US", "DE", "BR"]), max_size=2),
        regions=st.frozensets(st.sampled_from(["US-CA", "US-FL"]), max_size=1),
        gpc=st.sampled_from([None, True, False]),
        coppa=st.sampled_from([None, True, False]),
    ),
    max_size=6,
)
policies = st.fixed_dictionaries(
    {
        "field_allowlist": st.frozensets(st.sampled_from(PATHS)),
        "activity_rules": rules.map(tuple),
        "activity_defaults": st.dictionaries(
            st.sampled_from(ACTIVITIES), st.sampled_from(["allow", "deny"])
        ).map(lambda d: tuple(sorted(d.items()))),
        "honour_gpc": st.booleans(),
        "honour_coppa": st.booleans(),
        "honour_lmt": st.booleans(),
        "honour_us_privacy_opt_out": st.booleans(),
        "default_regime": st.sampled_from(["none", "us_national", "deny"]),
    }
)


def _leaves(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        leaves = set().union(*(_leaves(v, f"{prefix}{k}.") for k, v in value.items()))
        return leaves or ({prefix[:-1]} if prefix else set())
    return {prefix[:-1]}


def _allowlisted(path: str, allowlist: frozenset[str]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:n]) in allowlist for n in range(1, len(parts) + 1))


@PROPERTY_SETTINGS
@given(event=events, overrides=policies)
def test_a_partner_receives_only_what_its_rules_allow(event: dict, overrides: dict) -> None:
    partner = policy(**overrides)
    result = evaluate(event, partner)
    decision, record = filter_event(event, partner)

    assert decision == result.decision
    if not decision.eligible:
        assert record is None
        return
    assert record is not None
    denied = result.denied
    assert "transmit_event" not in denied
    for path in _leaves(record):
        base = path.removesuffix("_previous")
        assert _allowlisted(base, partner.field_allowlist), path
        for activity in denied:
            for field in ACTIVITY_FIELDS[activity]:
                assert base != field and not base.startswith(field + "."), (path, activity)
    # The first matching rule's deny is always honoured.
    for activity in FIELD_ACTIVITIES:
        first = _first_match(partner.activity_rules, activity, result)
        if first is not None and first.effect == "deny":
            assert activity in denied


def _first_match(rules: tuple[ActivityRuleSpec, ...], activity: str, result) -> Any:
    key = result.signals.key
    region = f"{key.country}-{key.region}" if key.country and key.region else None
    for rule in sorted((r for r in rules if r.activity == activity), key=lambda r: r.position):
        if rule.regimes and rule.regimes.isdisjoint(result.regime.regimes):
            continue
        if rule.countries and key.country not in rule.countries:
            continue
        if rule.regions and region not in rule.regions:
            continue
        if rule.gpc is not None and rule.gpc != key.gpc:
            continue
        if rule.coppa is not None and rule.coppa != key.coppa:
            continue
        return rule
    return None


@PROPERTY_SETTINGS
@given(event=events, overrides=policies)
def test_raw_identifiers_full_ips_and_precise_coordinates_never_leave(
    event: dict, overrides: dict
) -> None:
    overrides["field_allowlist"] = overrides["field_allowlist"] - {"consent"}
    _decision, record = filter_event(event, policy(**overrides))
    if record is None:
        return
    text = json.dumps(record)
    for raw in (event["user_id"], event["household_id"], event["device"].get("ifa"), event["ip"]):
        if raw:
            assert raw not in text
    for field in ("user_id", "household_id"):
        if field in record:
            assert HEX_64.fullmatch(record[field])
    geo = record.get("geo", {})
    for axis in ("lat", "lon"):
        if axis in geo:
            assert geo[axis] != event["geo"][axis]
            assert round(geo[axis], 2) == geo[axis]


@PROPERTY_SETTINGS
@given(event=events)
def test_two_partners_never_share_a_pseudonym(event: dict) -> None:
    event["consent"] = {"gdpr": 0}
    event["device"]["lmt"] = False
    event["device"].pop("atts", None)
    fields = frozenset({"user_id", "household_id", "device.ifa"})
    _, one = filter_event(event, policy(field_allowlist=fields, pseudonym_key=b"partner-one"))
    _, two = filter_event(event, policy(field_allowlist=fields, pseudonym_key=b"partner-two"))

    assert one is not None and two is not None
    assert one["user_id"] != two["user_id"]
    assert one["household_id"] != two["household_id"]
    if "ifa" in event["device"]:
        assert one["device"]["ifa"] != two["device"]["ifa"]


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
fuzzed = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=BASE64URL + ".~", max_size=200),
    st.sampled_from(TC_STRINGS + GPP_STRINGS).flatmap(
        lambda s: st.integers(0, len(s) - 1).map(lambda n: s[:n])
    ),
    st.sampled_from(TC_STRINGS + GPP_STRINGS).flatmap(
        lambda s: st.tuples(st.integers(0, len(s) - 1), st.sampled_from("!*é ~.=+/")).map(
            lambda p: s[: p[0]] + p[1] + s[p[0] + 1 :]
        )
    ),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.integers(10_001, 12_000).map(lambda n: "C" * n),
)


def _decodes(field: str, value: str) -> bool:
    decoder = {"tcf": decode_tc_string, "gpp": decode_gpp_string, "us_privacy": parse_us_privacy}
    try:
        decoder[field](value)
    except MalformedConsent:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    field=st.sampled_from(["tcf", "gpp", "us_privacy"]),
    value=fuzzed,
    gdpr=st.sampled_from([0, 1]),
)
def test_fuzzed_consent_strings_never_crash_and_fail_closed(
    field: str, value: str, gdpr: int
) -> None:
    event = {
        "event_id": "evt-1",
        "user_id": "user-123",
        "geo": {"country": "US", "region": "CA"},
        "consent": {"gdpr": gdpr, field: value},
    }
    partner = policy(field_allowlist=frozenset({"event_id", "user_id"}))

    decision, record = filter_event(event, partner)

    if value and not _decodes(field, value):
        assert decision.reason == Reason.MALFORMED_CONSENT
        assert record is None
    elif not decision.eligible:
        assert decision.reason is not None
        assert decision.reason != Reason.FILTER_ERROR


def test_a_tc_string_for_the_vendor_with_every_purpose_is_not_malformed() -> None:
    # Sanity check of the oracle above: a valid string is not reported malformed.
    value = tc_string(purpose_consents=set(range(1, 11)), vendor_consents={VENDOR_ID})

    assert _decodes("tcf", value)
    assert FAIL_CLOSED.isdisjoint({evaluate({"consent": {"tcf": value}}, policy()).decision.reason})
