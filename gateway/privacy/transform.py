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

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from gateway.privacy.allowlist import (
    REMOVE,
    CachedTransform,
    PlanNode,
    Transform,
    apply_plan,
    compile_plan,
    remove_field,
)
from gateway.privacy.geo import LATITUDE_LIMIT, LONGITUDE_LIMIT, coordinate_rounder
from gateway.privacy.network import uncached_truncator
from gateway.privacy.policy import PartnerPolicy, policy_cache
from gateway.privacy.pseudonyms import uncached_pseudonymiser
from gateway.privacy.speedups import speedups_load
from gateway.privacy.useragent import uncached_reducer

# The compiled versions of the hot paths, or None (see speedups.py).
_speedups = speedups_load()

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
# Results remembered per policy (a policy lives for a build, or as long as a
# worker keeps it: gateway.delivery.kept_policies), per kind:
# pseudonyms, truncated IPs, reduced user agents, rounded coordinates. Each cache
# starts over when full.
PSEUDONYM_CACHE_SIZE = 65_536
IP_CACHE_SIZE = 65_536
USER_AGENT_CACHE_SIZE = 65_536
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
    return compiled.minimise(event)


def minimiser(
    policy: PartnerPolicy, denied_activities: frozenset[str] = _NOTHING_DENIED
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``transform_event`` with its policy and denied activities bound: the same records.

    For callers that minimise many events with the same denials (the filter
    keeps one per signal key). Raises as ``transform_event`` does for a denial
    that cannot be honoured.
    """
    return _compiled_plan(policy, frozenset(denied_activities)).minimise


def plan_for(
    policy: PartnerPolicy, denied_activities: frozenset[str] = _NOTHING_DENIED
) -> PlanNode:
    """The compiled plan of ``policy``'s allowlist and settings under ``denied_activities``."""
    return compile_plan(
        policy.field_allowlist,
        transforms=_policy_transforms(policy).fields + _removals(denied_activities),
    )


# Plans are compiled once per policy object and kept on it, as the consent
# engine keeps its compiled rules: a batch build makes one policy and runs
# every event of its window through it. So are the transforms and their caches:
# the raw values they remember (identifiers, IPs) live no longer than the build.
_PLANS_ATTRIBUTE = "_minimisation_plans"
_TRANSFORMS_ATTRIBUTE = "_minimisation_transforms"
_MAX_PLANS = 64


class _Compiled:
    """A compiled plan and the function that applies it to a whole event."""

    __slots__ = ("minimise", "plan", "run")

    def __init__(self, plan: PlanNode, policy: PartnerPolicy) -> None:
        self.plan = plan
        self.run: Transform
        if plan.transform is None and not plan.keeps_whole:
            self.run = plan.select  # what apply_plan would call, without the call to it
        else:

            def run(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
                return apply_plan(value, plan, event, policy)

            self.run = run
        self.minimise = _minimise_function(self.run, policy)


def _minimise_function(
    run: Transform, policy: PartnerPolicy
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    previous = _policy_transforms(policy).previous
    if previous is None and _speedups is not None:
        return _speedups.Minimiser(run, policy, REMOVE)
    if previous is None:

        def minimise(event: Mapping[str, Any]) -> dict[str, Any]:
            kept = run(event, event, policy)
            return {} if kept is REMOVE else kept

        return minimise

    def minimise_with_previous(event: Mapping[str, Any]) -> dict[str, Any]:
        kept = run(event, event, policy)
        if kept is REMOVE:
            return {}
        _add_previous_pseudonyms(kept, event, policy, previous)
        return kept

    return minimise_with_previous


def _compiled_plan(policy: PartnerPolicy, denied_activities: frozenset[str]) -> _Compiled:
    plans = _plans_of(policy)
    compiled = plans.get(denied_activities)
    if compiled is None:
        compiled = _Compiled(plan_for(policy, denied_activities), policy)
        plans[denied_activities] = compiled
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
    return tuple((path, remove_field) for path in denied_paths(denied_activities))


class _PolicyTransforms:
    """The transforms of one policy's fields, with its key, settings and caches bound."""

    __slots__ = ("fields", "previous")

    def __init__(
        self,
        fields: tuple[tuple[str, Transform], ...],
        previous: CachedTransform | None,
    ) -> None:
        self.fields = fields
        # Pseudonyms under the previous key during a rotation's overlap, else None.
        self.previous = previous


def _policy_transforms(policy: PartnerPolicy) -> _PolicyTransforms:
    return policy_cache(policy, _TRANSFORMS_ATTRIBUTE, lambda: _transforms(policy))


def _transforms(policy: PartnerPolicy) -> _PolicyTransforms:
    """The transforms of ``policy``'s fields, with its key and settings bound.

    Each remembers its results per value in a cache of its own (pseudonyms, IPs,
    user agents and coordinates recur within a listening session), made here,
    once per policy: raw identifiers are never kept beyond the policy's batch
    build, and never shared with another partner's. The results are those of
    the helpers (``pseudonymise``, ``truncate_ip``, ``reduce_user_agent``,
    ``round_coordinate``) with the policy's settings.
    """
    decimals = policy.geo_decimals
    honour_lmt = policy.honour_lmt
    latitude = coordinate_rounder(decimals=decimals, limit=LATITUDE_LIMIT)
    longitude = coordinate_rounder(decimals=decimals, limit=LONGITUDE_LIMIT)
    pseudonym = uncached_pseudonymiser(policy.pseudonym_key)
    identifier = CachedTransform(pseudonym, key_type=str, size=PSEUDONYM_CACHE_SIZE)
    # The same pseudonyms as the other identifiers (one cache), unless limit ad tracking.
    device_ifa = CachedTransform(
        pseudonym,
        key_type=str,
        size=PSEUDONYM_CACHE_SIZE,
        guard=_lmt_guard() if honour_lmt else None,
    )
    device_ifa.cache = identifier.cache
    device_ifa.text_cache = identifier.text_cache
    ip = CachedTransform(
        uncached_truncator(ipv4_bits=policy.ipv4_prefix_bits, ipv6_bits=policy.ipv6_prefix_bits),
        key_type=str,
        size=IP_CACHE_SIZE,
    )
    user_agent = CachedTransform(
        uncached_reducer(level=policy.user_agent_level), key_type=str, size=USER_AGENT_CACHE_SIZE
    )
    # Rounded coordinates by value: round() with decimals is slow. Equal floats round
    # alike (0.0 and -0.0 both give 0.0), so float keys are safe; ints and bools are
    # computed every time. One cache each: their limits differ.
    lat = CachedTransform(latitude, key_type=float, size=COORDINATE_CACHE_SIZE)
    lon = CachedTransform(longitude, key_type=float, size=COORDINATE_CACHE_SIZE)
    previous = None
    if policy.previous_pseudonym_key:
        previous = CachedTransform(
            uncached_pseudonymiser(policy.previous_pseudonym_key),
            key_type=str,
            size=PSEUDONYM_CACHE_SIZE,
        )
    fields: tuple[tuple[str, Transform], ...] = (
        *((path, identifier) for path in IDENTIFIER_PATHS if path != DEVICE_IFA_PATH),
        (DEVICE_IFA_PATH, device_ifa),
        *((path, ip) for path in IP_PATHS),
        (LATITUDE_PATH, lat),
        (LONGITUDE_PATH, lon),
        (USER_AGENT_PATH, user_agent),
        # Only this module writes the *_previous fields; whatever the event carries
        # under those names is never sent.
        *((path, remove_field) for path in PREVIOUS_PATHS),
    )
    return _PolicyTransforms(fields, previous)


def _lmt_guard() -> Callable[[Mapping[str, Any]], bool]:
    # The C version answers the same, without a Python call per event.
    return _limits_ad_tracking if _speedups is None else _speedups.limits_ad_tracking


def _limits_ad_tracking(event: Mapping[str, Any]) -> bool:
    # The walker only reaches device.ifa through a device object, so it is a mapping.
    # Absent, false or 0 is off; true or 1 is on; anything else counts as on: fail closed.
    lmt = event["device"].get("lmt")
    return not (lmt is None or lmt is False or (type(lmt) is int and lmt == 0))


def _add_previous_pseudonyms(
    kept: dict[str, Any],
    event: Mapping[str, Any],
    policy: PartnerPolicy,
    previous: CachedTransform,
) -> None:
    """Beside each pseudonym sent, the same identifier under the previous key.

    Only where the current pseudonym is in the record: the previous one never
    adds an identifier the record would not carry anyway. ``kept`` is the
    walker's fresh output, so it is safe to extend in place.
    """
    for name in ("user_id", "household_id"):
        if name in kept:
            pseudonym = previous(event[name], event, policy)
            if pseudonym is not REMOVE:
                kept[name + PREVIOUS_SUFFIX] = pseudonym
    device = kept.get("device")
    if type(device) is dict and "ifa" in device:
        pseudonym = previous(event["device"]["ifa"], event, policy)
        if pseudonym is not REMOVE:
            device["ifa" + PREVIOUS_SUFFIX] = pseudonym
