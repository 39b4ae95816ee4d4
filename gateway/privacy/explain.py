"""Explanations: why one partner receives one exposure the way it does.

``explain(event, policy)`` runs the consent engine and the minimisation on
the event and returns plain JSON-ready data: the regime, each signal decoded,
each check and activity rule evaluated, the decision, and which fields were
removed or transformed (by diffing the input with the record the partner
would receive). Identifier pseudonyms are shown shortened: an explanation is
for finding out why, not for joining data.

Pure: no Django; the admin and the API call it with a policy from
``gateway.delivery.policies``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gateway.privacy.activities import ActivityOutcome, RuleEvaluation
from gateway.privacy.consent import EngineResult, Signals, activity_requirements, gvl_vendor
from gateway.privacy.filter import ACTIVITY_FIELDS, filter_with_result
from gateway.privacy.policy import PartnerPolicy

# Fields whose output value is a pseudonym, never shown in full.
PSEUDONYM_PATHS = frozenset(
    {
        "user_id",
        "household_id",
        "device.ifa",
        "user_id_previous",
        "household_id_previous",
        "device.ifa_previous",
    }
)
_TRANSFORMATIONS = {
    "user_id": "pseudonymised (HMAC-SHA256 under the partner's key)",
    "household_id": "pseudonymised (HMAC-SHA256 under the partner's key)",
    "device.ifa": "pseudonymised (HMAC-SHA256 under the partner's key)",
    "ip": "truncated to the feed's prefix",
    "geo.lat": "rounded to the feed's decimals",
    "geo.lon": "rounded to the feed's decimals",
    "user_agent": "reduced to the feed's level",
}


def explain(event: Any, policy: PartnerPolicy) -> dict[str, Any]:
    """The structured explanation of ``event`` for ``policy``'s partner."""
    result, record = filter_with_result(event, policy)
    return {
        "partner": policy.partner_slug,
        "gvl_version": policy.gvl_version,
        "decision": {
            "eligible": result.decision.eligible,
            "reason": result.decision.reason,
        },
        "regime": _regime(result),
        "signals": signals_explain(result.signals, policy) if result.signals else None,
        "checks": [_plain(check) for check in result.checks],
        "activities": [_activity(outcome, policy) for outcome in result.activities],
        "audit": list(result.audit),
        "fields": fields_diff(event, record, result) if isinstance(event, Mapping) else [],
        "output": _shown(record) if record is not None else None,
    }


def _regime(result: EngineResult) -> dict[str, Any] | None:
    regime = result.regime
    if regime is None:
        return None
    return {
        "regimes": list(regime.regimes),
        "state_section": regime.state_section,
        "default_deny": regime.denied,
        "why": regime.why,
    }


def signals_explain(signals: Signals, policy: PartnerPolicy) -> dict[str, Any]:
    """Every signal of the event, decoded, with whether and how the engine honours it."""
    key = signals.key
    return {
        "gdpr": key.gdpr,
        "country": key.country,
        "region": key.region,
        "tcf": _tc(signals, policy),
        "gpp": _gpp(signals),
        "us_privacy": _us_privacy(signals),
        "gpc": {
            "signal": key.gpc,
            "honoured": signals.gpc_honoured,
            "partner_honours_gpc": policy.honour_gpc,
            "state_requires_gpc": key.country == "US" and key.region in policy.gpc_states,
        },
        "coppa": {"signal": key.coppa, "honoured": signals.coppa_honoured},
        "lmt": {
            "limited": key.limited,
            "honoured": signals.lmt_honoured,
            "device_has_ifa": key.has_ifa,
        },
        "problem": signals.problem,
    }


def _tc(signals: Signals, policy: PartnerPolicy) -> dict[str, Any] | None:
    tc = signals.tc
    if tc is None:
        return None
    vendor_id = policy.gvl_vendor_id
    vendor = gvl_vendor(policy.gvl, vendor_id) if vendor_id is not None else None
    restrictions = []
    for restriction in tc.publisher_restrictions:
        if vendor_id is not None and vendor_id in restriction.vendor_ids:
            restrictions.append(
                {
                    "purpose": restriction.purpose_id,
                    "type": int(restriction.restriction_type),
                    "type_name": restriction.restriction_type.name.lower(),
                }
            )
    disclosed = getattr(tc, "disclosed_vendors", None)
    return {
        "source": signals.tc_source,
        "version": tc.version,
        "policy_version": tc.policy_version,
        "vendor_list_version": tc.vendor_list_version,
        "cmp_id": tc.cmp_id,
        "cmp_version": tc.cmp_version,
        "created": tc.created.isoformat(),
        "last_updated": tc.last_updated.isoformat(),
        "is_service_specific": tc.is_service_specific,
        "publisher_cc": tc.publisher_cc,
        "purpose_consents": sorted(tc.purpose_consents),
        "purpose_legitimate_interests": sorted(tc.purpose_li),
        "special_feature_opt_ins": sorted(tc.special_feature_opt_ins),
        "vendor_id": vendor_id,
        "vendor_consent": vendor_id in tc.vendor_consents if vendor_id else None,
        "vendor_legitimate_interest": vendor_id in tc.vendor_li if vendor_id else None,
        "vendor_disclosed": (vendor_id in disclosed) if disclosed is not None else None,
        "publisher_restrictions_for_vendor": restrictions,
        "gvl_declarations": _vendor_declarations(vendor),
    }


def _vendor_declarations(vendor: Any) -> dict[str, Any] | None:
    if vendor is None:
        return None
    return {
        "name": vendor.name,
        "purposes": sorted(vendor.purposes),
        "legitimate_interest_purposes": sorted(vendor.leg_int_purposes),
        "flexible_purposes": sorted(vendor.flexible_purposes),
        "special_purposes": sorted(vendor.special_purposes),
        "special_features": sorted(vendor.special_features),
        "deleted": vendor.is_deleted,
    }


def _gpp(signals: Signals) -> dict[str, Any] | None:
    decoded = signals.gpp
    if decoded is None:
        return {"applicable_sections": list(signals.gpp_sections)} if signals.gpp_sections else None
    sections = {}
    for name, section in decoded.sections.items():
        fields = getattr(section, "fields", None)
        sections[name] = {
            "id": section.section_id,
            "version": getattr(section, "version", None),
            "fields": {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
            if isinstance(fields, Mapping)
            else None,
            "gpc": getattr(section, "gpc", None),
        }
    return {
        "section_ids": list(decoded.section_ids),
        "applicable_sections": list(signals.gpp_sections),
        "sections": sections,
        "us_national_views": [_plain(view) for view in signals.gpp_us_views],
        "us_denials": list(signals.gpp_us_reasons),
    }


def _us_privacy(signals: Signals) -> dict[str, Any] | None:
    usp = signals.us_privacy
    if usp is None:
        return None
    return {
        "source": signals.us_privacy_source,
        "notice": usp.notice,
        "opt_out_sale": usp.opt_out_sale,
        "lspa": usp.lspa,
        "opted_out_of_sale": usp.opted_out_of_sale,
    }


def _activity(outcome: ActivityOutcome, policy: PartnerPolicy) -> dict[str, Any]:
    requirement = activity_requirements(policy)[outcome.activity]
    return {
        "activity": outcome.activity,
        "allowed": outcome.allowed,
        "reason": outcome.reason,
        "decided_by": outcome.decided_by,
        "consent_reason": outcome.consent_reason,
        "tcf_requirement": _plain(requirement),
        "default": dict(policy.activity_defaults).get(outcome.activity, "allow"),
        "rules": [_rule(evaluation) for evaluation in outcome.evaluations],
        "fields": list(ACTIVITY_FIELDS.get(outcome.activity, ())),
    }


def _rule(evaluation: RuleEvaluation) -> dict[str, Any]:
    rule = evaluation.rule
    return {
        "position": rule.position,
        "effect": rule.effect,
        "conditions": rule.conditions(),
        "matched": evaluation.matched,
        "failed_condition": evaluation.failed_condition,
        "note": rule.note,
    }


# --- Field diff ---------------------------------------------------------------------------


def fields_diff(
    event: Mapping[str, Any], record: Mapping[str, Any] | None, result: EngineResult
) -> list[dict[str, Any]]:
    """Each leaf field of the input: kept, transformed or removed, and why.

    Fields only in the output (previous-key pseudonyms) are listed as added.
    """
    before = dict(_leaves(event))
    after = dict(_leaves(record)) if record is not None else {}
    denied_by_path = {
        path: (outcome.activity, outcome.reason)
        for outcome in result.activities
        if not outcome.allowed
        for path in ACTIVITY_FIELDS.get(outcome.activity, ())
    }
    rows = []
    for path, value in before.items():
        if record is None:
            rows.append({"path": path, "action": "removed", "why": "the event is not sent"})
        elif path not in after:
            why = _removed_why(path, denied_by_path)
            rows.append({"path": path, "action": "removed", "why": why})
        elif after[path] != value:
            why = _TRANSFORMATIONS.get(path, "transformed by minimisation")
            rows.append({"path": path, "action": "transformed", "why": why})
        else:
            rows.append({"path": path, "action": "kept", "why": "allowlisted"})
    for path in after.keys() - before.keys():
        rows.append({"path": path, "action": "added", "why": "pseudonym under the previous key"})
    return rows


def _removed_why(path: str, denied_by_path: Mapping[str, tuple[str, str | None]]) -> str:
    denied = denied_by_path.get(path)
    if denied is not None:
        activity, reason = denied
        return f"{activity} denied: {reason}"
    for prefix, (activity, reason) in denied_by_path.items():
        if path.startswith(prefix + "."):
            return f"{activity} denied: {reason}"
    return "not in the feed allowlist (or no safe value: limit ad tracking, no key)"


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        leaves = []
        for key, item in value.items():
            leaves.extend(_leaves(item, f"{prefix}{key}."))
        return leaves if leaves or not prefix else [(prefix[:-1], {})]
    return [(prefix[:-1], value)]


def _shown(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            shown[key] = _shown(value, path + ".")
        elif path in PSEUDONYM_PATHS and isinstance(value, str):
            shown[key] = f"{value[:8]}… (pseudonym)"
        else:
            shown[key] = value
    return shown


def _plain(value: Any) -> Any:
    """A dataclass as JSON-ready data (frozensets sorted, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
