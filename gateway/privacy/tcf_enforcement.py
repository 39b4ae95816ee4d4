"""TCF v2.2/v2.3 policy: may a vendor process for a purpose, given a TC string and its GVL entry?

Each check returns None when allowed, else a reason code from
``gateway.privacy.reasons.Reason``. Checks run in a fixed order, so the reason
for a refusal is predictable:

1. the string is service-specific (IsServiceSpecific = 1); a globally scoped
   string is not valid for our use;
2. the vendor is in the GVL and not deleted;
3. publisher restrictions for the purpose and vendor: 0 forbids it; 1 (require
   consent) and 2 (require legitimate interest) switch a *flexible* purpose to
   that basis and forbid a non-flexible purpose declared under the other basis;
4. the vendor declares the purpose under the resulting legal basis;
5. legitimate interest is never a basis for purposes 1, 3, 4, 5 and 6;
6. the signals of that basis: purpose consent and vendor consent, or purpose
   LI transparency and vendor LI.

Special purposes have no user signal: a vendor may rely on them once it was
disclosed to the user. Special features need the user's opt-in.

Pure functions over decoded values: callers decode (cached) and look the vendor
up in the GVL once, then call these per purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from gateway.privacy.gvl import GvlVendor
from gateway.privacy.reasons import Reason
from gateway.privacy.tcf import (
    MAX_VENDOR_ID,
    NUM_PURPOSES,
    NUM_SPECIAL_FEATURES,
    RestrictionType,
    TCString,
)

__all__ = [
    "LegalBasis",
    "special_purposes_allowed",
    "tcf_purpose_allowed",
    "tcf_service_specific_reason",
    "tcf_special_feature_allowed",
]

# TCF v2.2: these purposes may only ever rest on consent.
PURPOSES_WITHOUT_LEGITIMATE_INTEREST = frozenset({1, 3, 4, 5, 6})


class LegalBasis(StrEnum):
    """The legal basis a vendor relies on for one purpose."""

    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"


def tcf_service_specific_reason(*, tc: TCString) -> str | None:
    """``tcf_not_service_specific`` for a globally scoped string, else None."""
    return None if tc.is_service_specific else Reason.TCF_NOT_SERVICE_SPECIFIC


def tcf_purpose_allowed(
    *, tc: TCString, vendor: GvlVendor | None, vendor_id: int, purpose_id: int
) -> str | None:
    """None if the vendor may process for the purpose under TCF policy, else the reason.

    ``vendor`` is the vendor's GVL entry, None when the GVL does not list it.
    Raises ValueError for an id that cannot exist or a vendor entry of another id.
    """
    _check_id(purpose_id, maximum=NUM_PURPOSES, name="purpose")
    reason = tcf_service_specific_reason(tc=tc) or _vendor_reason(vendor, vendor_id=vendor_id)
    if reason is not None:
        return reason
    assert vendor is not None  # for type checkers: _vendor_reason refused None
    basis = _legal_basis(tc=tc, vendor=vendor, vendor_id=vendor_id, purpose_id=purpose_id)
    if not isinstance(basis, LegalBasis):
        return basis
    if basis is LegalBasis.CONSENT:
        if purpose_id not in tc.purpose_consents:
            return Reason.tcf_purpose_missing(purpose_id)
        if vendor_id not in tc.vendor_consents:
            return Reason.TCF_VENDOR_NOT_CONSENTED
        return None
    if purpose_id in PURPOSES_WITHOUT_LEGITIMATE_INTEREST:
        return Reason.tcf_purpose_li_not_permitted(purpose_id)
    if purpose_id not in tc.purpose_li:
        return Reason.tcf_purpose_li_missing(purpose_id)
    if vendor_id not in tc.vendor_li:
        return Reason.TCF_VENDOR_LI_MISSING
    return None


def special_purposes_allowed(
    *,
    tc: TCString,
    vendor: GvlVendor | None,
    vendor_id: int,
    special_purpose_ids: Iterable[int] = (),
) -> str | None:
    """None if the vendor may process under these special purposes, else the reason.

    Special purposes carry no user choice, but the vendor must have been shown
    to the user: listed in the disclosed-vendors segment. A vendor that also
    declares purposes is shown as disclosed by its consent or LI bit too (a CMP
    sets them only for vendors it showed); a vendor relying only on special
    purposes has nothing but the disclosed-vendors segment, and without that
    segment it is refused. Every listed special purpose must be declared.
    """
    special_ids = list(special_purpose_ids)
    for special_id in special_ids:
        _check_id(special_id, maximum=None, name="special purpose")
    special_ids = sorted(set(special_ids))
    reason = tcf_service_specific_reason(tc=tc) or _vendor_reason(vendor, vendor_id=vendor_id)
    if reason is not None:
        return reason
    assert vendor is not None
    for special_id in special_ids:
        if special_id not in vendor.special_purposes:
            return Reason.tcf_special_purpose_not_declared(special_id)
    if tc.disclosed_vendors is not None and vendor_id in tc.disclosed_vendors:
        return None
    if not vendor.relies_only_on_special_purposes and (
        vendor_id in tc.vendor_consents or vendor_id in tc.vendor_li
    ):
        return None
    return Reason.TCF_VENDOR_NOT_DISCLOSED


def tcf_special_feature_allowed(
    *,
    tc: TCString,
    vendor: GvlVendor | None,
    special_feature_id: int,
    vendor_id: int | None = None,
) -> str | None:
    """None if the vendor declares the special feature and the user opted in, else the reason.

    ``vendor_id`` is optional (the opt-in is the user's, not per vendor); when
    given it must match ``vendor``, as in the other checks.
    """
    _check_id(special_feature_id, maximum=NUM_SPECIAL_FEATURES, name="special feature")
    reason = tcf_service_specific_reason(tc=tc)
    if reason is not None:
        return reason
    if vendor_id is not None:
        reason = _vendor_reason(vendor, vendor_id=vendor_id)
    elif vendor is None:
        reason = Reason.TCF_VENDOR_NOT_IN_GVL
    elif vendor.is_deleted:
        reason = Reason.TCF_VENDOR_DELETED
    if reason is not None:
        return reason
    assert vendor is not None
    if special_feature_id not in vendor.special_features:
        return Reason.tcf_special_feature_not_declared(special_feature_id)
    if special_feature_id not in tc.special_feature_opt_ins:
        return Reason.tcf_special_feature_missing(special_feature_id)
    return None


def _legal_basis(
    *, tc: TCString, vendor: GvlVendor, vendor_id: int, purpose_id: int
) -> LegalBasis | str:
    """The basis the vendor must use for the purpose, or the reason it has none."""
    restrictions = tc.restriction_types(purpose_id=purpose_id, vendor_id=vendor_id)
    # Two different restrictions on one purpose and vendor contradict each other:
    # no basis is safe to pick.
    if RestrictionType.NOT_ALLOWED in restrictions or len(restrictions) > 1:
        return Reason.TCF_PUBLISHER_RESTRICTION
    consent = purpose_id in vendor.purposes
    li = purpose_id in vendor.leg_int_purposes
    flexible = purpose_id in vendor.flexible_purposes
    if RestrictionType.REQUIRE_CONSENT in restrictions:
        if consent or flexible:
            return LegalBasis.CONSENT
        # Declared under LI only, and not flexible: the publisher refuses that basis.
        return Reason.TCF_PUBLISHER_RESTRICTION if li else _not_declared(purpose_id)
    if RestrictionType.REQUIRE_LEGITIMATE_INTEREST in restrictions:
        if li or flexible:
            return LegalBasis.LEGITIMATE_INTEREST
        return Reason.TCF_PUBLISHER_RESTRICTION if consent else _not_declared(purpose_id)
    if consent:
        return LegalBasis.CONSENT
    if li:
        return LegalBasis.LEGITIMATE_INTEREST
    # Flexible alone names no default basis: only a restriction picks one.
    return _not_declared(purpose_id)


def _not_declared(purpose_id: int) -> str:
    return Reason.tcf_purpose_not_declared(purpose_id)


def _vendor_reason(vendor: GvlVendor | None, *, vendor_id: int) -> str | None:
    _check_id(vendor_id, maximum=MAX_VENDOR_ID, name="vendor")
    if vendor is None:
        return Reason.TCF_VENDOR_NOT_IN_GVL
    if vendor.id != vendor_id:
        raise ValueError(f"GVL entry of vendor {vendor.id} passed for vendor {vendor_id}")
    if vendor.is_deleted:
        return Reason.TCF_VENDOR_DELETED
    return None


def _check_id(value: int, *, maximum: int | None, name: str) -> None:
    # A caller's bug (a misconfigured partner), not a consent signal: fail loudly.
    # "type(...) is int" also refuses True and False; it runs per event, so it is cheap.
    if type(value) is int and value >= 1 and (maximum is None or value <= maximum):
        return
    bounds = "" if maximum is None else f" between 1 and {maximum}"
    raise ValueError(f"{value!r} is not a {name} id{bounds}")
