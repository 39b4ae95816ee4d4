"""The privacy filter: may a partner receive an exposure, and in what shape.

``decide`` answers whether the event may go out at all; ``filter_event`` adds
the minimised record, without the fields of the activities the consent engine
denied (identifiers, precise geo, ...). Both use ``consent.evaluate``; neither
raises: any input the filter cannot vouch for is dropped with a reason code
(see ``Reason`` and ``EngineReason``), because a partner must never receive
data its rules do not allow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.privacy.consent import EngineReason, EngineResult, evaluate
from gateway.privacy.policy import Decision, PartnerPolicy
from gateway.privacy.reasons import Reason
from gateway.privacy.transform import ACTIVITY_FIELDS, transform_event

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
    result = evaluate(event, policy)
    if not result.decision.eligible:
        return result, None
    try:
        return result, transform_event(event, policy, denied_activities=result.denied_activities)
    except Exception as exc:
        # Only the exception type is logged: its message or traceback locals could
        # hold the very identifiers this filter exists to protect.
        logger.error(
            "privacy filter transform failed for partner %s: %s; event dropped",
            policy.partner_slug,
            type(exc).__name__,
        )
        return EngineResult(decision=Decision.drop(Reason.FILTER_ERROR)), None
