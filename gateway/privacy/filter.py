"""The privacy filter: may a partner receive an exposure, and in what shape.

``decide`` answers whether the event may go out at all; ``filter_event`` adds
the minimised record, without the fields of the activities the consent engine
denied (identifiers, precise geo, ...). Both use the consent engine
(``consent.evaluate``); neither raises: any input the filter cannot vouch for
is dropped with a reason code (see ``Reason`` and ``EngineReason``), because a
partner must never receive data its rules do not allow.

Everything the filter decides about an event depends only on its signal key
(``signals.signal_key``) and the policy, so the filter keeps, per policy and
per key, a *route*: the engine's result and the function that minimises events
with that result's denials. An event whose key has a route is filtered with
one lookup and one call; any other goes the whole way (and leaves a route).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from gateway.privacy.consent import EngineReason, EngineResult, evaluate, evaluate_signal_key
from gateway.privacy.policy import Decision, PartnerPolicy
from gateway.privacy.reasons import Reason
from gateway.privacy.signals import signal_key
from gateway.privacy.transform import ACTIVITY_FIELDS, minimiser, transform_event

__all__ = [
    "ACTIVITY_FIELDS",
    "Decision",
    "EngineReason",
    "EngineResult",
    "PartnerPolicy",
    "Reason",
    "decide",
    "evaluate",
    "filter_event",
    "filter_with_result",
]

logger = logging.getLogger(__name__)

# Routes remembered per policy before they start over (as the engine's results).
ROUTE_CACHE_SIZE = 100_000
# Where a policy keeps its routes (gateway.privacy.rows follows them too).
ROUTES_ATTRIBUTE = "_filter_routes"
_FILTER_ERROR = EngineResult(decision=Decision.drop(Reason.FILTER_ERROR))
# The transform_event of this module when it was loaded: a route calls the same
# compiled plan directly. Should it be replaced (tests inject failures), every
# event goes through the replacement instead.
_TRANSFORM_EVENT = transform_event

# (minimise, or None for a dropped event; the engine's result)
_Route = tuple[Callable[[Mapping[str, Any]], dict[str, Any]] | None, EngineResult]


def decide(event: Mapping[str, Any], policy: PartnerPolicy) -> Decision:
    """May ``policy``'s partner receive ``event`` at all? (Its fields may still be limited.)"""
    return evaluate(event, policy).decision


def filter_event(
    event: Mapping[str, Any], policy: PartnerPolicy
) -> tuple[Decision, dict[str, Any] | None]:
    """The decision for ``event`` and, when allowed, the record the partner may receive.

    The record is None when the event is dropped. It is built anew, so the
    caller's event is never changed.
    """
    result, record = filter_with_result(event, policy)
    return result.decision, record


def filter_with_result(
    event: Mapping[str, Any], policy: PartnerPolicy
) -> tuple[EngineResult, dict[str, Any] | None]:
    """Like ``filter_event``, with the engine's whole result (denied activities, audit keys)."""
    if type(event) is dict:
        try:
            minimise, result = policy.__dict__[ROUTES_ATTRIBUTE][signal_key(event)]
        except Exception:  # no route yet (or unreadable signals): the whole way, below
            pass
        else:
            if minimise is None:
                return result, None
            try:
                return result, minimise(event)
            except Exception as exc:
                return _minimise_failed(exc, policy), None
    return _filter(event, policy)


def _filter(
    event: Mapping[str, Any], policy: PartnerPolicy
) -> tuple[EngineResult, dict[str, Any] | None]:
    """The whole way: the engine, then ``transform_event``; leaves a route when it can."""
    key = None
    if type(event) is dict:
        try:
            key = signal_key(event)
        except Exception:
            key = None  # evaluate reads it again, and reports the failure
    result = evaluate(event, policy) if key is None else evaluate_signal_key(key, policy)
    if not result.decision.eligible:
        if key is not None and result.decision.reason != Reason.FILTER_ERROR:
            _remember(policy, key, (None, result))
        return result, None
    try:
        record = transform_event(event, policy, denied_activities=result.denied_activities)
    except Exception as exc:
        return _minimise_failed(exc, policy), None
    if key is not None and transform_event is _TRANSFORM_EVENT:
        _remember(policy, key, (minimiser(policy, result.denied_activities), result))
    return result, record


def _remember(policy: PartnerPolicy, key: tuple[Any, ...], route: _Route) -> None:
    attributes = getattr(policy, "__dict__", None)
    if attributes is None:
        return  # nowhere to keep it: every event goes the whole way, slower but the same
    routes = attributes.get(ROUTES_ATTRIBUTE)
    if routes is None or len(routes) >= ROUTE_CACHE_SIZE:
        routes = {}
        # The policy is frozen for its fields; a cache beside them changes no answer.
        object.__setattr__(policy, ROUTES_ATTRIBUTE, routes)
    routes[key] = route


def _minimise_failed(exc: Exception, policy: PartnerPolicy) -> EngineResult:
    # Only the exception type is logged: its message or traceback locals could
    # hold the very identifiers this filter exists to protect.
    logger.error(
        "privacy filter transform failed for partner %s: %s; event dropped",
        policy.partner_slug,
        type(exc).__name__,
    )
    return _FILTER_ERROR
