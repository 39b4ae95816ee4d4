"""Reason codes for dropped events. They are stored and shown to engineers: never rename one."""

from __future__ import annotations


class Reason:
    """Why an event was not sent to a partner; each value is a stable string code."""

    COPPA = "coppa"
    TCF_CONSENT_MISSING = "tcf_consent_missing"
    TCF_VENDOR_NOT_CONSENTED = "tcf_vendor_not_consented"
    # The publisher's CMP flatly disallows a required purpose for the partner's vendor id.
    TCF_PUBLISHER_RESTRICTION = "tcf_publisher_restriction"
    MALFORMED_CONSENT = "malformed_consent"
    US_PRIVACY_OPT_OUT = "us_privacy_opt_out"
    GPC = "gpc"
    # The event itself is not a mapping, so nothing about it can be checked.
    MALFORMED_EVENT = "malformed_event"
    # An unexpected error inside the filter: the event is dropped rather than risked.
    FILTER_ERROR = "filter_error"

    TCF_PURPOSE_MISSING_PREFIX = "tcf_purpose_"

    @staticmethod
    def tcf_purpose_missing(purpose_id: int) -> str:
        """``tcf_purpose_7_missing``: GDPR applies and purpose 7 has no consent."""
        return f"tcf_purpose_{purpose_id}_missing"

    # --- TCF policy enforcement (gateway.privacy.tcf_enforcement) ---
    # A globally scoped TC string (IsServiceSpecific = 0): not valid for our use.
    TCF_NOT_SERVICE_SPECIFIC = "tcf_not_service_specific"
    # The vendor id is not in the Global Vendor List, or no list was available.
    TCF_VENDOR_NOT_IN_GVL = "tcf_vendor_not_in_gvl"
    # The vendor is in the GVL with a deletedDate: its declarations no longer count.
    TCF_VENDOR_DELETED = "tcf_vendor_deleted"
    TCF_VENDOR_LI_MISSING = "tcf_vendor_li_missing"
    # Special purposes need the vendor disclosed to the user (disclosed-vendors segment).
    TCF_VENDOR_NOT_DISCLOSED = "tcf_vendor_not_disclosed"

    @staticmethod
    def tcf_purpose_li_missing(purpose_id: int) -> str:
        """``tcf_purpose_7_li_missing``: no legitimate-interest transparency for purpose 7."""
        return f"tcf_purpose_{purpose_id}_li_missing"

    @staticmethod
    def tcf_purpose_li_not_permitted(purpose_id: int) -> str:
        """``tcf_purpose_3_li_not_permitted``: the vendor's basis would be LI, never valid for 3."""
        return f"tcf_purpose_{purpose_id}_li_not_permitted"

    @staticmethod
    def tcf_purpose_not_declared(purpose_id: int) -> str:
        """``tcf_purpose_7_not_declared``: the vendor's GVL entry has no usable basis for 7."""
        return f"tcf_purpose_{purpose_id}_not_declared"

    @staticmethod
    def tcf_special_purpose_not_declared(special_purpose_id: int) -> str:
        """``tcf_special_purpose_1_not_declared``: the vendor does not declare special purpose 1."""
        return f"tcf_special_purpose_{special_purpose_id}_not_declared"

    @staticmethod
    def tcf_special_feature_missing(special_feature_id: int) -> str:
        """``tcf_special_feature_1_missing``: the user did not opt in to special feature 1."""
        return f"tcf_special_feature_{special_feature_id}_missing"

    @staticmethod
    def tcf_special_feature_not_declared(special_feature_id: int) -> str:
        """``tcf_special_feature_1_not_declared``: the vendor does not declare special feature 1."""
        return f"tcf_special_feature_{special_feature_id}_not_declared"
