"""Where GDPR (or the UK GDPR) applies when an event does not say so itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# EU member states, the other EEA states (IS, LI, NO) and the United Kingdom,
# plus ISO codes of territories that are part of the EU but have their own code
# (Åland, French overseas departments, Saint-Martin). "UK" is not an ISO code but
# appears in the wild; listing it costs nothing and fails closed.
GDPR_COUNTRIES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU",
        "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES",
        "SE", "IS", "LI", "NO", "GB", "UK", "AX", "GF", "GP", "MQ", "RE", "YT", "MF",
    }
)  # fmt: skip


def country_of(event: Mapping[str, Any]) -> str | None:
    """The event's ISO 3166-1 alpha-2 country in upper case, or None when unknown or invalid."""
    geo = event.get("geo")
    if type(geo) is not dict and not isinstance(geo, Mapping):
        return None
    country = geo.get("country")
    if not isinstance(country, str) or len(country) != 2 or not country.isascii():
        return None
    if not country.isalpha():
        return None
    return country.upper()


def gdpr_applies_by_geo(event: Mapping[str, Any]) -> bool:
    """Whether GDPR must be assumed for an event that carries no gdpr flag.

    An unknown or invalid country counts as GDPR: without a flag and without a
    usable location we cannot show that GDPR does not apply.
    """
    country = country_of(event)
    return country is None or country in GDPR_COUNTRIES
