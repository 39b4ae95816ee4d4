"""Reading the privacy signals of one exposure into a small hashable key.

Everything the consent engine decides depends only on this key (and the
partner's policy), so decisions are cached per distinct key: a million events
share a few thousand. Reading checks types only; consent strings are decoded
later, once per distinct string, and never altered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from gateway.privacy.regions import country_of
from gateway.privacy.speedups import speedups_load

# The compiled versions of the hot paths, or None (see speedups.py).
_speedups = speedups_load()

# Keys of the exposure record's ``consent`` object.
CONSENT_KEY = "consent"
COPPA_KEY = "coppa"
GDPR_KEY = "gdpr"
TCF_KEY = "tcf"
GPP_KEY = "gpp"
GPP_SID_KEY = "gpp_sid"
US_PRIVACY_KEY = "us_privacy"
GPC_KEY = "gpc"

# More GPP section ids than this is not a real gpp_sid (the IAB table has 27).
MAX_GPP_SID = 64
# iOS App Tracking Transparency: 0 not determined, 1 restricted, 2 denied, 3 authorised.
ATT_LIMITED = frozenset({0, 1, 2})
_EMPTY: Mapping[str, Any] = {}


class SignalKey(NamedTuple):
    """The privacy-relevant facts of one event, normalised; hashable."""

    gdpr: int | None
    tcf: str | None
    gpp: str | None
    gpp_sid: tuple[int, ...]
    us_privacy: str | None
    gpc: bool
    coppa: bool
    country: str | None
    # Subdivision code without the country prefix ("CA"), upper case; None if unreadable.
    region: str | None
    # Limit ad tracking: device.lmt on, an ATT status of 0-2, or either unreadable.
    limited: bool
    has_ifa: bool


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


def signal_key(event: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The signals of ``event`` (a mapping) as a plain tuple in ``SignalKey`` order.

    None when a consent field has the wrong type. Types are checked strictly
    before anything is cached: ``True`` and ``1`` (or ``1.0``) compare equal in
    Python, so a loosely typed key could reuse the decision of a well-typed one.
    This runs for every event: it is written for speed (a plain tuple, few calls);
    ``SignalKey(*key)`` names the fields when a decision is first computed.
    """
    consent = event.get(CONSENT_KEY)
    if consent is None:
        consent = _EMPTY  # no consent object: the regimes may still apply, by geo
    elif type(consent) is not dict and not isinstance(consent, Mapping):
        return None
    get = consent.get
    gdpr = get(GDPR_KEY)
    if gdpr is not None and (type(gdpr) is not int or gdpr not in (0, 1)):
        return None
    tcf, gpp, us_privacy = get(TCF_KEY), get(GPP_KEY), get(US_PRIVACY_KEY)
    if (
        (tcf is not None and type(tcf) is not str)
        or (gpp is not None and type(gpp) is not str)
        or (us_privacy is not None and type(us_privacy) is not str)
    ):
        return None
    gpp_sid = get(GPP_SID_KEY)
    if gpp_sid is None:
        gpp_sid = ()
    else:
        gpp_sid = _sid(gpp_sid)
        if gpp_sid is None:
            return None
    gpc = get(GPC_KEY)
    if gpc is not True and gpc is not False:
        gpc = read_flag(gpc)
        if gpc is None:
            return None
    coppa = get(COPPA_KEY)
    if coppa is not True and coppa is not False:
        coppa = read_flag(coppa)
        if coppa is None:
            return None
    country = region = None
    geo = event.get("geo")
    if type(geo) is dict or isinstance(geo, Mapping):
        # Inline fast paths for the usual "US" and "CA"; the helpers handle the rest.
        country = geo.get("country")
        if not (
            type(country) is str
            and len(country) == 2
            and country.isascii()
            and country.isupper()
            and country.isalpha()
        ):
            country = _country(country)
        region = geo.get("region")
        if region is not None and not (
            type(region) is str
            and len(region) == 2
            and region.isascii()
            and (region.isupper() or region.isdigit())  # "09": no letters, no case
            and region.isalnum()
        ):
            region = _region(region, country)
    device = event.get("device")
    if type(device) is dict or isinstance(device, Mapping):
        lmt = device.get("lmt")
        # An unreadable flag counts as on: fail closed.
        limited = lmt is not False and lmt is not None and read_flag(lmt) is not False
        atts = device.get("atts")
        if atts is not None:
            readable = type(atts) is int and 0 <= atts <= 3
            limited = limited or not readable or atts in ATT_LIMITED
        ifa = device.get("ifa")
        has_ifa = ifa is not None and ifa != ""
    else:
        limited = has_ifa = False
    # An empty string is how many ad servers say "no string".
    return (
        gdpr,
        tcf or None,
        gpp or None,
        gpp_sid,
        us_privacy or None,
        gpc,
        coppa,
        country,
        region,
        limited,
        has_ifa,
    )


def _country(value: Any) -> str | None:
    """An ISO 3166-1 alpha-2 code in upper case, or None (as ``regions.country_of``)."""
    if type(value) is not str or len(value) != 2:
        return None
    if value.isupper() and value.isalpha() and value.isascii():
        return value
    return country_of({"geo": {"country": value}})


def _sid(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return ()
    if type(value) is not list and type(value) is not tuple:
        return None
    if len(value) > MAX_GPP_SID or not all(type(item) is int for item in value):
        return None
    return tuple(value)


def _region(value: Any, country: str | None) -> str | None:
    """``geo.region`` as a subdivision code: "CA", "ca" and "US-CA" all give "CA"."""
    if type(value) is not str or not value.isascii():
        return None
    if len(value) == 2 and value.isupper() and value.isalnum():
        return value
    code = value.upper()
    if country is not None and code.startswith(country + "-"):
        code = code[3:]
    if not 1 <= len(code) <= 3 or not code.isalnum():
        return None
    return code


# The Python signal_key, always available; where the C speedups are compiled,
# signal_key is their version, which answers the usual event itself and hands
# anything unusual to this one.
python_signal_key = signal_key
if _speedups is not None:
    _speedups.set_signal_key_fallback(python_signal_key)
    signal_key = _speedups.signal_key
