"""Which privacy regimes govern an event: TCF, a US state, US national, or the default.

Decided from ``consent.gdpr``, ``consent.gpp_sid`` and the event's geo:

- TCF when ``gdpr`` is 1, when ``gpp_sid`` names ``tcfeuv2``, or when ``gdpr`` is
  absent and the country is in the EEA or the UK. Without a ``gdpr`` flag, a
  ``gpp_sid`` or a readable country nothing shows that GDPR does not apply, so
  TCF is assumed (fail closed: it needs a TC string).
- US when the country is US or ``gpp_sid`` names a US section: ``us_state``
  when ``gpp_sid`` or the region names a state with a supported GPP section,
  else ``us_national``.
- Otherwise the gateway's default regime: ``none``, ``us_national`` or ``deny``.

An event can be under TCF and a US regime at once (``gdpr`` 1 on a US event);
both sets of checks then apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.privacy.gpp.sections import SECTION_NAMES
from gateway.privacy.regions import GDPR_COUNTRIES

TCF = "tcf"
US_STATE = "us_state"
US_NATIONAL = "us_national"
NONE = "none"
DENY = "deny"
REGIMES = (TCF, US_STATE, US_NATIONAL, NONE)
DEFAULT_REGIMES = (NONE, US_NATIONAL, DENY)
US_REGIMES = frozenset({US_STATE, US_NATIONAL})

# Reason code when the default regime is "deny" and no regime claims the event.
DEFAULT_REGIME_DENY = "default_regime_deny"

# IAB GPP section ids (GPP "Section Information" table), as the decoder names them.
GPP_SECTION_NAMES: Mapping[int, str] = SECTION_NAMES
GPP_SECTION_IDS: Mapping[str, int] = {name: sid for sid, name in GPP_SECTION_NAMES.items()}
TCFEUV2_SID = 2
US_NATIONAL_SECTIONS = frozenset({"uspv1", "usnat"})
US_SECTION_IDS = frozenset(sid for sid in GPP_SECTION_NAMES if sid >= 6)
# State code -> its GPP section, for the states whose section the gateway decodes and
# normalises onto US national (gateway.privacy.gpp); other states are "us_national".
STATE_SECTIONS: Mapping[str, str] = {
    "CA": "usca",
    "VA": "usva",
    "CO": "usco",
    "UT": "usut",
    "CT": "usct",
    "FL": "usfl",
    "MT": "usmt",
    "OR": "usor",
    "TX": "ustx",
    "DE": "usde",
    "IA": "usia",
    "NE": "usne",
    "NH": "usnh",
    "NJ": "usnj",
    "TN": "ustn",
    "MN": "usmn",
}
STATE_SECTION_IDS = frozenset(GPP_SECTION_IDS[name] for name in STATE_SECTIONS.values())


@dataclass(frozen=True)
class RegimeDecision:
    """The regimes of one event, and why."""

    regimes: tuple[str, ...]
    # The state section that applies under us_state ("usca"), else None.
    state_section: str | None
    # The default regime was "deny" and nothing else claimed the event.
    denied: bool
    why: str


def state_code(region: object) -> str | None:
    """A US state code ("CA") from ``geo.region`` ("CA", "ca" or "US-CA"); None if unreadable."""
    if not isinstance(region, str) or not region.isascii():
        return None
    code = region.upper()
    if code.startswith("US-"):
        code = code[3:]
    return code if len(code) == 2 and code.isalpha() else None


def regimes_decide(
    *,
    gdpr: int | None,
    gpp_sid: tuple[int, ...],
    country: str | None,
    region: str | None,
    default_regime: str,
    supported_states: Mapping[str, str] = STATE_SECTIONS,
) -> RegimeDecision:
    """The regimes of an event; see the module docstring for the rules.

    ``gdpr`` is 0, 1 or None; ``country`` an upper-case ISO 3166-1 code or None;
    ``region`` a state code (``state_code``) or None.
    """
    regimes: list[str] = []
    why: list[str] = []
    if gdpr == 1:
        regimes.append(TCF)
        why.append("gdpr=1")
    elif TCFEUV2_SID in gpp_sid:
        regimes.append(TCF)
        why.append("gpp_sid names tcfeuv2")
    elif gdpr is None and country in GDPR_COUNTRIES:
        regimes.append(TCF)
        why.append(f"no gdpr flag, country {country} is in the EEA/UK")
    elif gdpr is None and country is None and not gpp_sid:
        regimes.append(TCF)
        why.append("no gdpr flag, no gpp_sid and no readable country: GDPR assumed")
    state_section = None
    us_sids = US_SECTION_IDS.intersection(gpp_sid)
    if country == "US" or us_sids:
        state_section = _state_section(gpp_sid, region, supported_states)
        if state_section is not None:
            regimes.append(US_STATE)
            why.append(f"US state section {state_section}")
        else:
            regimes.append(US_NATIONAL)
            why.append("US without a supported state section")
    if regimes:
        return RegimeDecision(tuple(regimes), state_section, False, "; ".join(why))
    if default_regime == DENY:
        return RegimeDecision((), None, True, "no regime applies and the default is deny")
    regime = US_NATIONAL if default_regime == US_NATIONAL else NONE
    return RegimeDecision((regime,), None, False, f"no regime applies: default {regime}")


def _state_section(
    gpp_sid: tuple[int, ...], region: str | None, supported: Mapping[str, str]
) -> str | None:
    names = supported.values()
    for sid in gpp_sid:
        name = GPP_SECTION_NAMES.get(sid)
        if name is not None and name in names:
            return name
    if region is not None:
        return supported.get(region)
    return None
