"""Which US GPP signals deny a measurement partner identifiers and user data.

A pure function of the national view (``normalise.us_national_view``), so usnat and every
mapped state go through the same rules. The rules follow the IAB's MSPA field definitions
and Prebid's default "transmitUfpd" interpretation of them, tightened where the brief for
this gateway asks (any known-child signal denies). Values of 0 mean "not applicable" and
never deny on their own; None means the section has no such field and is never checked.
"""

from __future__ import annotations

from gateway.privacy.gpp import reasons
from gateway.privacy.gpp.normalise import UsNationalView

# National sensitive categories whose data has no place in ad or measurement data at all:
# 6 genetic, 7 biometric, 9 SSN / licence / passport numbers, 10 account log-ins and card
# numbers with credentials, 12 contents of mail and messages. If a CMP reports any of them
# as processed, with consent or without, we cannot tell what the event carries: deny.
NEVER_IN_AD_DATA = (6, 7, 9, 10, 12)


def gpp_us_denials(view: UsNationalView, *, gpc_flag: bool | None) -> list[str]:
    """Reason codes that deny identifiers and user data; an empty list allows them.

    ``gpc_flag`` is the event's own Global Privacy Control flag (None when it has none).
    It and the section's GPC sub-section are two records of one user-agent signal: either
    one set is an opt-out.
    """
    checks = (
        # Service Provider Mode: the publisher declared it neither sells nor shares
        # personal information, so none may go to a third party.
        (reasons.GPP_SERVICE_PROVIDER_MODE, view.mspa_service_provider_mode == 1),
        (reasons.GPP_GPC, view.gpc is True or gpc_flag is True),
        # "1 Opted Out" for each opt-out; "2 Did Not Opt Out" allows.
        (reasons.GPP_SALE_OPT_OUT, view.sale_opt_out == 1),
        (reasons.GPP_SHARING_OPT_OUT, view.sharing_opt_out == 1),
        (reasons.GPP_TARGETED_ADVERTISING_OPT_OUT, view.targeted_advertising_opt_out == 1),
        (reasons.GPP_NOTICE_NOT_GIVEN, _notice_not_given(view)),
        (reasons.GPP_SENSITIVE_DATA_WITHOUT_CONSENT, _sensitive_data_without_consent(view)),
        (reasons.GPP_KNOWN_CHILD_WITHOUT_CONSENT, _known_child(view)),
        (reasons.GPP_PERSONAL_DATA_NO_CONSENT, _personal_data_consent_unusable(view)),
    )
    return [reason for reason, denied in checks if denied]


def _notice_not_given(view: UsNationalView) -> bool:
    """A notice is "2 No, notice was not provided", or a choice stands without its notice.

    Every notice counts, sensitive-data ones included: a notice is "0 not applicable"
    when the business does not do the thing, so "2" says it does it without telling the
    user. And the specification defines an opt-out as "0 Not Applicable" when its notice
    was not applicable or not given: "did not opt out" (2) next to a notice of 0 records a
    choice the user was never offered, which is no choice at all.
    """
    notices = (
        view.sharing_notice,
        view.sale_opt_out_notice,
        view.sharing_opt_out_notice,
        view.targeted_advertising_opt_out_notice,
        view.sensitive_data_processing_opt_out_notice,
        view.sensitive_data_limit_use_notice,
    )
    choices = (
        (view.sale_opt_out_notice, view.sale_opt_out),
        (view.sharing_opt_out_notice, view.sharing_opt_out),
        (view.targeted_advertising_opt_out_notice, view.targeted_advertising_opt_out),
    )
    return 2 in notices or any(notice == 0 and choice == 2 for notice, choice in choices)


def _sensitive_data_without_consent(view: UsNationalView) -> bool:
    """Sensitive data processed without consent we can rely on.

    - Any category "1" (no consent / opted out).
    - Any of the NEVER_IN_AD_DATA categories present at all (1 or 2).
    - Any category "2" (consent / did not opt out) while a sensitive-data notice the
      section has is "0 not applicable": consent is required before sensitive data is
      processed (the national approach requires opt-in consent, and Utah and California
      make "did not opt out" hang on their notices), and a section that says the notice
      does not apply yet reports consent contradicts itself. Sections without those
      notice fields (Virginia, Colorado, Connecticut record opt-in consent directly) are
      not held to them.
    """
    categories = view.sensitive_data_processing
    if 1 in categories:
        return True
    if any(categories[category - 1] in (1, 2) for category in NEVER_IN_AD_DATA):
        return True
    notices = (view.sensitive_data_processing_opt_out_notice, view.sensitive_data_limit_use_notice)
    return 0 in notices and 2 in categories


def _known_child(view: UsNationalView) -> bool:
    # Any known child, consented or not: we never send a known child's data to a
    # measurement partner ("1 No Consent", and "2 Consent" too, stricter than Prebid,
    # which accepts the 13-16 band's consent).
    return any(value not in (0, None) for value in view.known_child_sensitive_data_consents)


def _personal_data_consent_unusable(view: UsNationalView) -> bool:
    # PersonalDataConsents is consent to processing beyond the purposes disclosed to the
    # user ("secondary use"). "1 No Consent": the user refused it, and we cannot show that
    # forwarding to a partner stays within the disclosed purposes. "2 Consent": Prebid
    # treats a claim of consent to such processing as an invalid CMP response, and so do
    # we. Only "0 not applicable" (or a section without the field) passes.
    return view.personal_data_consents in (1, 2)
