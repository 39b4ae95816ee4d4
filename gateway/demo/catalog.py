"""What the demo world consists of: advertisers, campaigns, the demo partners, and when.

Plain data with no Django import, shared by the synthetic generator (which
needs campaign ids, the partners' GVL vendor ids for TC strings and how far
back traffic goes) and the seed service (which turns it into rows).

Two partners get hourly windows (their feeds start where the synthetic
history starts, so the history goes out in ~72 window batches each) and one a
streaming feed (starting at the seed, so it receives the live traffic within
about a second).
"""

from __future__ import annotations

from dataclasses import dataclass

# The initial load spreads exposures over this many days before the demo starts.
HISTORY_DAYS = 3
# Live traffic reports ad plays that started this many seconds ago (low, high);
# an event is posted at most ``high`` seconds after it occurred.
LIVE_PLAY_STARTED_SECONDS_AGO = (70.0, 130.0)
# Hourly windows keep the history to ~72 window batches per feed (the
# dispatcher cuts at most 100 windows of a feed per run, so one run does it).
HOURLY = 3600


@dataclass(frozen=True)
class Campaign:
    """A demo campaign: who pays for it, what it runs on, how much traffic it gets."""

    campaign_id: str
    advertiser_id: str
    media_types: tuple[str, ...]
    # Share of all ad plays; the weights of all campaigns add up to 1.
    weight: float
    line_items: int = 2


CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("cmp-acme-morning-brew", "adv-acme-coffee", ("audio",), 0.24),
    Campaign("cmp-lumen-ev-launch", "adv-lumen-motors", ("video", "audio"), 0.20, line_items=3),
    Campaign("cmp-lumen-service-days", "adv-lumen-motors", ("audio",), 0.08),
    Campaign("cmp-harbor-savings", "adv-harbor-bank", ("audio", "video"), 0.18),
    # Measured by no partner: its exposures are ingested but never delivered.
    Campaign("cmp-pixel-summer-quest", "adv-pixel-games", ("video",), 0.15),
    Campaign("cmp-greenleaf-weekly", "adv-greenleaf-grocers", ("audio",), 0.15, line_items=1),
)


@dataclass(frozen=True)
class DemoPartner:
    """A demo partner, its one feed and how its simulator behaves."""

    slug: str
    name: str
    # Arbitrary ids for the demo partners; real ids come from the IAB Global Vendor List.
    gvl_vendor_id: int
    reporting_time_zone: str
    feed_name: str
    mode: str  # "push" | "pull" | "stream"
    gzip: bool
    field_allowlist: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    simulator_port: int
    # The simulator reports its counts skewed by this much, so reconciliation
    # shows partners within tolerance (10 %) and outside it.
    report_bias: float
    # Window feeds: the window length and how long after its end a window is cut.
    batch_window_seconds: int = HOURLY
    grace_seconds: int = 5
    # True: the feed starts with the synthetic history (its first window is
    # the one HISTORY_DAYS before the seed). False: a partner that starts at
    # the seed; it measures its campaigns from the seed's day and receives
    # only the live traffic.
    delivers_history: bool = True
    # Streaming feeds: a micro-batch goes out after this delay, or once this
    # many exposures wait (the model's defaults).
    stream_max_delay_ms: int = 250
    stream_max_events: int = 500
    # Events per batch at most (parts beyond); None: no limit.
    max_batch_events: int | None = None
    # How often the simulator reports its running counts to the gateway.
    report_interval_seconds: int = 30
    endpoint_path: str = "/exposures"


NIELSEN_DEMO = DemoPartner(
    slug="nielsen-demo",
    name="Nielsen (demo)",
    gvl_vendor_id=1001,
    reporting_time_zone="America/New_York",
    feed_name="dar-exposures",
    mode="push",
    gzip=True,
    batch_window_seconds=HOURLY,
    grace_seconds=5,
    # Audience measurement: who saw what, where, on which device (pseudonymised ids).
    field_allowlist=(
        "event_id",
        "occurred_at",
        "event_type",
        "media_type",
        "content_type",
        "advertiser_id",
        "campaign_id",
        "line_item_id",
        "creative_id",
        "placement_id",
        "device.type",
        "device.os",
        "device.ifa",
        "geo.country",
        "geo.region",
        "user_id",
    ),
    campaign_ids=("cmp-acme-morning-brew", "cmp-lumen-ev-launch", "cmp-harbor-savings"),
    simulator_port=8101,
    report_bias=0.03,
    # As an endpoint that limits request sizes would have it: its busier hours
    # (the history has 60 to 150 events an hour) arrive in two parts.
    max_batch_events=100,
)

IAS_DEMO = DemoPartner(
    slug="ias-demo",
    name="IAS (demo)",
    gvl_vendor_id=1002,
    reporting_time_zone="Europe/London",
    feed_name="verification",
    mode="pull",
    gzip=False,
    batch_window_seconds=HOURLY,
    grace_seconds=5,
    # Verification: where the ad ran and in what content; no user ids at all.
    field_allowlist=(
        "event_id",
        "occurred_at",
        "event_type",
        "media_type",
        "content_type",
        "campaign_id",
        "creative_id",
        "placement_id",
        "content_id",
        "device.type",
        "device.os",
        "geo.country",
    ),
    campaign_ids=("cmp-lumen-ev-launch", "cmp-lumen-service-days", "cmp-harbor-savings"),
    simulator_port=8102,
    report_bias=-0.12,
)

DV_DEMO = DemoPartner(
    slug="dv-demo",
    name="DoubleVerify (demo)",
    gvl_vendor_id=1003,
    reporting_time_zone="America/Los_Angeles",
    feed_name="live-verification",
    mode="stream",
    gzip=True,
    # Verification with invalid-traffic detection: where the ad ran, on what,
    # and the network and client it ran on (IP truncated, user agent reduced
    # to its family by minimisation); no user or device ids.
    field_allowlist=(
        "event_id",
        "occurred_at",
        "event_type",
        "media_type",
        "content_type",
        "advertiser_id",
        "campaign_id",
        "line_item_id",
        "creative_id",
        "placement_id",
        "content_id",
        "device.type",
        "device.os",
        "geo.country",
        "geo.region",
        "ip",
        "user_agent",
    ),
    # One campaign Nielsen measures too, one IAS measures too, one of its own.
    campaign_ids=("cmp-acme-morning-brew", "cmp-lumen-service-days", "cmp-greenleaf-weekly"),
    simulator_port=8103,
    report_bias=0.05,
    delivers_history=False,
    # Its counts move every second: reporting often keeps today's comparison
    # from lagging what was just delivered.
    report_interval_seconds=5,
)

DEMO_PARTNERS: tuple[DemoPartner, ...] = (NIELSEN_DEMO, IAS_DEMO, DV_DEMO)
DEMO_VENDOR_IDS: tuple[int, ...] = tuple(partner.gvl_vendor_id for partner in DEMO_PARTNERS)
