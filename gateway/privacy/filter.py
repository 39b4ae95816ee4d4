"""The privacy filter: may a partner receive an exposure, and in what shape.

``decide`` answers the consent question only; ``filter_event`` adds the
minimised record. Neither raises: any input it cannot vouch for is dropped with
a reason code (see ``Reason``), because a partner must never receive data its
rules do not allow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.privacy.consent import consent_decision
from gateway.privacy.policy import Decision, PartnerPolicy
from gateway.privacy.reasons import Reason
from gateway.privacy.transform import transform_event

__all__ = ["Decision", "PartnerPolicy", "Reason", "decide", "filter_event"]

logger = logging.getLogger(__name__)


def decide(event: Mapping[str, Any], policy: PartnerPolicy) -> Decision:
    """Consent only: may ``policy``'s partner receive ``event`` at all?

    Checks, in order: COPPA; GDPR (flag, else EEA/UK geo) with TCF purposes,
    vendor consent and publisher restrictions; US Privacy opt-out of sale; GPC.
    """
    try:
        return consent_decision(event, policy)
    except Exception as exc:
        return _failed_closed(exc, policy=policy, step="decide")


def filter_event(
    event: Mapping[str, Any], policy: PartnerPolicy
) -> tuple[Decision, dict[str, Any] | None]:
    """The decision for ``event`` and, when allowed, the record the partner may receive.

    The record is None when the event is dropped. It is built anew, so the
    caller's event is never changed.
    """
    decision = decide(event, policy)
    if not decision.eligible:
        return decision, None
    try:
        return decision, transform_event(event, policy)
    except Exception as exc:
        return _failed_closed(exc, policy=policy, step="transform"), None


def _failed_closed(exc: Exception, *, policy: PartnerPolicy, step: str) -> Decision:
    # Only the exception type is logged: its message or traceback locals could
    # hold the very identifiers this filter exists to protect.
    logger.error(
        "privacy filter %s failed for partner %s: %s; event dropped",
        step,
        policy.partner_slug,
        type(exc).__name__,
    )
    return Decision.drop(Reason.FILTER_ERROR)
