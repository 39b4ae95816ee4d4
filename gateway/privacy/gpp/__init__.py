"""IAB Global Privacy Platform (GPP): our own decoder, US normalisation and US denials.

Pure Python, no Django: decode a string with ``decode_gpp_string``, pick the sections a
request applies with ``sections_applicable``, map a US section onto the national fields
with ``us_national_view`` and ask ``gpp_us_denials`` what it forbids. Anything that cannot
be trusted raises ``MalformedConsent`` (or a subclass carrying a reason code).
"""

from __future__ import annotations

from gateway.privacy.errors import MalformedConsent
from gateway.privacy.gpp.bits import decode_fibonacci
from gateway.privacy.gpp.decoder import (
    MAX_GPP_STRING_LENGTH,
    GppString,
    decode_gpp_string,
    effective_us_privacy,
    sections_applicable,
)
from gateway.privacy.gpp.denials import gpp_us_denials
from gateway.privacy.gpp.errors import GppSidMismatch, UnsupportedGppSection
from gateway.privacy.gpp.normalise import UsNationalView, us_national_view
from gateway.privacy.gpp.sections import (
    GppSection,
    OpaqueSection,
    TcfEuV2Section,
    UspV1Section,
    UsSection,
)

__all__ = [
    "MAX_GPP_STRING_LENGTH",
    "GppSection",
    "GppSidMismatch",
    "GppString",
    "MalformedConsent",
    "OpaqueSection",
    "TcfEuV2Section",
    "UnsupportedGppSection",
    "UsNationalView",
    "UsSection",
    "UspV1Section",
    "decode_fibonacci",
    "decode_gpp_string",
    "effective_us_privacy",
    "gpp_us_denials",
    "sections_applicable",
    "us_national_view",
]
