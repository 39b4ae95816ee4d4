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
