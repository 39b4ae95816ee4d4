"""Turns partner and feed configuration into the privacy filter's PartnerPolicy."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from gateway.privacy.activities import (
    ActivityRuleSpec,
    activity_defaults_parse,
    activity_purposes_parse,
)
from gateway.privacy.gvl import Gvl, GvlError, parse_gvl
from gateway.privacy.policy import DEFAULT_GPC_STATES, PartnerPolicy
from partners.models import (
    ActivityRule,
    ConsentRule,
    Feed,
    GlobalVendorList,
    Partner,
    PrivacySettings,
)
from partners.services import pseudonym_keys_in_use

logger = logging.getLogger(__name__)


class PolicyConfigurationError(ValueError):
    """A partner's stored configuration cannot be turned into a policy; nothing is sent."""


def policy_for(*, partner: Partner, feed: Feed | None = None) -> PartnerPolicy:
    """The policy of ``partner`` for ``feed`` (or, without a feed, for consent decisions only).

    A partner with no consent rule gets the strictest rule that still lets
    nothing through unexamined: every flag honoured and vendor consent required.
    Raises PolicyConfigurationError when the stored rule is invalid (fail closed:
    a batch build then stays pending with the error as its ``last_error``).
    """
    rule = ConsentRule.objects.filter(partner=partner).first() or ConsentRule(
        partner=partner, required_tcf_purposes=[1, 7]
    )
    settings = privacy_settings()
    snapshot = gvl_snapshot_for(partner=partner)
    current_key, previous_key = pseudonym_keys_in_use(partner_id=partner.pk) if feed else (b"", b"")
    try:
        activity_purposes = activity_purposes_parse(rule.activity_purposes or {})
        activity_defaults = activity_defaults_parse(rule.activity_defaults or {})
    except ValueError as exc:
        raise PolicyConfigurationError(f"consent rule of {partner.slug}: {exc}") from exc
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
        gvl_version=snapshot.version if snapshot else None,
        gvl=gvl_parsed(snapshot) if snapshot else None,
        activity_rules=activity_rule_specs(partner=partner),
        activity_purposes=tuple(sorted(activity_purposes.items())),
        activity_defaults=tuple(sorted(activity_defaults.items())),
        gpc_states=frozenset(state.upper() for state in settings.gpc_states),
        default_regime=settings.default_regime,
        **(_minimisation(feed) if feed else {}),
    )


def privacy_settings() -> PrivacySettings:
    """The gateway-wide privacy settings row; its defaults if the row is missing."""
    return PrivacySettings.objects.filter(pk=1).first() or PrivacySettings(
        pk=1, gpc_states=sorted(DEFAULT_GPC_STATES)
    )


def activity_rule_specs(*, partner: Partner) -> tuple[ActivityRuleSpec, ...]:
    """The partner's activity rules as plain data, in evaluation order."""
    rules = ActivityRule.objects.filter(partner=partner).order_by("activity", "position", "pk")
    return tuple(activity_rule_spec(rule) for rule in rules)


def activity_rule_spec(rule: ActivityRule) -> ActivityRuleSpec:
    return ActivityRuleSpec(
        activity=rule.activity,
        position=rule.position,
        effect=rule.effect,
        regimes=frozenset(rule.regimes or ()),
        gpp_sections=frozenset(rule.gpp_sections or ()),
        countries=frozenset(c.upper() for c in rule.countries or ()),
        regions=frozenset(r.upper() for r in rule.regions or ()),
        gpc=rule.gpc,
        coppa=rule.coppa,
        note=rule.note,
    )


def gvl_snapshot_for(*, partner: Partner) -> GlobalVendorList | None:
    """The partner's pinned GVL snapshot, else the newest one; without its document."""
    snapshots = GlobalVendorList.objects.defer("document")
    if partner.gvl_snapshot_id is not None:
        return snapshots.filter(pk=partner.gvl_snapshot_id).first()
    return snapshots.order_by("-version").first()


_parsed: dict[tuple[int, int, datetime | None], Gvl | None] = {}
_parsed_lock = threading.Lock()


def gvl_parsed(snapshot: GlobalVendorList) -> Gvl | None:
    """The parsed vendor list of ``snapshot``, parsed once per process; None if it is invalid.

    An invalid stored list (it was validated on upload, so only a hand-edited
    row) gives None, and TCF events then fail closed with ``tcf_gvl_missing``.
    """
    key = (snapshot.pk, snapshot.version, snapshot.uploaded_at)
    with _parsed_lock:
        if key in _parsed:
            return _parsed[key]
    document = GlobalVendorList.objects.values_list("document", flat=True).get(pk=snapshot.pk)
    try:
        gvl: Gvl | None = parse_gvl(document)
    except GvlError as exc:
        logger.error("GVL snapshot v%s cannot be parsed: %s", snapshot.version, exc)
        gvl = None
    with _parsed_lock:
        if len(_parsed) > 16:
            _parsed.clear()
        _parsed[key] = gvl
    return gvl


def _minimisation(feed: Feed) -> dict[str, Any]:
    return {
        "ipv4_prefix_bits": feed.ipv4_prefix_bits,
        "ipv6_prefix_bits": feed.ipv6_prefix_bits,
        "geo_decimals": feed.geo_decimals,
        "user_agent_level": feed.user_agent_level,
    }
