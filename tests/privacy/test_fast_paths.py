"""The filter's fast paths give exactly what a plain walk of the rules gives.

The filter keeps a route per signal key, runs generated (or compiled C) selectors
with inlined caches, and reads signal keys in C where the speedups are compiled.
Here each mode ("compiled" where ``gateway.privacy._speedups`` is built, and
"python") is compared, byte for byte and key order included, with a
straightforward reference: ``evaluate`` for the decision and a recursive walk of
the compiled plan that calls each transform as a plain function, on generated
events of every shape (missing keys, wrong types, NaN, nested values, odd
flags) and on many realistic ones, for several policies.
"""

from __future__ import annotations

import enum
import json
import math
import random
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.privacy import (
    allowlist,
    consent,
    network,
    pseudonyms,
    signals,
    speedups,
    transform,
)
from gateway.privacy import filter as privacy_filter
from gateway.privacy.activities import ActivityRuleSpec
from gateway.privacy.allowlist import KEEP, REMOVE, PlanNode, copy_json
from gateway.privacy.consent import evaluate
from gateway.privacy.policy import PartnerPolicy
from gateway.privacy.pseudonyms import pseudonymise
from gateway.privacy.transform import PREVIOUS_SUFFIX, plan_for

from .builders import exposure, tc_string
from .engine_builders import policy

COMPILED = signals._speedups is not None
MODES = [
    pytest.param(
        "compiled",
        marks=pytest.mark.skipif(not COMPILED, reason="gateway.privacy._speedups is not built"),
    ),
    "python",
]
FEED = frozenset(
    {
        "event_id", "occurred_at", "event_type", "campaign_id", "device.type", "device.os",
        "device.ifa", "geo.country", "geo.region", "geo.lat", "geo.lon", "user_id",
        "household_id", "ip", "user_agent",
    }
)  # fmt: skip
RULES = (
    ActivityRuleSpec(
        activity="transmit_precise_geo", position=1, effect="deny", countries=frozenset({"DE"})
    ),
    ActivityRuleSpec(activity="transmit_user_ids", position=1, effect="deny", coppa=True),
)
POLICIES = {
    "measurement feed": {"field_allowlist": FEED, "activity_rules": RULES},
    "whole objects": {"field_allowlist": frozenset({"device", "geo", "user_id", "consent", "ip"})},
    "rotation": {"field_allowlist": FEED, "previous_pseudonym_key": b"previous-key-0123456789"},
    "coarse": {
        "field_allowlist": FEED | {"geo.city", "geo.postal_code"},
        "geo_decimals": 0,
        "ipv4_prefix_bits": 16,
        "ipv6_prefix_bits": 32,
        "user_agent_level": "major",
        "honour_lmt": False,
    },
    "no key": {"field_allowlist": FEED, "pseudonym_key": b"", "user_agent_level": "full"},
}
TC_STRINGS = (
    tc_string(),
    tc_string(purpose_consents={1, 2, 7}, special_feature_opt_ins={1}),
    tc_string(purpose_consents={2, 7}),
    tc_string(vendor_consents=set()),
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test with the compiled speedups, then with the Python code alone."""
    if request.param == "python":
        monkeypatch.setattr(privacy_filter, "signal_key", signals.python_signal_key)
        monkeypatch.setattr(consent, "signal_key", signals.python_signal_key)
        monkeypatch.setattr(allowlist, "_speedups", None)
        monkeypatch.setattr(transform, "_speedups", None)
        monkeypatch.setattr(network, "_speedups", None)
        monkeypatch.setattr(pseudonyms, "_speedups", None)
        monkeypatch.setattr(pseudonyms, "_keyed", {})  # key schedules made without the C HMAC
    return str(request.param)


# --- The reference ----------------------------------------------------------------------


def reference(
    event: Any, partner: PartnerPolicy, plans: dict[frozenset[str], PlanNode]
) -> tuple[Any, str | None, tuple[str, ...]]:
    """The decision, the record as JSON and the audit keys, computed the plain way."""
    result = evaluate(event, partner)
    if not result.decision.eligible:
        return result.decision, None, result.audit
    plan = plans.get(result.denied_activities)
    if plan is None:
        plan = plans[result.denied_activities] = plan_for(partner, result.denied_activities)
    kept = _walk(event, plan, event, partner)
    record = {} if kept is REMOVE else kept
    previous = partner.previous_pseudonym_key
    if previous:
        for name in ("user_id", "household_id"):
            if name in record:
                value = pseudonymise(event[name], key=previous)
                if value is not None:
                    record[name + PREVIOUS_SUFFIX] = value
        device = record.get("device")
        if type(device) is dict and "ifa" in device:
            value = pseudonymise(event["device"]["ifa"], key=previous)
            if value is not None:
                device["ifa" + PREVIOUS_SUFFIX] = value
    return result.decision, json.dumps(record), result.audit


def _walk(value: Any, node: PlanNode, event: Any, partner: PartnerPolicy) -> Any:
    # The allowlist's semantics, without any generated or compiled selector.
    if node.transform is not None:
        return node.transform(value, event, partner)
    if node.keeps_whole:
        return copy_json(value)
    if not isinstance(value, Mapping):
        return REMOVE
    out: dict[str, Any] = {}
    if node.other is None:
        for key, step, _transform in node.step_items:
            if key in value:
                item = value[key]
                kept = copy_json(item) if step is KEEP else _walk(item, step, event, partner)
                if kept is not REMOVE:
                    out[key] = kept
        return out or REMOVE
    for key, item in value.items():
        step = node.steps.get(key, KEEP)
        kept = copy_json(item) if step is KEEP else _walk(item, step, event, partner)
        if kept is not REMOVE:
            out[key] = kept
    return out


def assert_same_as_reference(events: list[Any], partner: PartnerPolicy) -> None:
    # Twice: the first pass leaves routes and cached values, the second one uses them.
    plans: dict[frozenset[str], PlanNode] = {}
    for _ in range(2):
        for event in events:
            result, record = privacy_filter.filter_with_result(event, partner)
            decision, plain = privacy_filter.filter_event(event, partner)
            expected = reference(event, partner, plans)
            assert (result.decision, _json(record), result.audit) == expected
            assert (decision, _json(plain)) == expected[:2]


def _json(record: dict[str, Any] | None) -> str | None:
    return None if record is None else json.dumps(record)


# --- Generated events -----------------------------------------------------------------

odd = st.sampled_from(
    [None, True, False, 0, 1, 2, -1, 1.0, math.nan, math.inf, "", "x", [], {}, [1], {"a": 1}]
)
flags = st.one_of(st.sampled_from([None, True, False, 0, 1]), odd)
strings = st.one_of(st.text(max_size=12), odd)
consents = st.one_of(
    odd,
    st.fixed_dictionaries(
        {},
        optional={
            "gdpr": st.one_of(st.sampled_from([None, 0, 1]), odd),
            "tcf": st.one_of(st.sampled_from(TC_STRINGS), strings),
            "gpp": st.one_of(st.sampled_from(["DBABTA~1YNN", "DBABLA~CVVVAAAAAABA.YA"]), odd),
            "gpp_sid": st.one_of(st.lists(st.sampled_from([2, 6, 7, 8]), max_size=3), odd),
            "us_privacy": st.one_of(st.sampled_from(["1YNN", "1YYN", ""]), odd),
            "gpc": flags,
            "coppa": flags,
        },
    ),
)
coordinates = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-200, 200), odd)
geos = st.one_of(
    odd,
    st.fixed_dictionaries(
        {},
        optional={
            "country": st.one_of(st.sampled_from(["US", "DE", "GB", "us", "USA", "U1"]), odd),
            "region": st.one_of(st.sampled_from(["CA", "09", "US-CA", "ca", "A", "ZZZZ"]), odd),
            "city": strings,
            "postal_code": strings,
            "lat": coordinates,
            "lon": coordinates,
        },
    ),
)
devices = st.one_of(
    odd,
    st.fixed_dictionaries(
        {},
        optional={
            "type": strings,
            "os": strings,
            "ifa": st.one_of(st.uuids().map(str), strings),
            "lmt": flags,
            "atts": st.one_of(st.integers(-1, 4), odd),
        },
    ),
)
scalars = st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.booleans(), st.none())
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
events = st.fixed_dictionaries(
    {},
    optional={
        "event_id": values,
        "occurred_at": values,
        "event_type": values,
        "campaign_id": values,
        "user_id": st.one_of(st.text(max_size=10), values),
        "household_id": st.one_of(st.text(max_size=10), values),
        "ip": st.one_of(
            st.ip_addresses().map(str), st.sampled_from(["010.0.0.1", "::ffff:1.2.3.4"]), values
        ),
        "user_agent": st.one_of(
            st.sampled_from(["Spotify/8.9.1 iOS/17.1.1 (iPhone15,2)", "curl/8"]), values
        ),
        "device": devices,
        "geo": geos,
        "consent": consents,
        "user_id_previous": values,
    },
)


@SETTINGS
@given(event=st.one_of(events, odd), name=st.sampled_from(sorted(POLICIES)))
def test_any_event_is_filtered_as_the_plain_walk_filters_it(
    mode: str, event: Any, name: str
) -> None:
    assert_same_as_reference([event], policy(**POLICIES[name]))


@SETTINGS
@given(event=st.one_of(events, odd))
def test_the_signal_key_in_c_is_the_python_one(event: Any) -> None:
    if not COMPILED:
        pytest.skip("gateway.privacy._speedups is not built")
    if not isinstance(event, Mapping):
        return  # the filter reads no key for those
    try:
        expected = signals.python_signal_key(event)
    except Exception as exc:
        with pytest.raises(type(exc)):
            signals.signal_key(event)
        return
    key = signals.signal_key(event)
    assert key == expected
    assert key is None or [type(v) for v in key] == [type(v) for v in expected or ()]


# --- Realistic events -------------------------------------------------------------------


def realistic_events(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Listeners in sessions, as in bench/privacy.py: shared values and fresh dicts."""
    rng = random.Random(seed)
    people = [_person(rng, n) for n in range(count // 6 + 1)]
    for n in range(count):
        person = rng.choice(people)
        event = exposure(
            event_id=f"evt-{n}",
            device=dict(person["device"]),
            geo=dict(person["geo"]),
            consent=dict(person["consent"]),
            user_id=person["user_id"],
            household_id=person["household_id"],
            ip=person["ip"],
            user_agent=person["user_agent"],
        )
        if rng.random() < 0.1:
            event = json.loads(json.dumps(event))  # fresh strings, as parsing gives
        yield event


def _person(rng: random.Random, n: int) -> dict[str, Any]:
    area = rng.random()
    if area < 0.45:
        geo: dict[str, Any] = {"country": rng.choice(["DE", "FR", "GB"]), "region": "09"}
        consent_object: dict[str, Any] = {"gdpr": 1, "tcf": rng.choice(TC_STRINGS)}
    elif area < 0.95:
        geo = {"country": "US", "region": rng.choice(["CA", "NY", "TX", "VA"])}
        consent_object = {"gdpr": 0, "us_privacy": rng.choice(["1YNN", "1YYN"])}
        consent_object["gpc"] = rng.random() < 0.1
    else:
        geo = {"country": "BR", "region": "01"}
        consent_object = {"gdpr": 0}
    consent_object["coppa"] = rng.random() < 0.05
    if rng.random() < 0.6:
        geo.update(lat=round(rng.uniform(-95, 95), 5), lon=round(rng.uniform(-185, 185), 5))
    ip = ".".join(str(rng.randrange(256)) for _ in range(4))
    if rng.random() < 0.2:
        ip = f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
    return {
        "user_id": f"user-{n}",
        "household_id": f"hh-{n // 3}",
        "device": {
            "type": "mobile",
            "os": "ios",
            "ifa": f"{rng.getrandbits(128):032x}",
            "lmt": rng.random() < 0.15,
        },
        "ip": ip,
        "user_agent": rng.choice(
            ["Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0", "Spotify/8.9.1 Android/34", "x"]
        ),
        "geo": geo,
        "consent": consent_object,
    }


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_realistic_events_are_filtered_as_the_plain_walk_filters_them(mode: str, name: str) -> None:
    assert_same_as_reference(list(realistic_events(3_000)), policy(**POLICIES[name]))


def test_small_caches_start_over_without_changing_an_answer(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "PSEUDONYM_CACHE_SIZE",
        "IP_CACHE_SIZE",
        "USER_AGENT_CACHE_SIZE",
        "COORDINATE_CACHE_SIZE",
    ):
        monkeypatch.setattr(transform, name, 7)
    monkeypatch.setattr(privacy_filter, "ROUTE_CACHE_SIZE", 5)
    monkeypatch.setattr(consent, "SHARED_CACHE_SIZE", 3)
    assert_same_as_reference(list(realistic_events(1_000)), policy(**POLICIES["rotation"]))


def test_caches_are_kept_per_policy_and_never_shared_between_partners(mode: str) -> None:
    event = exposure()
    first = policy(field_allowlist=FEED, pseudonym_key=b"first-key")
    second = policy(field_allowlist=FEED, pseudonym_key=b"second-key")

    _, one = privacy_filter.filter_event(event, first)
    _, other = privacy_filter.filter_event(event, second)

    assert one is not None and other is not None
    assert one["user_id"] != other["user_id"]
    first_cache = _pseudonym_cache(first)
    second_cache = _pseudonym_cache(second)
    assert first_cache is not second_cache
    assert first_cache[event["user_id"]] == one["user_id"]
    assert second_cache[event["user_id"]] == other["user_id"]


def test_a_new_policy_starts_with_empty_caches(mode: str) -> None:
    event = exposure()
    privacy_filter.filter_event(event, policy(field_allowlist=FEED))

    assert _pseudonym_cache(policy(field_allowlist=FEED)) == {}


def _pseudonym_cache(partner: PartnerPolicy) -> dict[Any, Any]:
    user_id = dict(transform._policy_transforms(partner).fields)["user_id"]
    assert isinstance(user_id, allowlist.CachedTransform)
    return user_id.cache


def test_the_speedups_can_be_switched_off_and_a_bad_setting_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(speedups.ENVIRONMENT_VARIABLE, "0")
    assert speedups.speedups_load() is None

    monkeypatch.setenv(speedups.ENVIRONMENT_VARIABLE, "yes")
    with pytest.raises(ValueError, match="must be 0 or 1"):
        speedups.speedups_load()


class _Text(str):
    """A str subclass: never read as a plain string by the fast paths."""


class _Flag(enum.IntEnum):
    OFF = 0
    ON = 1


def unusual_events() -> list[Any]:
    """Events the fast paths must hand to the Python code, whole or in part."""
    plain = exposure(consent={"gdpr": 1, "tcf": TC_STRINGS[1], "gpc": False, "coppa": False})
    variants: list[Any] = [MappingProxyType(dict(plain)), {1: "x", **plain}]
    for path, value in (
        ("consent", MappingProxyType({"gdpr": 0, "us_privacy": "1YNN"})),
        ("consent", {"gdpr": True}),
        ("consent", {"gdpr": _Flag.ON, "tcf": TC_STRINGS[0]}),
        ("consent", {"gdpr": 1, "tcf": _Text(TC_STRINGS[0])}),
        ("consent", {"gdpr": 0, "gpc": _Flag.ON, "coppa": 1, "gpp_sid": (2, 6)}),
        ("consent", {"gdpr": 0, "gpp_sid": [True]}),
        ("geo", MappingProxyType({"country": "US", "region": "CA", "lat": 1.234})),
        ("geo", {"country": _Text("US"), "region": _Text("CA")}),
        ("geo", {"country": "us", "region": "us-ca", "lat": True, "lon": 2}),
        ("geo", {"country": "DE", "region": "09", "lat": -0.004, "lon": 179.999}),
        ("device", MappingProxyType({"ifa": "A-B", "lmt": 0})),
        ("device", {"ifa": _Text("A-B"), "atts": _Flag.ON, "lmt": "yes"}),
        ("device", {"ifa": "", "atts": True, "type": ["x"]}),
        ("user_id", _Text("user-1")),
        ("ip", _Text("203.0.113.9")),
        ("user_agent", _Text("Spotify/8.9.1 iOS/17.1.1 (iPhone15,2)")),
        ("event_id", {"nested": ["value", 1]}),
        ("campaign_id", (1, 2)),
    ):
        event = dict(plain)
        event[path] = value
        variants.append(event)
    return variants


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_unusual_events_are_filtered_as_the_plain_walk_filters_them(mode: str, name: str) -> None:
    assert_same_as_reference(unusual_events(), policy(**POLICIES[name]))


def test_unusual_events_get_the_python_signal_key() -> None:
    for event in unusual_events():
        assert signals.signal_key(event) == signals.python_signal_key(event)
