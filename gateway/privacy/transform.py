"""Minimisation: the record a partner receives, once consent allows the event.

What happens to each field, in one walk of the feed's compiled allowlist, and
only for fields the allowlist keeps:

- a field of a denied activity is removed (``ACTIVITY_FIELDS``);
- ``user_id``, ``household_id`` and ``device.ifa`` become per-partner HMAC-SHA256
  pseudonyms; limit-ad-tracking removes ``device.ifa``; during a pseudonym key
  rotation each sent pseudonym is joined by ``<field>_previous`` under the
  previous key;
- ``ip`` keeps the feed's IPv4 / IPv6 prefix bits (0 removes it);
- ``geo.lat`` / ``geo.lon`` are rounded to the feed's decimals;
- ``user_agent`` is reduced to the feed's level;
- everything else is copied, and anything not allowlisted is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from gateway.privacy.allowlist import REMOVE, PlanNode, Transform, apply_plan, compile_plan
from gateway.privacy.geo import LATITUDE_LIMIT, LONGITUDE_LIMIT, MAX_DECIMALS, round_coordinate
from gateway.privacy.network import UNKNOWN, truncation_cache, truncator
from gateway.privacy.policy import PartnerPolicy
from gateway.privacy.pseudonyms import pseudonym_cache, pseudonymise, pseudonymiser
from gateway.privacy.useragent import reducer, reduction_cache

# The activity that decides whether the event is sent at all: the consent engine
# drops such an event; it is never transformed.
TRANSMIT_EVENT = "transmit_event"

# Fields each activity controls (names as ``partners.models.Activity``): when the
# activity is denied for an event, these fields are removed from its record,
# whatever the allowlist says.
ACTIVITY_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "transmit_user_ids": ("user_id", "household_id"),
        "transmit_device_ids": ("device.ifa",),
        "transmit_precise_geo": ("geo.lat", "geo.lon", "geo.city", "geo.postal_code"),
        "transmit_ip": ("ip",),
        "transmit_user_agent": ("user_agent",),
    }
)

# Paths of identifiers that may only ever leave as pseudonyms.
IDENTIFIER_PATHS = ("user_id", "household_id", "device.ifa")
DEVICE_IFA_PATH = "device.ifa"
IP_PATHS = ("ip",)
USER_AGENT_PATH = "user_agent"
LATITUDE_PATH = "geo.lat"
LONGITUDE_PATH = "geo.lon"
# A pseudonym under the previous key of a rotation sits beside the current one.
PREVIOUS_SUFFIX = "_previous"
PREVIOUS_PATHS = tuple(path + PREVIOUS_SUFFIX for path in IDENTIFIER_PATHS)

_NOTHING_DENIED: frozenset[str] = frozenset()
# Rounded coordinates remembered per compiled plan.
COORDINATE_CACHE_SIZE = 65_536


def transform_event(
    event: Mapping[str, Any],
    policy: PartnerPolicy,
    *,
    denied_activities: frozenset[str] = _NOTHING_DENIED,
) -> dict[str, Any]:
    """The minimised copy of ``event`` for ``policy``; consent is not checked here.

    ``denied_activities`` names the activities (``ACTIVITY_FIELDS``) the consent
    engine denied for this event; their fields are removed. ``transmit_event``
    or an unknown name raises ValueError: the event must not be sent in any shape.

    The input is not mutated and shares no mutable object with the output.
    """
    if type(denied_activities) is not frozenset:
        denied_activities = frozenset(denied_activities)
    try:
        # The usual case: the policy's plan for this set is compiled already.
        compiled = policy.__dict__[_PLANS_ATTRIBUTE][denied_activities]
    except (AttributeError, KeyError):
        compiled = _compiled_plan(policy, denied_activities)
    kept = compiled.run(event, event, policy)
    if kept is REMOVE:
        return {}
    if policy.previous_pseudonym_key:
        _add_previous_pseudonyms(kept, event, policy.previous_pseudonym_key)
    return kept


def plan_for(
    policy: PartnerPolicy, denied_activities: frozenset[str] = _NOTHING_DENIED
) -> PlanNode:
    """The compiled plan of ``policy``'s allowlist and settings under ``denied_activities``."""
    return compile_plan(
        policy.field_allowlist,
        transforms=_transforms(policy) + _removals(denied_activities),
    )


# Plans are compiled once per policy object and kept on it, as the consent
# engine keeps its compiled rules: a batch build makes one policy and runs
# every event of its window through it.
_PLANS_ATTRIBUTE = "_minimisation_plans"
_MAX_PLANS = 64


class _Compiled:
    """A compiled plan and the function that applies it to a whole event."""

    __slots__ = ("plan", "run")

    def __init__(self, plan: PlanNode) -> None:
        self.plan = plan
        self.run: Transform
        if plan.transform is None and not plan.keeps_whole:
            self.run = plan.select  # what apply_plan would call, without the call to it
        else:

            def run(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
                return apply_plan(value, plan, event, policy)

            self.run = run


def _compiled_plan(policy: PartnerPolicy, denied_activities: frozenset[str]) -> _Compiled:
    plans = _plans_of(policy)
    compiled = plans.get(denied_activities)
    if compiled is None:
        compiled = plans[denied_activities] = _Compiled(plan_for(policy, denied_activities))
    return compiled


def _plans_of(policy: PartnerPolicy) -> dict[frozenset[str], _Compiled]:
    attributes = getattr(policy, "__dict__", None)
    if attributes is None:
        return {}  # nowhere to keep them: compiled for every event, slower but the same
    plans = attributes.get(_PLANS_ATTRIBUTE)
    if plans is None or len(plans) >= _MAX_PLANS:
        plans = {}
        # The policy is frozen for its fields; a cache beside them changes no answer.
        object.__setattr__(policy, _PLANS_ATTRIBUTE, plans)
    return plans


def denied_paths(denied_activities: Iterable[str]) -> tuple[str, ...]:
    """The dotted paths ``denied_activities`` remove; ValueError for a name that cannot be."""
    paths: list[str] = []
    for activity in sorted(denied_activities):
        if activity == TRANSMIT_EVENT:
            raise ValueError("transmit_event is denied: the event must be dropped, not sent")
        if activity not in ACTIVITY_FIELDS:
            # Unknown means unreviewed: fail closed rather than ignore a denial.
            raise ValueError(f"unknown activity {activity!r}")
        paths.extend(ACTIVITY_FIELDS[activity])
    return tuple(paths)


def _removals(denied_activities: frozenset[str]) -> tuple[tuple[str, Transform], ...]:
    # Attached after the other transforms, so a removal replaces a pseudonym or rounding.
    return tuple((path, _remove) for path in denied_paths(denied_activities))


def _remove(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    return REMOVE


def _transforms(policy: PartnerPolicy) -> tuple[tuple[str, Transform], ...]:
    """The transforms of ``policy``'s fields, with its key and settings bound.

    Each looks its value up in the cache of its helper first (pseudonyms, IPs,
    user agents recur within a session) and calls the helper only on a miss:
    the same results as calling the helper every time, with one call less.
    """
    pseudonym = pseudonymiser(policy.pseudonym_key)
    pseudonyms = pseudonym_cache(policy.pseudonym_key)
    known_pseudonym = pseudonyms.get if pseudonyms is not None else _no_cache
    truncate = truncator(ipv4_bits=policy.ipv4_prefix_bits, ipv6_bits=policy.ipv6_prefix_bits)
    truncations = truncation_cache(
        ipv4_bits=policy.ipv4_prefix_bits, ipv6_bits=policy.ipv6_prefix_bits
    )
    known_truncation = truncations.get if truncations is not None else _no_cache
    reduce = reducer(level=policy.user_agent_level)
    reductions = reduction_cache(level=policy.user_agent_level)
    known_reduction = reductions.get if reductions is not None else _no_cache
    decimals = policy.geo_decimals
    # A float within bounds is rounded inline; anything else goes through round_coordinate.
    inline_rounding = type(decimals) is int and 0 <= decimals <= MAX_DECIMALS
    honour_lmt = policy.honour_lmt

    def identifier(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
        if type(value) is str:
            found = known_pseudonym(value)
            if found:
                return found
        result = pseudonym(value)
        return REMOVE if result is None else result

    def device_ifa(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
        if honour_lmt and _limits_ad_tracking(event):
            return REMOVE
        if type(value) is str:
            found = known_pseudonym(value)
            if found:
                return found
        result = pseudonym(value)
        return REMOVE if result is None else result

    def ip(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
        if type(value) is str:
            result = known_truncation(value, UNKNOWN)
            if result is not UNKNOWN:
                return REMOVE if result is None else result
        result = truncate(value)
        return REMOVE if result is None else result

    # Rounded coordinates by value: a listener's lat/lon recur on every event of a
    # session, and round() with decimals is slow. Equal floats round alike (0.0 and
    # -0.0 both give 0.0); only valid coordinates are kept, and the cache starts over when full.
    rounded: dict[float, float] = {}
    known_rounding = rounded.get

    def rounding(value: float) -> float:
        result = known_rounding(value)
        if result is None:
            result = round(value, decimals) + 0.0
            if len(rounded) >= COORDINATE_CACHE_SIZE:
                rounded.clear()
            rounded[value] = result
        return result

    def latitude(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
        if inline_rounding and type(value) is float and -LATITUDE_LIMIT <= value <= LATITUDE_LIMIT:
            return rounding(value)
        result = round_coordinate(value, decimals=decimals, limit=LATITUDE_LIMIT)
        return REMOVE if result is None else result

    def longitude(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
        if (
            inline_rounding
            and type(value) is float
            and -LONGITUDE_LIMIT <= value <= LONGITUDE_LIMIT
        ):
            return rounding(value)
        result = round_coordinate(value, decimals=decimals, limit=LONGITUDE_LIMIT)
        return REMOVE if result is None else result

    def user_agent(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
        if type(value) is str:
            found = known_reduction(value)
            if found is not None:
                return found
        result = reduce(value)
        return REMOVE if result is None else result

    return (
        *((path, identifier) for path in IDENTIFIER_PATHS if path != DEVICE_IFA_PATH),
        (DEVICE_IFA_PATH, device_ifa),
        *((path, ip) for path in IP_PATHS),
        (LATITUDE_PATH, latitude),
        (LONGITUDE_PATH, longitude),
        (USER_AGENT_PATH, user_agent),
        # Only this module writes the *_previous fields; whatever the event carries
        # under those names is never sent.
        *((path, _remove) for path in PREVIOUS_PATHS),
    )


def _no_cache(value: object, default: object = None) -> object:
    return default


def _limits_ad_tracking(event: Mapping[str, Any]) -> bool:
    # The walker only reaches device.ifa through a device object, so it is a mapping.
    # Absent, false or 0 is off; true or 1 is on; anything else counts as on: fail closed.
    lmt = event["device"].get("lmt")
    return not (lmt is None or lmt is False or (type(lmt) is int and lmt == 0))


def _add_previous_pseudonyms(kept: dict[str, Any], event: Mapping[str, Any], key: bytes) -> None:
    """Beside each pseudonym sent, the same identifier under the previous key.

    Only where the current pseudonym is in the record: the previous one never
    adds an identifier the record would not carry anyway. ``kept`` is the
    walker's fresh output, so it is safe to extend in place.
    """
    for name in ("user_id", "household_id"):
        if name in kept:
            previous = pseudonymise(event[name], key=key)
            if previous is not None:
                kept[name + PREVIOUS_SUFFIX] = previous
    device = kept.get("device")
    if type(device) is dict and "ifa" in device:
        previous = pseudonymise(event["device"]["ifa"], key=key)
        if previous is not None:
            device["ifa" + PREVIOUS_SUFFIX] = previous
