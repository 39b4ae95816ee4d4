"""Turns partner and feed configuration into the privacy filter's PartnerPolicy."""

from __future__ import annotations

from gateway.privacy.policy import PartnerPolicy
from partners.models import ConsentRule, Feed, Partner
from partners.services import pseudonym_keys_in_use


def policy_for(*, partner: Partner, feed: Feed | None = None) -> PartnerPolicy:
    """The policy of ``partner`` for ``feed`` (or, without a feed, for consent decisions only).

    A partner with no consent rule gets the strictest rule that still lets
    nothing through unexamined: every flag honoured and vendor consent required.
    """
    rule = ConsentRule.objects.filter(partner=partner).first() or ConsentRule(
        partner=partner, required_tcf_purposes=[1, 7]
    )
    current_key, previous_key = pseudonym_keys_in_use(partner_id=partner.pk) if feed else (b"", b"")
    return PartnerPolicy(
        partner_slug=partner.slug,
        gvl_vendor_id=partner.gvl_vendor_id,
        required_tcf_purposes=frozenset(rule.required_tcf_purposes),
        require_vendor_consent=rule.require_vendor_consent,
        honour_us_privacy_opt_out=rule.honour_us_privacy_opt_out,
        honour_gpc=rule.honour_gpc,
        honour_coppa=rule.honour_coppa,
        honour_lmt=rule.honour_lmt,
        field_allowlist=frozenset(feed.field_allowlist) if feed else frozenset(),
        pseudonym_key=current_key,
        previous_pseudonym_key=previous_key,
        **(_minimisation(feed) if feed else {}),
    )


def _minimisation(feed: Feed) -> dict[str, int | str]:
    return {
        "ipv4_prefix_bits": feed.ipv4_prefix_bits,
        "ipv6_prefix_bits": feed.ipv6_prefix_bits,
        "geo_decimals": feed.geo_decimals,
        "user_agent_level": feed.user_agent_level,
    }
