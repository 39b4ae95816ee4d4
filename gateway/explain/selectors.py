"""Read side of explanations: the exposure, the partner, its feed, and the explanation."""

from __future__ import annotations

from typing import Any

from gateway.delivery.policies import policy_for
from gateway.errors import NotFound
from gateway.ingest.models import Exposure
from gateway.privacy.explain import explain
from partners.models import Feed, Partner


def partner_by_slug(*, slug: str) -> Partner:
    partner = Partner.objects.filter(slug=slug).first()
    if partner is None:
        raise NotFound(f"No partner {slug!r}.", code="partner_not_found")
    return partner


def exposure_payload(*, event_id: str) -> dict[str, Any]:
    payload = Exposure.objects.filter(event_id=event_id).values_list("payload", flat=True).first()
    if payload is None:
        raise NotFound(f"No exposure {event_id!r}.", code="exposure_not_found")
    return payload


def explain_feed(*, partner: Partner, name: str | None = None) -> Feed | None:
    """The feed named ``name``, else the partner's first enabled feed, else None.

    The feed matters: its allowlist and minimisation settings shape the record.
    """
    feeds = Feed.objects.filter(partner=partner)
    if name:
        feed = feeds.filter(name=name).first()
        if feed is None:
            raise NotFound(f"{partner.slug} has no feed {name!r}.", code="feed_not_found")
        return feed
    return feeds.filter(enabled=True).order_by("pk").first() or feeds.order_by("pk").first()


def explanation_for(*, partner: Partner, payload: Any, feed: Feed | None = None) -> dict[str, Any]:
    """The explanation of ``payload`` (an exposure record) for ``partner`` through ``feed``."""
    policy = policy_for(partner=partner, feed=feed)
    explanation = explain(payload, policy)
    explanation["feed"] = feed.name if feed else None
    return explanation
