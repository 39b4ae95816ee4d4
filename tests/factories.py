"""Small builders for test data. Keyword arguments override any default."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone

from partners.models import CampaignAssignment, Feed, Partner
from partners.services import api_key_create, partner_create
from tests.privacy.builders import exposure

_counter = itertools.count(1)


def exposure_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ingest record, as an ad server would send it, with a fresh event id."""
    overrides.setdefault("event_id", f"evt-{next(_counter):08d}")
    return exposure(**overrides)


def make_partner(
    *, slug: str | None = None, campaigns: tuple[str, ...] = ("cmp-1",), **fields: Any
) -> Partner:
    n = next(_counter)
    slug = slug or f"partner-{n}"
    fields.setdefault("name", slug.title())
    fields.setdefault("gvl_vendor_id", 793)
    partner, _secret = partner_create(slug=slug, **fields)
    for campaign_id in campaigns:
        CampaignAssignment.objects.create(
            partner=partner, campaign_id=campaign_id, starts_on=date(2026, 1, 1)
        )
    return partner


def make_feed(*, partner: Partner, **fields: Any) -> Feed:
    fields.setdefault("name", f"feed-{next(_counter)}")
    fields.setdefault("mode", Feed.Mode.PUSH)
    if fields["mode"] in (Feed.Mode.PUSH, Feed.Mode.STREAM):
        fields.setdefault("endpoint_url", "http://127.0.0.1:9/ingest")
    fields.setdefault("batch_window_seconds", 60)
    fields.setdefault("grace_seconds", 0)
    fields.setdefault("field_allowlist", ["event_id", "occurred_at", "event_type", "campaign_id"])
    fields.setdefault("deliver_from", datetime(2026, 1, 1, tzinfo=UTC))
    return Feed.objects.create(partner=partner, **fields)


def make_api_key(*, partner: Partner) -> str:
    _key, plaintext = api_key_create(partner=partner, name="test")
    return plaintext


def recently(seconds: int = 0) -> datetime:
    return timezone.now() - timedelta(seconds=seconds)
