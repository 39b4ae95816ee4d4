"""Deterministic synthetic exposures in the ingest record shape, for the demo and tests.

The same seed and ``now`` give the same records, so tests can assert on them
and a demo run can be replayed. The world is small but realistic enough to
exercise every rule of the gateway: audio and video plays with a funnel of
events, a listener population with stable devices, places and consent, iOS
limit-ad-tracking, IPv4 and IPv6, EU traffic with TCF strings (some missing
purpose 7, some without vendor consent, a few malformed) and US traffic with
US Privacy strings, GPC and rare COPPA.

Addresses come from the documentation ranges (RFC 5737, RFC 3849) and ids are
random: nothing here describes a real person or device.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from gateway.demo.catalog import (
    CAMPAIGNS,
    DEMO_VENDOR_IDS,
    HISTORY_DAYS,
    LIVE_PLAY_STARTED_SECONDS_AGO,
    Campaign,
)
from gateway.privacy.tcf import VendorEncoding, encode_tc_string

T = TypeVar("T")


class EuConsent(StrEnum):
    """What a listener in the EU/UK agreed to in the consent banner."""

    FULL = "full"  # purposes 1-10 and all vendors, the demo partners included
    NO_PURPOSE_7 = "no_purpose_7"  # refused "measure advertising performance"
    NO_VENDOR = "no_vendor"  # purposes given, but not to the demo partners
    MALFORMED = "malformed"  # a broken string from a buggy CMP or SDK


class UsConsent(StrEnum):
    """A US listener's privacy signals."""

    STANDARD = "standard"  # us_privacy 1YNN: notice given, no opt-out
    OPT_OUT = "opt_out"  # us_privacy 1YYN: opted out of sale
    GPC = "gpc"  # Global Privacy Control sent by the browser or device
    COPPA = "coppa"  # child-directed content


EU_CONSENT_WEIGHTS: dict[EuConsent, float] = {
    EuConsent.FULL: 0.78,
    EuConsent.NO_PURPOSE_7: 0.10,
    EuConsent.NO_VENDOR: 0.08,
    EuConsent.MALFORMED: 0.04,
}
US_CONSENT_WEIGHTS: dict[UsConsent, float] = {
    UsConsent.STANDARD: 0.88,
    UsConsent.OPT_OUT: 0.07,
    UsConsent.GPC: 0.04,
    UsConsent.COPPA: 0.01,
}
EU_SHARE = 0.28
IPV6_SHARE = 0.25
IOS_LMT_SHARE = 0.15
ANDROID_LMT_SHARE = 0.04
# Vendors other than the demo partners that consenting listeners also accept.
OTHER_VENDOR_IDS: tuple[int, ...] = (10, 21, 32, 52, 76, 91, 128, 238, 253, 755)
ZERO_IFA = "00000000-0000-0000-0000-000000000000"

# Events after the impression, with the share of impressions that reach each.
FUNNELS: dict[str, tuple[tuple[str, float], ...]] = {
    "audio": (
        ("start", 0.97),
        ("first_quartile", 0.92),
        ("midpoint", 0.88),
        ("third_quartile", 0.84),
        ("complete", 0.80),
    ),
    "video": (
        ("start", 0.95),
        ("first_quartile", 0.86),
        ("midpoint", 0.77),
        ("third_quartile", 0.69),
        ("complete", 0.62),
    ),
}
CLICK_RATES = {"audio": 0.003, "video": 0.011}
AD_DURATIONS = {"audio": (15, 30, 30, 60), "video": (6, 15, 15, 30)}
# Seconds into the ad at which each event fires, as a share of its duration.
EVENT_OFFSETS = {
    "impression": 0.0,
    "start": 0.0,
    "first_quartile": 0.25,
    "midpoint": 0.5,
    "third_quartile": 0.75,
    "complete": 1.0,
}
# Relative listening by local hour: quiet nights, commute peaks, busy evenings.
HOURLY_ACTIVITY = (
    0.20, 0.12, 0.08, 0.06, 0.06, 0.12, 0.35, 0.75, 0.90, 0.70, 0.60, 0.62,
    0.70, 0.65, 0.60, 0.62, 0.75, 0.90, 1.00, 0.95, 0.85, 0.70, 0.50, 0.32,
)  # fmt: skip


@dataclass(frozen=True)
class Place:
    """Where a listener is: geo fields as the ad server reports them, plus the local zone."""

    country: str
    region: str
    city: str
    postal_code: str
    lat: float
    lon: float
    time_zone: str


US_PLACES: tuple[Place, ...] = (
    Place("US", "NY", "New York", "10001", 40.7506, -73.9972, "America/New_York"),
    Place("US", "CA", "Los Angeles", "90012", 34.0614, -118.2385, "America/Los_Angeles"),
    Place("US", "CA", "Oakland", "94607", 37.8044, -122.2711, "America/Los_Angeles"),
    Place("US", "IL", "Chicago", "60601", 41.8864, -87.6186, "America/Chicago"),
    Place("US", "TX", "Austin", "78701", 30.2711, -97.7437, "America/Chicago"),
    Place("US", "FL", "Miami", "33130", 25.7664, -80.2044, "America/New_York"),
    Place("US", "WA", "Seattle", "98101", 47.6114, -122.3305, "America/Los_Angeles"),
    Place("US", "GA", "Atlanta", "30303", 33.7525, -84.3888, "America/New_York"),
    Place("US", "CO", "Denver", "80202", 39.7525, -104.9995, "America/Denver"),
    Place("US", "MA", "Boston", "02108", 42.3576, -71.0640, "America/New_York"),
)
EU_PLACES: tuple[Place, ...] = (
    Place("DE", "BE", "Berlin", "10115", 52.5323, 13.3846, "Europe/Berlin"),
    Place("DE", "BY", "Munich", "80331", 48.1351, 11.5820, "Europe/Berlin"),
    Place("FR", "IDF", "Paris", "75002", 48.8686, 2.3429, "Europe/Paris"),
    Place("NL", "NH", "Amsterdam", "1012", 52.3731, 4.8922, "Europe/Amsterdam"),
    Place("ES", "MD", "Madrid", "28013", 40.4203, -3.7058, "Europe/Madrid"),
    Place("IT", "MI", "Milan", "20121", 45.4722, 9.1870, "Europe/Rome"),
    Place("IE", "D", "Dublin", "D02", 53.3438, -6.2546, "Europe/Dublin"),
    Place("SE", "AB", "Stockholm", "111 20", 59.3326, 18.0649, "Europe/Stockholm"),
    Place("GB", "ENG", "London", "EC1A", 51.5203, -0.0977, "Europe/London"),
    Place("GB", "ENG", "Manchester", "M1", 53.4794, -2.2453, "Europe/London"),
)


@dataclass(frozen=True)
class Platform:
    """A device and operating system, with the apps' user agents seen on it."""

    device_type: str
    os: str
    user_agents: tuple[str, ...]
    weight: float
    has_ifa: bool = True
    plays_video: bool = True
    lmt_share: float = 0.0


PLATFORMS: tuple[Platform, ...] = (
    Platform(
        "mobile",
        "ios",
        (
            "Spotify/8.9.96 iOS/17.5.1 (iPhone15,3)",
            "Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0",
            "AppleCoreMedia/1.0.0.21F90 (iPhone; U; CPU OS 17_5_1 like Mac OS X; en_us)",
        ),
        weight=0.30,
        lmt_share=IOS_LMT_SHARE,
    ),
    Platform(
        "mobile",
        "android",
        (
            "Spotify/8.9.96.476 Android/34 (SM-S918B)",
            "ExoPlayerLib/2.19.1 (Linux; Android 14) PocketCasts/7.62",
            "Dalvik/2.1.0 (Linux; U; Android 13; Pixel 7 Build/TQ3A.230901.001)",
        ),
        weight=0.32,
        lmt_share=ANDROID_LMT_SHARE,
    ),
    Platform(
        "tablet",
        "ios",
        ("AppleCoreMedia/1.0.0.21F84 (iPad; U; CPU OS 17_5 like Mac OS X; en_us)",),
        weight=0.05,
        lmt_share=IOS_LMT_SHARE,
    ),
    Platform(
        "desktop",
        "windows",
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        ),
        weight=0.09,
        has_ifa=False,
    ),
    Platform(
        "desktop",
        "macos",
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        ),
        weight=0.05,
        has_ifa=False,
    ),
    Platform("ctv", "roku", ("Roku/DVP-13.0 (13.0.0.4163-46)",), weight=0.07),
    Platform(
        "ctv",
        "tvos",
        ("AppleCoreMedia/1.0.0.21L569 (Apple TV; U; CPU OS 17_5 like Mac OS X; en_us)",),
        weight=0.04,
        lmt_share=IOS_LMT_SHARE,
    ),
    Platform(
        "smart_speaker",
        "fire_os",
        ("AlexaMediaPlayer/2.1.4676.0 (Linux;Android 6.0.1) ExoPlayerLib/1.5.9",),
        weight=0.08,
        has_ifa=False,
        plays_video=False,
    ),
)
_IOS_FAMILY = frozenset({"ios", "tvos"})


@dataclass(frozen=True)
class Listener:
    """One person on one device: everything about an exposure that is not about the ad."""

    user_id: str
    household_id: str | None
    platform: Platform
    user_agent: str
    ifa: str | None
    lmt: bool
    ip: str
    place: Place
    consent: dict[str, Any]


def tc_string(*, consent: EuConsent, vendor_ids: Sequence[int], created: datetime) -> str:
    """The TC string a listener's CMP would send: the one place demo TC strings come from."""
    purposes = [p for p in range(1, 11) if not (consent is EuConsent.NO_PURPOSE_7 and p == 7)]
    vendors = list(OTHER_VENDOR_IDS)
    if consent is not EuConsent.NO_VENDOR:
        vendors += list(vendor_ids)
    value = encode_tc_string(
        purpose_consents=purposes,
        # No legitimate interest for 7 either, so "missing 7" is unambiguous.
        purpose_li=[2, 8, 9, 10],
        vendor_consents=vendors,
        vendor_li=OTHER_VENDOR_IDS[:4],
        vendor_encoding=VendorEncoding.RANGE,
        created=created,
        cmp_id=28,
        cmp_version=3,
        vendor_list_version=86,
        consent_language="EN",
        publisher_cc="GB",
    )
    if consent is EuConsent.MALFORMED:
        return _malformed(value, variant=created.second % 3)
    return value


def _malformed(value: str, *, variant: int) -> str:
    """The ways TC strings break in the wild: cut short, mangled, or an old version."""
    if variant == 0:
        return value[: len(value) // 3]
    if variant == 1:
        return value[:10] + "!" + value[10:]
    return "B" + value[1:]  # first six bits 000001: a TCF v1 string


class ExposureGenerator:
    """Makes exposure records from a seeded random source; see the module docstring."""

    def __init__(
        self,
        *,
        seed: int,
        now: datetime,
        days: float = HISTORY_DAYS,
        listeners: int = 2500,
        vendor_ids: Sequence[int] = DEMO_VENDOR_IDS,
        campaigns: Sequence[Campaign] = CAMPAIGNS,
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.rng = random.Random(seed)
        self.now = now
        self.days = days
        self.vendor_ids = tuple(vendor_ids)
        self.campaigns = tuple(campaigns)
        self.listeners = [self._listener() for _ in range(listeners)]
        self._video_listeners = [item for item in self.listeners if item.platform.plays_video]

    # --- public -------------------------------------------------------------------

    def exposures(self, count: int) -> list[dict[str, Any]]:
        """``count`` events of ad plays spread over the last ``days`` days, oldest first."""
        events: list[dict[str, Any]] = []
        while len(events) < count:
            campaign = self._campaign()
            listener, media_type = self._audience(campaign)
            events.extend(self._play(campaign, listener, media_type, start=None))
        return sorted(events[:count], key=lambda event: event["occurred_at"])

    def live(self, count: int, *, now: datetime) -> list[dict[str, Any]]:
        """``count`` events of plays that just ended, for a live trickle of traffic."""
        events: list[dict[str, Any]] = []
        while len(events) < count:
            campaign = self._campaign()
            listener, media_type = self._audience(campaign)
            low, high = LIVE_PLAY_STARTED_SECONDS_AGO
            start = now - timedelta(seconds=low + self.rng.uniform(0, high - low))
            events.extend(self._play(campaign, listener, media_type, start=start))
        return events[:count]

    # --- listeners ----------------------------------------------------------------

    def _listener(self) -> Listener:
        rng = self.rng
        in_eu = rng.random() < EU_SHARE
        place = rng.choice(EU_PLACES if in_eu else US_PLACES)
        platform = _weighted(rng, {p: p.weight for p in PLATFORMS})
        lmt = rng.random() < platform.lmt_share
        return Listener(
            user_id=f"u-{rng.getrandbits(64):016x}",
            household_id=f"hh-{rng.getrandbits(40):010x}" if rng.random() < 0.75 else None,
            platform=platform,
            user_agent=rng.choice(platform.user_agents),
            ifa=self._ifa(platform, lmt=lmt),
            lmt=lmt,
            ip=self._ip(),
            place=place,
            consent=self._eu_consent() if in_eu else self._us_consent(),
        )

    def _ifa(self, platform: Platform, *, lmt: bool) -> str | None:
        if not platform.has_ifa:
            return None
        # With limit-ad-tracking on, iOS hands apps an all-zero IDFA.
        if lmt and platform.os in _IOS_FAMILY:
            return ZERO_IFA
        value = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return value.upper() if platform.os in _IOS_FAMILY else value

    def _ip(self) -> str:
        if self.rng.random() < IPV6_SHARE:
            documentation = int(ipaddress.IPv6Address("2001:db8::"))
            return str(ipaddress.IPv6Address(documentation | self.rng.getrandbits(96)))
        network = self.rng.choice(("192.0.2", "198.51.100", "203.0.113"))
        return f"{network}.{self.rng.randint(1, 254)}"

    def _eu_consent(self) -> dict[str, Any]:
        kind = _weighted(self.rng, EU_CONSENT_WEIGHTS)
        # Consent is given once and reused for weeks; whole seconds, as TCF stores deciseconds.
        created = (self.now - timedelta(days=self.rng.uniform(1, 120))).replace(microsecond=0)
        return {
            "gdpr": 1,
            "tcf": tc_string(consent=kind, vendor_ids=self.vendor_ids, created=created),
        }

    def _us_consent(self) -> dict[str, Any]:
        kind = _weighted(self.rng, US_CONSENT_WEIGHTS)
        return {
            "gdpr": 0,
            "us_privacy": "1YYN" if kind is UsConsent.OPT_OUT else "1YNN",
            "gpc": kind is UsConsent.GPC,
            "coppa": kind is UsConsent.COPPA,
        }

    # --- plays --------------------------------------------------------------------

    def _campaign(self) -> Campaign:
        return _weighted(self.rng, {c: c.weight for c in self.campaigns})

    def _audience(self, campaign: Campaign) -> tuple[Listener, str]:
        media_type = self.rng.choice(campaign.media_types)
        pool = self._video_listeners if media_type == "video" else self.listeners
        return self.rng.choice(pool), media_type

    def _play(
        self, campaign: Campaign, listener: Listener, media_type: str, *, start: datetime | None
    ) -> list[dict[str, Any]]:
        """The events of one ad play: an impression, then the funnel and maybe a click."""
        duration = self.rng.choice(AD_DURATIONS[media_type])
        start = start or self._start_time(listener.place, duration)
        ad = self._ad_fields(campaign, media_type, duration)
        types = ["impression", *self._funnel(media_type)]
        events = [
            self._event(listener, ad, event_type, start + timedelta(seconds=offset * duration))
            for event_type in types
            for offset in (EVENT_OFFSETS[event_type],)
        ]
        if self.rng.random() < CLICK_RATES[media_type]:
            clicked_at = start + timedelta(seconds=self.rng.uniform(1, duration))
            events.append(self._event(listener, ad, "click", clicked_at))
        return events

    def _funnel(self, media_type: str) -> list[str]:
        reached: list[str] = []
        previous = 1.0
        for event_type, share in FUNNELS[media_type]:
            # Each step is conditional on the one before: listeners drop off, never return.
            if self.rng.random() >= share / previous:
                break
            reached.append(event_type)
            previous = share
        return reached

    def _start_time(self, place: Place, duration: int) -> datetime:
        """A start in the window, denser at the listener's busy local hours."""
        latest = self.now - timedelta(seconds=duration + 5)
        span = self.days * 86400
        zone = ZoneInfo(place.time_zone)
        while True:
            start = latest - timedelta(seconds=self.rng.uniform(0, span))
            if self.rng.random() < HOURLY_ACTIVITY[start.astimezone(zone).hour]:
                return start

    def _ad_fields(self, campaign: Campaign, media_type: str, duration: int) -> dict[str, Any]:
        content_type = "video" if media_type == "video" else self.rng.choice(("music", "podcast"))
        short = campaign.campaign_id.removeprefix("cmp-")
        slot = self.rng.choice(("preroll", "midroll", "midroll", "postroll"))
        content_prefix = {"music": "trk", "podcast": "ep", "video": "vid"}[content_type]
        # Popular content gets most plays: a heavy-tailed id.
        content_number = min(int(self.rng.paretovariate(1.1)), 5000)
        return {
            "media_type": media_type,
            "content_type": content_type,
            "advertiser_id": campaign.advertiser_id,
            "campaign_id": campaign.campaign_id,
            "line_item_id": f"li-{short}-{self.rng.randint(1, campaign.line_items)}",
            "creative_id": f"cr-{short}-{media_type}-{duration}s",
            "placement_id": f"pl-{content_type}-{slot}",
            "content_id": f"{content_prefix}-{content_number:05d}",
        }

    def _event(
        self, listener: Listener, ad: dict[str, Any], event_type: str, occurred_at: datetime
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "occurred_at": _rfc3339(occurred_at),
            "event_type": event_type,
            **ad,
            "device": _device(listener),
            "ip": listener.ip,
            "user_agent": listener.user_agent,
            "geo": self._geo(listener.place),
            "user_id": listener.user_id,
            "consent": dict(listener.consent),
        }
        if listener.household_id:
            event["household_id"] = listener.household_id
        return event

    def _geo(self, place: Place) -> dict[str, Any]:
        # City-level precision only: a few kilometres of jitter around the centre.
        return {
            "country": place.country,
            "region": place.region,
            "city": place.city,
            "postal_code": place.postal_code,
            "lat": round(place.lat + self.rng.uniform(-0.04, 0.04), 4),
            "lon": round(place.lon + self.rng.uniform(-0.04, 0.04), 4),
        }


def generate_exposures(
    *, count: int, seed: int = 42, now: datetime | None = None, days: float = HISTORY_DAYS
) -> list[dict[str, Any]]:
    """``count`` exposure records over the ``days`` before ``now`` (default: the current time)."""
    generator = ExposureGenerator(seed=seed, now=now or datetime.now(tz=UTC), days=days)
    return generator.exposures(count)


def _device(listener: Listener) -> dict[str, Any]:
    device: dict[str, Any] = {
        "type": listener.platform.device_type,
        "os": listener.platform.os,
        "lmt": listener.lmt,
    }
    if listener.ifa is not None:
        device["ifa"] = listener.ifa
    return device


def _rfc3339(moment: datetime) -> str:
    """UTC with milliseconds and a "Z", as most ad servers write timestamps."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _weighted(rng: random.Random, weights: dict[T, float]) -> T:
    items = list(weights)
    return rng.choices(items, weights=[weights[item] for item in items], k=1)[0]
