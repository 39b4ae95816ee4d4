"""Turns partner and feed configuration into the privacy filter's PartnerPolicy."""

from __future__ import annotations

from gateway.privacy.policy import PartnerPolicy
from partners.models import ConsentRule, Feed, Partner
from partners.services import pseudonym_key_current


def policy_for(*, partner: Partner, feed: Feed | None = None) -> PartnerPolicy:
    """The policy of ``partner`` for ``feed`` (or, without a feed, for consent decisions only).

    A partner with no consent rule gets the strictest rule that still lets
    nothing through unexamined: every flag honoured and vendor consent required.
    """
    rule = ConsentRule.objects.filter(partner=partner).first() or ConsentRule(
        partner=partner, required_tcf_purposes=[1, 7]
    )
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
        pseudonym_key=pseudonym_key_current(partner_id=partner.pk) if feed else b"",
    )
