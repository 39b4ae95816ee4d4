"""Minimisation: the record a partner receives, once consent allows the event.

In order: limit-ad-tracking removes the device advertising id; identifiers are
replaced by per-partner pseudonyms; the IP is truncated; then only allowlisted
fields remain. The steps run during a single walk of the allowlist plan, and
only for fields the allowlist keeps.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from gateway.privacy.allowlist import REMOVE, PlanNode, Transform, apply_plan, compile_plan
from gateway.privacy.consent import read_flag
from gateway.privacy.network import truncate_ip
from gateway.privacy.policy import PartnerPolicy
from gateway.privacy.pseudonyms import pseudonymise

# Paths of identifiers that may only ever leave as pseudonyms, and of the IP.
IDENTIFIER_PATHS = ("user_id", "household_id", "device.ifa")
DEVICE_IFA_PATH = "device.ifa"
IP_PATHS = ("ip",)


def transform_event(event: Mapping[str, Any], policy: PartnerPolicy) -> dict[str, Any]:
    """The minimised copy of ``event`` for ``policy``; consent is not checked here.

    The input is not mutated and shares no mutable object with the output.
    """
    kept = apply_plan(event, plan_for(policy.field_allowlist), event, policy)
    return {} if kept is REMOVE else kept


@functools.lru_cache(maxsize=1024)
def plan_for(field_allowlist: frozenset[str]) -> PlanNode:
    """The compiled plan of an allowlist, built once and shared by every event."""
    return compile_plan(field_allowlist, transforms=_TRANSFORMS)


def _pseudonym(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    pseudonym = pseudonymise(value, key=policy.pseudonym_key)
    return REMOVE if pseudonym is None else pseudonym


def _device_ifa(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    if policy.honour_lmt and _limits_ad_tracking(event):
        return REMOVE
    return _pseudonym(value, event, policy)


def _limits_ad_tracking(event: Mapping[str, Any]) -> bool:
    # The walker only reaches device.ifa through a device object, so it is a mapping.
    # A flag that is neither a boolean nor 0/1 counts as on: fail closed.
    return read_flag(event["device"].get("lmt")) is not False


def _ip(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    truncated = truncate_ip(value)
    return REMOVE if truncated is None else truncated


_TRANSFORMS: tuple[tuple[str, Transform], ...] = (
    *((path, _pseudonym) for path in IDENTIFIER_PATHS if path != DEVICE_IFA_PATH),
    (DEVICE_IFA_PATH, _device_ifa),
    *((path, _ip) for path in IP_PATHS),
)
