"""Exposure records and policies for the privacy tests, without Django.

``exposure`` is also the record behind ``tests.factories.exposure_payload``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.privacy.policy import PartnerPolicy
from gateway.privacy.tcf import encode_tc_string

VENDOR_ID = 793
RAW_USER_ID = "user-123"
RAW_IFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
RAW_HOUSEHOLD_ID = "hh-9"
RAW_IP = "203.0.113.77"
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# What the ad server says of every exposure, as the ingest schema requires it.
AD_SERVER_FIELDS: dict[str, str] = {
    "event_type": "impression",
    "media_type": "audio",
    "content_type": "podcast",
    "advertiser_id": "adv-1",
    "campaign_id": "cmp-1",
    "line_item_id": "li-1",
    "creative_id": "cr-1",
}


def exposure(*, consent: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid exposure from the US with no opt-out; ``consent`` replaces the consent object."""
    record: dict[str, Any] = {
        "event_id": "evt-00000001",
        "occurred_at": "2026-11-24T10:15:00+01:00",
        **AD_SERVER_FIELDS,
        "placement_id": "pl-1",
        "content_id": "ep-42",
        "device": {"type": "mobile", "os": "ios", "ifa": RAW_IFA, "lmt": False},
        "ip": RAW_IP,
        "user_agent": "Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0",
        "geo": {
            "country": "US",
            "region": "CA",
            "city": "Oakland",
            "postal_code": "94607",
            "lat": 37.80437,
            "lon": -122.27111,
        },
        "user_id": RAW_USER_ID,
        "household_id": RAW_HOUSEHOLD_ID,
        "consent": {"gdpr": 0, "us_privacy": "1YNN", "gpc": False, "coppa": False},
    }
    if consent is not None:
        record["consent"] = consent
    record.update(overrides)
    return record


def policy(**overrides: Any) -> PartnerPolicy:
    """A strict policy: purposes 1 and 7, vendor consent, every flag honoured."""
    fields: dict[str, Any] = {
        "partner_slug": "nielsen",
        "gvl_vendor_id": VENDOR_ID,
        "required_tcf_purposes": frozenset({1, 7}),
        "require_vendor_consent": True,
        "honour_us_privacy_opt_out": True,
        "honour_gpc": True,
        "honour_coppa": True,
        "honour_lmt": True,
        "field_allowlist": frozenset({"event_id"}),
        "pseudonym_key": b"nielsen-key-0123456789abcdef0123",
    }
    fields.update(overrides)
    return PartnerPolicy(**fields)


def tc_string(**overrides: Any) -> str:
    """A TC string granting purposes 1 and 7 and vendor ``VENDOR_ID``."""
    fields: dict[str, Any] = {
        "purpose_consents": {1, 7},
        "vendor_consents": {VENDOR_ID},
        "created": CREATED,
    }
    fields.update(overrides)
    return encode_tc_string(**fields)
