"""Consent decisions: may a partner receive an event at all?

Checks run in a fixed order (COPPA, GDPR/TCF, US Privacy, GPC) so that the
reason recorded for a drop is predictable. Anything that cannot be read fails
closed with ``malformed_consent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.privacy.errors import MalformedConsent
from gateway.privacy.policy import Decision, PartnerPolicy
from gateway.privacy.reasons import Reason
from gateway.privacy.regions import gdpr_applies_by_geo
from gateway.privacy.tcf import RestrictionType, TCString, decode_tc_string
from gateway.privacy.usprivacy import parse_us_privacy

# Keys of the exposure record's ``consent`` object.
CONSENT_KEY = "consent"
COPPA_KEY = "coppa"
GDPR_KEY = "gdpr"
TCF_KEY = "tcf"
US_PRIVACY_KEY = "us_privacy"
GPC_KEY = "gpc"

ALLOWED = Decision.allow()
_EMPTY: Mapping[str, Any] = {}


def consent_decision(event: Mapping[str, Any], policy: PartnerPolicy) -> Decision:
    """The consent decision for ``event`` under ``policy``; see ``gateway.privacy.filter``."""
    # "type(...) is dict" first: an ABC isinstance check costs more than the rest.
    if type(event) is not dict and not isinstance(event, Mapping):
        return Decision.drop(Reason.MALFORMED_EVENT)
    consent = event.get(CONSENT_KEY)
    if consent is None:
        # No consent object: the regimes may still apply, by geo.
        consent = _EMPTY
    elif type(consent) is not dict and not isinstance(consent, Mapping):
        return Decision.drop(Reason.MALFORMED_CONSENT)
    reason = (
        _coppa_reason(consent, policy)
        or _gdpr_reason(consent, event, policy)
        or _us_privacy_reason(consent, policy)
        or _gpc_reason(consent, policy)
    )
    return ALLOWED if reason is None else Decision.drop(reason)


def read_flag(value: Any) -> bool | None:
    """A flag (coppa, gpc, device.lmt) as True or False, or None when it cannot be read.

    Absent (None) is False. Booleans and the integers 0 and 1 (the OpenRTB
    convention) are read; anything else is unreadable and callers fail closed.
    """
    if value is None or value is False or value is True:
        return bool(value)
    if type(value) is int and value in (0, 1):
        return value == 1
    return None


def _coppa_reason(consent: Mapping[str, Any], policy: PartnerPolicy) -> str | None:
    coppa = read_flag(consent.get(COPPA_KEY))
    if coppa is None:
        return Reason.MALFORMED_CONSENT
    return Reason.COPPA if coppa and policy.honour_coppa else None


def _gdpr_reason(
    consent: Mapping[str, Any], event: Mapping[str, Any], policy: PartnerPolicy
) -> str | None:
    gdpr = consent.get(GDPR_KEY)
    tc_string = consent.get(TCF_KEY)
    if tc_string is not None and not isinstance(tc_string, str):
        return Reason.MALFORMED_CONSENT
    if gdpr is None:
        applies = gdpr_applies_by_geo(event)
    elif type(gdpr) is int and gdpr in (0, 1):
        applies = gdpr == 1
    else:
        return Reason.MALFORMED_CONSENT
    return _tcf_reason(tc_string, policy) if applies else None


def _tcf_reason(tc_string: str | None, policy: PartnerPolicy) -> str | None:
    if not tc_string:
        return Reason.TCF_CONSENT_MISSING
    try:
        tc = decode_tc_string(tc_string)
    except MalformedConsent:
        return Reason.MALFORMED_CONSENT
    for purpose_id in sorted(policy.required_tcf_purposes):
        if purpose_id not in tc.purpose_consents:
            return Reason.tcf_purpose_missing(purpose_id)
    vendor_id = policy.gvl_vendor_id
    if policy.require_vendor_consent and (vendor_id is None or vendor_id not in tc.vendor_consents):
        return Reason.TCF_VENDOR_NOT_CONSENTED
    if vendor_id is not None and _publisher_forbids(tc, policy=policy, vendor_id=vendor_id):
        return Reason.TCF_PUBLISHER_RESTRICTION
    return None


def _publisher_forbids(tc: TCString, *, policy: PartnerPolicy, vendor_id: int) -> bool:
    if not tc.publisher_restrictions:
        return False
    return any(
        tc.restricts(
            purpose_id=purpose_id, vendor_id=vendor_id, restriction=RestrictionType.NOT_ALLOWED
        )
        for purpose_id in policy.required_tcf_purposes
    )


def _us_privacy_reason(consent: Mapping[str, Any], policy: PartnerPolicy) -> str | None:
    value = consent.get(US_PRIVACY_KEY)
    # An empty string is how many ad servers say "no string"; it carries no opt-out.
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return Reason.MALFORMED_CONSENT
    if not policy.honour_us_privacy_opt_out:
        return None
    try:
        us_privacy = parse_us_privacy(value)
    except MalformedConsent:
        return Reason.MALFORMED_CONSENT
    return Reason.US_PRIVACY_OPT_OUT if us_privacy.opted_out_of_sale else None


def _gpc_reason(consent: Mapping[str, Any], policy: PartnerPolicy) -> str | None:
    gpc = read_flag(consent.get(GPC_KEY))
    if gpc is None:
        return Reason.MALFORMED_CONSENT
    return Reason.GPC if gpc and policy.honour_gpc else None
