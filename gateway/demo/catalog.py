"""What the demo world consists of: advertisers, campaigns and the two demo partners.

Plain data with no Django import, shared by the synthetic generator (which
needs campaign ids and the partners' GVL vendor ids for TC strings) and the
seed service (which turns it into rows).
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # Measured by no partner: their exposures are ingested but never delivered.
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
    mode: str  # "push" | "pull"
    gzip: bool
    batch_window_seconds: int
    grace_seconds: int
    field_allowlist: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    simulator_port: int
    # The simulator reports its counts skewed by this much, so reconciliation
    # shows one partner within tolerance (10 %) and one outside it.
    report_bias: float
    endpoint_path: str = "/exposures"


NIELSEN_DEMO = DemoPartner(
    slug="nielsen-demo",
    name="Nielsen (demo)",
    gvl_vendor_id=1001,
    reporting_time_zone="America/New_York",
    feed_name="dar-exposures",
    mode="push",
    gzip=True,
    batch_window_seconds=20,
    grace_seconds=3,
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
)

IAS_DEMO = DemoPartner(
    slug="ias-demo",
    name="IAS (demo)",
    gvl_vendor_id=1002,
    reporting_time_zone="Europe/London",
    feed_name="verification",
    mode="pull",
    gzip=False,
    batch_window_seconds=20,
    grace_seconds=3,
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

DEMO_PARTNERS: tuple[DemoPartner, ...] = (NIELSEN_DEMO, IAS_DEMO)
DEMO_VENDOR_IDS: tuple[int, ...] = tuple(partner.gvl_vendor_id for partner in DEMO_PARTNERS)
