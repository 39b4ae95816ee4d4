"""Errors of the GPP package: MalformedConsent subclasses, so callers that fail closed on
MalformedConsent keep doing so, each carrying a reason code for the drop record."""

from __future__ import annotations

from gateway.privacy.errors import MalformedConsent
from gateway.privacy.gpp import reasons


class GppSidMismatch(MalformedConsent):
    """The request's ``gpp_sid`` names a section that the GPP string does not carry."""

    reason = reasons.GPP_SID_MISMATCH


class UnsupportedGppSection(MalformedConsent):
    """A section is needed that this decoder keeps opaque or cannot map onto national fields."""

    reason = reasons.GPP_SECTION_UNSUPPORTED
