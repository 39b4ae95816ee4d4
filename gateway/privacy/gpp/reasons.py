"""Reason codes for GPP decisions. They are stored and shown to engineers: never rename one.

Kept apart from ``gateway.privacy.reasons`` until the filter wires GPP in; each value is a
stable string code like those of ``Reason``.
"""

from __future__ import annotations

# MSPA "Service Provider Mode": the publisher declared it does not sell or share personal
# information, so nothing personal may reach a third party such as a measurement partner.
GPP_SERVICE_PROVIDER_MODE = "gpp_service_provider_mode"
# Global Privacy Control: from a US section's GPC sub-section or the event's own flag.
GPP_GPC = "gpp_gpc"
GPP_SALE_OPT_OUT = "gpp_sale_opt_out"
GPP_SHARING_OPT_OUT = "gpp_sharing_opt_out"
GPP_TARGETED_ADVERTISING_OPT_OUT = "gpp_targeted_advertising_opt_out"
# A notice the choices depend on was not given, or a choice is recorded without its notice.
GPP_NOTICE_NOT_GIVEN = "gpp_notice_not_given"
GPP_SENSITIVE_DATA_WITHOUT_CONSENT = "gpp_sensitive_data_without_consent"
GPP_KNOWN_CHILD_WITHOUT_CONSENT = "gpp_known_child_without_consent"
GPP_PERSONAL_DATA_NO_CONSENT = "gpp_personal_data_no_consent"
# The request's gpp_sid names a section the GPP string does not carry.
GPP_SID_MISMATCH = "gpp_sid_mismatch"
# A section we keep undecoded (or cannot map onto the national fields) was needed.
GPP_SECTION_UNSUPPORTED = "gpp_section_unsupported"

ALL = (
    GPP_SERVICE_PROVIDER_MODE,
    GPP_GPC,
    GPP_SALE_OPT_OUT,
    GPP_SHARING_OPT_OUT,
    GPP_TARGETED_ADVERTISING_OPT_OUT,
    GPP_NOTICE_NOT_GIVEN,
    GPP_SENSITIVE_DATA_WITHOUT_CONSENT,
    GPP_KNOWN_CHILD_WITHOUT_CONSENT,
    GPP_PERSONAL_DATA_NO_CONSENT,
    GPP_SID_MISMATCH,
    GPP_SECTION_UNSUPPORTED,
)
