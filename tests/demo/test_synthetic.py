"""The synthetic exposure generator: deterministic, valid, and realistically mixed."""

from __future__ import annotations

import ipaddress
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.demo.catalog import CAMPAIGNS, DEMO_PARTNERS, DEMO_VENDOR_IDS
from gateway.demo.synthetic import (
    EU_CONSENT_WEIGHTS,
    US_CONSENT_WEIGHTS,
    EuConsent,
    ExposureGenerator,
    UsConsent,
    generate_exposures,
    tc_string,
)
from gateway.ingest.validation import exposure_validate
from gateway.privacy.regions import GDPR_COUNTRIES
from gateway.privacy.tcf import MalformedConsent, decode_tc_string

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return generate_exposures(count=10_000, seed=42, now=NOW)


def _eu_kind(consent: dict[str, Any]) -> EuConsent:
    try:
        decoded = decode_tc_string(consent["tcf"])
    except MalformedConsent:
        return EuConsent.MALFORMED
    if 7 not in decoded.purpose_consents:
        return EuConsent.NO_PURPOSE_7
    if not set(DEMO_VENDOR_IDS) <= decoded.vendor_consents:
        return EuConsent.NO_VENDOR
    return EuConsent.FULL


def _us_kind(consent: dict[str, Any]) -> UsConsent:
    if consent["coppa"]:
        return UsConsent.COPPA
    if consent["gpc"]:
        return UsConsent.GPC
    if consent["us_privacy"] == "1YYN":
        return UsConsent.OPT_OUT
    return UsConsent.STANDARD


def _shares(kinds: list[Any]) -> dict[Any, float]:
    counts = Counter(kinds)
    return {kind: n / len(kinds) for kind, n in counts.items()}


def _by_listener(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One event per listener: consent is a listener's, so shares are counted per listener."""
    return list({event["user_id"]: event for event in events}.values())


def test_the_same_seed_and_time_give_the_same_records() -> None:
    assert generate_exposures(count=500, seed=7, now=NOW) == generate_exposures(
        count=500, seed=7, now=NOW
    )


def test_another_seed_gives_other_records() -> None:
    first = generate_exposures(count=200, seed=1, now=NOW)
    second = generate_exposures(count=200, seed=2, now=NOW)

    assert {e["event_id"] for e in first}.isdisjoint(e["event_id"] for e in second)


def test_it_makes_exactly_the_requested_number_with_unique_event_ids(
    events: list[dict[str, Any]],
) -> None:
    assert len(events) == 10_000
    assert len({e["event_id"] for e in events}) == 10_000


def test_every_record_passes_the_ingest_contract(events: list[dict[str, Any]]) -> None:
    problems = [
        checked.problems
        for checked in (exposure_validate(record=e, now=NOW) for e in events)
        if checked.problems
    ]

    assert problems == []


def test_times_spread_over_the_last_three_days_and_none_in_the_future(
    events: list[dict[str, Any]],
) -> None:
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]

    assert min(times) >= NOW - timedelta(days=3, minutes=2)
    assert max(times) <= NOW
    assert len({t.date() for t in times}) >= 3
    assert times == sorted(times)


def test_the_funnel_narrows_from_impressions_to_completes_and_clicks_are_rare(
    events: list[dict[str, Any]],
) -> None:
    counts = Counter(e["event_type"] for e in events)
    funnel = ["impression", "start", "first_quartile", "midpoint", "third_quartile", "complete"]

    assert [counts[t] for t in funnel] == sorted((counts[t] for t in funnel), reverse=True)
    assert counts.most_common(1)[0][0] == "impression"
    assert 0 < counts["click"] < counts["impression"] * 0.03


def test_audio_and_video_with_music_podcast_and_video_content(
    events: list[dict[str, Any]],
) -> None:
    pairs = Counter((e["media_type"], e["content_type"]) for e in events)

    assert set(pairs) == {("audio", "music"), ("audio", "podcast"), ("video", "video")}
    assert pairs[("video", "video")] > 1000


def test_every_catalog_campaign_appears_including_those_no_partner_measures(
    events: list[dict[str, Any]],
) -> None:
    assigned = {c for partner in DEMO_PARTNERS for c in partner.campaign_ids}
    seen = {e["campaign_id"] for e in events}

    assert seen == {c.campaign_id for c in CAMPAIGNS}
    assert seen - assigned, "some campaigns must be assigned to no partner"


def test_about_fifteen_percent_of_ios_listeners_limit_ad_tracking_with_a_zero_idfa(
    events: list[dict[str, Any]],
) -> None:
    ios = [e for e in _by_listener(events) if e["device"]["os"] == "ios"]
    limited = [e for e in ios if e["device"]["lmt"]]

    assert 0.10 <= len(limited) / len(ios) <= 0.20
    assert {e["device"]["ifa"] for e in limited} == {"00000000-0000-0000-0000-000000000000"}


def test_addresses_are_ipv4_and_ipv6_from_documentation_ranges(
    events: list[dict[str, Any]],
) -> None:
    addresses = [ipaddress.ip_address(e["ip"]) for e in events]
    v6_share = sum(a.version == 6 for a in addresses) / len(addresses)

    assert 0.15 <= v6_share <= 0.35
    assert not any(a.is_global for a in addresses)


def test_geo_covers_us_states_and_eu_countries_and_the_uk(events: list[dict[str, Any]]) -> None:
    countries = Counter(e["geo"]["country"] for e in events)
    us_regions = {e["geo"]["region"] for e in events if e["geo"]["country"] == "US"}

    assert countries.most_common(1)[0][0] == "US"
    assert {"DE", "FR", "GB"} <= set(countries)
    assert len(us_regions) >= 5


def test_eu_traffic_has_gdpr_1_and_a_tc_string_and_us_traffic_gdpr_0_and_us_privacy(
    events: list[dict[str, Any]],
) -> None:
    for e in events:
        consent = e["consent"]
        if e["geo"]["country"] in GDPR_COUNTRIES:
            assert consent["gdpr"] == 1 and consent["tcf"]
            assert "us_privacy" not in consent
        else:
            assert consent["gdpr"] == 0 and consent["us_privacy"] in {"1YNN", "1YYN"}


def test_the_eu_consent_mix_matches_the_configured_proportions(
    events: list[dict[str, Any]],
) -> None:
    eu = [e for e in _by_listener(events) if e["consent"]["gdpr"] == 1]
    shares = _shares([_eu_kind(e["consent"]) for e in eu])

    for kind, expected in EU_CONSENT_WEIGHTS.items():
        assert shares.get(kind, 0) == pytest.approx(expected, abs=0.05), kind
        assert shares.get(kind, 0) > 0, kind


def test_the_us_consent_mix_matches_the_configured_proportions(
    events: list[dict[str, Any]],
) -> None:
    us = [e for e in _by_listener(events) if e["consent"]["gdpr"] == 0]
    shares = _shares([_us_kind(e["consent"]) for e in us])

    for kind, expected in US_CONSENT_WEIGHTS.items():
        assert shares.get(kind, 0) == pytest.approx(expected, abs=0.04), kind
    assert 0 < shares[UsConsent.COPPA] < 0.03


@pytest.mark.parametrize("kind", list(EuConsent))
def test_each_kind_of_tc_string_decodes_as_intended(kind: EuConsent) -> None:
    value = tc_string(consent=kind, vendor_ids=DEMO_VENDOR_IDS, created=NOW)

    assert _eu_kind({"tcf": value}) is kind


def test_all_three_kinds_of_malformed_string_fail_to_decode() -> None:
    for second in range(3):
        created = NOW.replace(second=second)
        value = tc_string(consent=EuConsent.MALFORMED, vendor_ids=DEMO_VENDOR_IDS, created=created)
        with pytest.raises(MalformedConsent):
            decode_tc_string(value)


def test_a_full_consent_string_grants_purposes_one_to_ten_and_the_demo_vendors() -> None:
    decoded = decode_tc_string(
        tc_string(consent=EuConsent.FULL, vendor_ids=DEMO_VENDOR_IDS, created=NOW)
    )

    assert decoded.purpose_consents == frozenset(range(1, 11))
    assert set(DEMO_VENDOR_IDS) <= decoded.vendor_consents
    assert decoded.created == NOW


def test_live_events_are_recent_and_new() -> None:
    generator = ExposureGenerator(seed=3, now=NOW, listeners=50)
    history = generator.exposures(100)
    later = NOW + timedelta(minutes=10)

    live = generator.live(20, now=later)

    assert len(live) == 20
    assert {e["event_id"] for e in live}.isdisjoint(e["event_id"] for e in history)
    for e in live:
        occurred = datetime.fromisoformat(e["occurred_at"])
        assert later - timedelta(minutes=3) <= occurred <= later
        assert exposure_validate(record=e, now=later).problems == []


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        ExposureGenerator(seed=1, now=datetime(2026, 1, 1))
