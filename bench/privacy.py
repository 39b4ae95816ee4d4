"""Privacy filter throughput: decisions + minimisation per event, beside plain serialisation.

    .venv/bin/python bench/privacy.py --events 1000000

No database and no Django: the filter is pure Python. The script builds N
synthetic exposures over a realistic mix of about 2 000 distinct consent
strings (TC strings from our encoder with varied purposes, vendors, special
features and publisher restrictions; US Privacy strings; GPP strings; GPC,
COPPA and limit-ad-tracking flags) from EU, US and other countries, and one
partner policy as a measurement partner's feed would have it (TCF vendor with
a Global Vendor List, identifiers, IP, precise geo and user agent allowlisted,
two activity rules).

(a) filter: ``gateway.privacy.filter.filter_event`` on every event, from cold
    caches (a fresh process): consent strings are decoded once per distinct
    string inside the timed loop.
(b) baseline: ``json.dumps(event, separators=(",", ":"), sort_keys=True)`` on
    the same events: what merely writing them out costs.

Both loops run over the same list, after ``gc.freeze()``: a worker streams a
window in chunks of 2 000 and never holds a million events alive, so the
collector should not rescan them here either. The filter uses its compiled C
speedups when ``pip install -e .`` built them; ``GATEWAY_PRIVACY_SPEEDUPS=0``
measures the Python code alone (the first line printed says which). ``--profile`` adds a cProfile of
a filter pass. The gateway has no GPP encoder, so the GPP strings are the test
vectors generated with the IAB's @iabgpp/cmpapi (tests/privacy/vectors/), when
present.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import platform
import pstats
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.privacy import (  # noqa: E402
    network,
    pseudonyms,
    signals,
    tcf,
    useragent,
    usprivacy,
)
from gateway.privacy.activities import ActivityRuleSpec  # noqa: E402
from gateway.privacy.consent import evaluate  # noqa: E402
from gateway.privacy.filter import decide, filter_event  # noqa: E402
from gateway.privacy.gpp import decoder as gpp_decoder  # noqa: E402
from gateway.privacy.gvl import Gvl, parse_gvl  # noqa: E402
from gateway.privacy.policy import PartnerPolicy  # noqa: E402
from gateway.privacy.transform import transform_event  # noqa: E402

GPP_VECTORS = ROOT / "tests" / "privacy" / "vectors" / "gpp_vectors.json"
VENDOR_ID = 793
OTHER_VENDORS = (4, 10, 21, 25, 32, 52, 91, 126, 128, 755, 804, 1126)
TARGET_RATE = 150_000
# A measurement partner's feed: the defaults plus identifiers, IP, lat/lon and user agent.
FEED_FIELDS = frozenset(
    {
        "event_id", "occurred_at", "event_type", "media_type", "content_type", "advertiser_id",
        "campaign_id", "line_item_id", "creative_id", "placement_id", "device.type", "device.os",
        "device.ifa", "geo.country", "geo.region", "geo.lat", "geo.lon", "user_id",
        "household_id", "ip", "user_agent",
    }
)  # fmt: skip
TARGET_RATIO = 0.5

EU_COUNTRIES = ("DE", "FR", "GB", "IT", "ES", "NL", "PL", "SE", "AT", "BE", "IE", "DK")
US_REGIONS = ("CA", "NY", "TX", "FL", "VA", "CO", "CT", "UT", "WA", "IL", "OR", "NJ")
OTHER_COUNTRIES = ("BR", "JP", "AU", "CA", "MX", "IN")
US_PRIVACY = ("1YNN", "1YNN", "1YNN", "1YYN", "1NNN", "1---", "1YNY")
EVENT_TYPES = ("impression",) * 6 + ("start", "first_quartile", "midpoint", "complete", "click")

# (template, major versions): a few thousand distinct strings once versions vary.
# (template, major versions): full versions differ by build too, so a window
# holds a few thousand distinct strings, as real traffic does.
USER_AGENTS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Podcasts/{v}.{b} CFNetwork/1410.0.3 Darwin/22.6.0", (1555, 1570, 1580, 1600)),
    ("Podcasts/{v}.{b} CFNetwork/1474 Darwin/23.0.0", (1600, 1610, 1620)),
    ("Spotify/8.{v}.{b} iOS/17.1.1 (iPhone15,2)", tuple(range(6, 10))),
    ("Spotify/8.{v}.{b} Android/33 (SM-S911B)", tuple(range(6, 10))),
    ("Spotify/8.{v}.{b} Android/34 (Pixel 8)", tuple(range(6, 10))),
    ("Overcast/3.0 (+http://overcast.fm/; iOS podcast app) build {v}{b}", (1, 2, 3, 4)),
    ("PocketCasts/1.0 (Pocket Casts Feed Parser; +http://pocketcasts.com/) v{v}.{b}", (7, 8)),
    ("AppleCoreMedia/1.0.0.21B{v} (iPhone; U; CPU OS 17_{b} like Mac OS X; en_us)", (80, 91)),
    ("AlexaMediaPlayer/2.1.{v}.{b} (Linux;Android 5.1.1) ExoPlayerLib/1.5.9", (4676, 5012)),
    ("stagefright/1.2 (Linux;Android {v}) build/{b}", (9, 10, 11, 12, 13, 14)),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{v}.0.{b}.0 Safari/537.36",
        tuple(range(110, 125)),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/{v}.{b} Safari/605.1.15",
        (15, 16, 17),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS {v}_{b} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/{v}.{b} Mobile/15E148 Safari/604.1",
        (15, 16, 17),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/{v}.{b} Chrome/115.0.0.0 Mobile Safari/537.36",
        (21, 22, 23),
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:{v}.{b}) Gecko/20100101 Firefox/{v}.{b}", (119, 120)),
    ("SomeUnknownApp/{v}.{b} (custom build; device=abc123)", (1, 2, 3)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--consent-strings", type=int, default=2_000)
    parser.add_argument("--users", type=int, default=250_000, help="distinct users in the window")
    parser.add_argument("--sessions", type=int, default=5_000, help="concurrent listening sessions")
    parser.add_argument(
        "--session-events",
        type=int,
        default=8,
        help="mean events per session; 1 = no locality (each event a random person)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time consent decisions and minimisation separately, cold and warm",
    )
    parser.add_argument("--profile", action="store_true", help="also profile one filter pass")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    started = time.perf_counter()
    mix = ConsentMix.build(rng, distinct=args.consent_strings)
    population = Population(rng, mix, users=args.users)
    events = build_events(
        args.events,
        rng,
        population,
        sessions=args.sessions,
        session_events=args.session_events,
    )
    policy = bench_policy()
    speedups = "compiled C speedups" if signals._speedups is not None else "Python code only"
    print(
        f"python {platform.python_version()} on {platform.machine()}, {_cpus()} CPU(s), "
        f"privacy filter: {speedups}"
    )
    print(
        f"built {len(events):,} events in {time.perf_counter() - started:.1f} s: "
        f"{mix.distinct_strings():,} distinct consent strings ({len(mix.tc_strings):,} TC, "
        f"{len(mix.gpp):,} GPP, {len(set(US_PRIVACY))} US Privacy), "
        f"{len({e['user_id'] for e in events}):,} users in sessions of "
        f"{args.session_events} events on average, "
        f"{len({e['user_agent'] for e in events}):,} user agents"
    )
    gc.collect()
    gc.freeze()

    filter_rate = _rate(events, lambda event: filter_event(event, policy))
    decoded = tcf._decode_or_problem.cache_info()
    baseline_rate = _rate(events, _serialised)
    warm_rate = _rate(events, lambda event: filter_event(event, policy))
    outcomes: Counter[str] = Counter()
    for event in events:
        _tally(event, policy, outcomes)

    print(f"(a) filter_event, cold caches  {filter_rate:>10,.0f} events/s")
    print(f"    filter_event, warm caches  {warm_rate:>10,.0f} events/s")
    print(f"(b) json.dumps baseline        {baseline_rate:>10,.0f} events/s")
    print(f"ratio (a) / (b)                {filter_rate / baseline_rate:>10.2f}")
    print(
        f"targets: >= {TARGET_RATE:,} events/s "
        f"{'met' if filter_rate >= TARGET_RATE else 'MISSED'}, ratio >= {TARGET_RATIO} "
        f"{'met' if filter_rate / baseline_rate >= TARGET_RATIO else 'MISSED'}"
    )
    print(f"TC strings decoded: {decoded.misses:,} (cache hits {decoded.hits:,})")
    total = sum(outcomes.values())
    print("outcomes: " + ", ".join(f"{k} {v / total:.1%}" for k, v in outcomes.most_common()))
    if args.breakdown:
        _breakdown(events)
    if args.profile:
        _profile(events, policy)


# --- The consent mix ------------------------------------------------------------------------


class ConsentMix:
    """Distinct consent strings and how often each is used (a few strings are very common)."""

    def __init__(self, tc_strings: list[str], gpp: list[tuple[str, list[int]]]) -> None:
        self.tc_strings = tc_strings
        self.gpp = gpp
        # Zipf-like weights: the CMP defaults of big publishers dominate.
        self.tc_cum_weights = list(
            itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(tc_strings)))
        )

    @classmethod
    def build(cls, rng: random.Random, *, distinct: int) -> ConsentMix:
        gpp = _gpp_strings()
        count = max(1, distinct - len(gpp) - len(set(US_PRIVACY)))
        return cls([_tc_string(rng, n) for n in range(count)], gpp)

    def distinct_strings(self) -> int:
        return len(set(self.tc_strings)) + len(self.gpp) + len(set(US_PRIVACY))

    def tc_string(self, rng: random.Random) -> str:
        return rng.choices(self.tc_strings, cum_weights=self.tc_cum_weights)[0]


def _tc_string(rng: random.Random, n: int) -> str:
    """A TC string as CMPs write them: mostly full consent, some refusals and restrictions."""
    kind = rng.random()
    purposes = set(range(1, 11))
    vendors = {VENDOR_ID, *rng.sample(OTHER_VENDORS, rng.randint(2, len(OTHER_VENDORS)))}
    special_features = {1} if rng.random() < 0.7 else set()
    if kind < 0.08:
        purposes -= {7}
    elif kind < 0.16:
        vendors.discard(VENDOR_ID)
    elif kind < 0.22:
        purposes = {1}
    restrictions = ()
    if rng.random() < 0.05:
        restrictions = (
            tcf.PublisherRestriction(
                purpose_id=rng.choice((2, 7, 8)),
                restriction_type=tcf.RestrictionType.REQUIRE_CONSENT,
                vendor_ids=frozenset({VENDOR_ID}),
            ),
        )
    created = datetime(2025, 11, 1, tzinfo=UTC) + timedelta(minutes=37 * n)
    return tcf.encode_tc_string(
        purpose_consents=purposes,
        vendor_consents=vendors,
        special_feature_opt_ins=special_features,
        vendor_encoding=rng.choice(("bitfield", "range")),
        publisher_restrictions=restrictions,
        created=created,
        cmp_id=rng.choice((7, 10, 28, 300)),
        vendor_list_version=rng.randint(100, 150),
        publisher_cc="DE",
    )


def _gpp_strings() -> list[tuple[str, list[int]]]:
    if not GPP_VECTORS.exists():
        return []
    vectors = json.loads(GPP_VECTORS.read_text())["vectors"]
    return [(v["gpp"], v["section_ids"]) for v in vectors]


# --- Events ---------------------------------------------------------------------------------


class Population:
    """Listeners, each with a stable device, user agent, home, consent and IP."""

    def __init__(self, rng: random.Random, mix: ConsentMix, *, users: int) -> None:
        self._rng = rng
        self._mix = mix
        self._users = users
        self._people: dict[int, dict[str, Any]] = {}

    def person(self, user: int) -> dict[str, Any]:
        person = self._people.get(user)
        if person is None:
            person = self._people[user] = self._new_person(user)
        return person

    def random_person(self) -> dict[str, Any]:
        return self.person(self._rng.randrange(self._users))

    def _new_person(self, user: int) -> dict[str, Any]:
        # Seeded by the user, so a person is the same whatever the event order.
        rng = random.Random(user)
        area = rng.random()
        if area < 0.45:
            geo: dict[str, Any] = {"country": rng.choice(EU_COUNTRIES), "region": "09"}
            consent: dict[str, Any] = {"gdpr": 1, "tcf": self._mix.tc_string(rng)}
        elif area < 0.95:
            geo = {"country": "US", "region": rng.choice(US_REGIONS)}
            consent = {"gdpr": 0, "us_privacy": rng.choice(US_PRIVACY), "gpc": rng.random() < 0.06}
            if self._mix.gpp and rng.random() < 0.2:
                consent["gpp"], consent["gpp_sid"] = rng.choice(self._mix.gpp)
        else:
            geo = {"country": rng.choice(OTHER_COUNTRIES), "region": "01"}
            consent = {"gdpr": 0}
        consent["coppa"] = rng.random() < 0.01
        if rng.random() < 0.6:
            geo.update(
                city="Springfield",
                postal_code=f"{rng.randrange(10_000, 99_999)}",
                lat=round(rng.uniform(-60, 70), 5),
                lon=round(rng.uniform(-170, 170), 5),
            )
        template, versions = rng.choice(USER_AGENTS)
        build = rng.randrange(rng.choice((3, 30, 300)))
        return {
            "user_id": f"user-{user}",
            "household_id": f"hh-{user // 3}",
            "device": {
                "type": rng.choice(("mobile", "mobile", "desktop", "speaker", "tv")),
                "os": rng.choice(("ios", "android", "windows", "macos")),
                "ifa": f"{rng.getrandbits(128):032x}",
                "lmt": rng.random() < 0.15,
            },
            "ip": _ip(rng),
            "user_agent": template.format(v=rng.choice(versions), b=build),
            "geo": geo,
            "consent": consent,
        }


def build_events(
    count: int, rng: random.Random, population: Population, *, sessions: int, session_events: int
) -> list[dict[str, Any]]:
    """``count`` exposures from ``sessions`` concurrent listening sessions, interleaved.

    A session is one person hearing a few ads (impression, quartiles); its
    length is geometric with mean ``session_events``. ``session_events=1`` gives
    every event a person drawn afresh: no locality at all, the worst case for
    the filter's caches.
    """
    active = [population.random_person() for _ in range(sessions)]
    events = []
    for n in range(count):
        slot = rng.randrange(sessions)
        events.append(_event(n, rng, active[slot]))
        if rng.random() < 1 / session_events:
            active[slot] = population.random_person()
    return events


def _event(n: int, rng: random.Random, person: dict[str, Any]) -> dict[str, Any]:
    # Fresh nested objects per event, as parsing each stored payload gives.
    return {
        "event_id": f"evt-{n:012d}",
        "occurred_at": f"2026-11-24T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "event_type": rng.choice(EVENT_TYPES),
        "media_type": "audio",
        "content_type": "podcast",
        "advertiser_id": f"adv-{n % 40}",
        "campaign_id": f"cmp-{n % 120}",
        "line_item_id": f"li-{n % 400}",
        "creative_id": f"cr-{n % 900}",
        "placement_id": f"pl-{n % 60}",
        "content_id": f"ep-{rng.randrange(5_000)}",
        "device": dict(person["device"]),
        "ip": person["ip"],
        "user_agent": person["user_agent"],
        "geo": dict(person["geo"]),
        "user_id": person["user_id"],
        "household_id": person["household_id"],
        "consent": dict(person["consent"]),
    }


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.2:
        groups = ":".join(f"{rng.getrandbits(16):x}" for _ in range(3))
        return f"2001:db8:{groups}::{rng.getrandbits(16):x}"
    return ".".join(str(octet) for octet in (rng.randint(1, 223), *rng.randbytes(3)))


# --- The partner ----------------------------------------------------------------------------


def bench_policy() -> PartnerPolicy:
    """A measurement partner's feed: ids, geo, IP and user agent allowlisted, two rules."""
    return PartnerPolicy(
        partner_slug="bench",
        gvl_vendor_id=VENDOR_ID,
        required_tcf_purposes=frozenset({1, 7}),
        require_vendor_consent=True,
        honour_us_privacy_opt_out=True,
        honour_gpc=True,
        honour_coppa=True,
        honour_lmt=True,
        field_allowlist=FEED_FIELDS,
        pseudonym_key=b"bench-partner-key-0123456789abcdef",
        ipv4_prefix_bits=24,
        ipv6_prefix_bits=56,
        geo_decimals=2,
        user_agent_level="family",
        gvl_version=150,
        gvl=_gvl(),
        activity_rules=(
            ActivityRuleSpec(
                activity="transmit_precise_geo",
                position=1,
                effect="deny",
                countries=frozenset({"DE", "FR"}),
            ),
            ActivityRuleSpec(activity="transmit_user_ids", position=1, effect="deny", coppa=True),
        ),
    )


def _gvl() -> Gvl:
    return parse_gvl(gvl_document())


def gvl_document() -> dict[str, Any]:
    """The vendor-list JSON of the benchmark: our partner and a few others, all purposes."""

    def named(count: int) -> dict[str, dict[str, Any]]:
        return {str(i): {"id": i, "name": f"item {i}"} for i in range(1, count + 1)}

    def vendor(vendor_id: int) -> dict[str, Any]:
        return {
            "id": vendor_id,
            "name": f"vendor {vendor_id}",
            "purposes": [1, 2, 3, 4, 7, 8, 9, 10],
            "legIntPurposes": [],
            "flexiblePurposes": [],
            "specialPurposes": [1, 2],
            "features": [],
            "specialFeatures": [1],
        }

    return {
        "gvlSpecificationVersion": 3,
        "vendorListVersion": 150,
        "tcfPolicyVersion": 5,
        "lastUpdated": "2026-11-01T00:00:00Z",
        "purposes": named(11),
        "specialPurposes": named(3),
        "features": named(3),
        "specialFeatures": named(2),
        "vendors": {str(v): vendor(v) for v in (VENDOR_ID, *OTHER_VENDORS)},
    }


# --- Measuring ------------------------------------------------------------------------------


def _tally(event: dict[str, Any], policy: PartnerPolicy, outcomes: Counter[str]) -> None:
    decision, _record = filter_event(event, policy)
    outcomes["sent" if decision.eligible else f"dropped:{decision.reason}"] += 1


def _serialised(event: dict[str, Any]) -> None:
    json.dumps(event, separators=(",", ":"), sort_keys=True)


def _rate(events: list[Any], run: Callable[[Any], object]) -> float:
    started = time.perf_counter()
    for event in events:
        run(event)
    return len(events) / (time.perf_counter() - started)


def _breakdown(events: list[dict[str, Any]]) -> None:
    """Consent decisions alone, then minimisation alone, each from cold caches."""
    _clear_caches()
    policy = bench_policy()  # a fresh policy: the engine caches its work per policy object
    decide_cold = _rate(events, lambda event: decide(event, policy))
    decide_warm = _rate(events, lambda event: decide(event, policy))
    results = [evaluate(event, policy) for event in events]
    sent = [
        (event, result.denied_activities)
        for event, result in zip(events, results, strict=True)
        if result.decision.eligible
    ]
    transform_cold = _rate(
        sent, lambda item: transform_event(item[0], policy, denied_activities=item[1])
    )
    transform_warm = _rate(
        sent, lambda item: transform_event(item[0], policy, denied_activities=item[1])
    )
    print(f"breakdown, µs per event (minimisation: per event sent, {len(sent) / len(events):.0%}):")
    print(f"    consent decisions  cold {1e6 / decide_cold:5.2f}  warm {1e6 / decide_warm:5.2f}")
    print(
        f"    minimisation       cold {1e6 / transform_cold:5.2f}  warm {1e6 / transform_warm:5.2f}"
    )


def _clear_caches() -> None:
    """Empty the per-process caches of decoders and minimisation, as in a fresh worker."""
    for module in (tcf, usprivacy, gpp_decoder):
        for value in vars(module).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()
    pseudonyms._keyed.clear()
    network._caches.clear()
    for cache in useragent._caches.values():
        cache.clear()


def _profile(events: list[dict[str, Any]], policy: PartnerPolicy) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for event in events:
        filter_event(event, policy)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
