"""Activity controls: what a partner may do with an exposure, after Prebid's activity rules.

Each activity (``transmit_event``, ``transmit_user_ids``, ...) has a default and
an ordered list of rules. A rule's conditions (regime, GPP section, country,
region, GPC, COPPA) must all hold for it to match; an empty condition matches
anything. The first matching rule decides; without a match the default does.

Rules run after the consent checks and can only narrow them: a rule can deny
what consent allowed, never allow what consent denied (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TRANSMIT_EVENT = "transmit_event"
TRANSMIT_USER_IDS = "transmit_user_ids"
TRANSMIT_DEVICE_IDS = "transmit_device_ids"
TRANSMIT_PRECISE_GEO = "transmit_precise_geo"
TRANSMIT_IP = "transmit_ip"
TRANSMIT_USER_AGENT = "transmit_user_agent"
# In evaluation order; partners.models.Activity has the same values.
ACTIVITIES: tuple[str, ...] = (
    TRANSMIT_EVENT,
    TRANSMIT_USER_IDS,
    TRANSMIT_DEVICE_IDS,
    TRANSMIT_PRECISE_GEO,
    TRANSMIT_IP,
    TRANSMIT_USER_AGENT,
)
# Activities about the fields of an event; denying one removes fields, not the event.
FIELD_ACTIVITIES: tuple[str, ...] = ACTIVITIES[1:]
# What US opt-outs, GPC and COPPA take away: identifiers and precise location.
USER_DATA_ACTIVITIES: frozenset[str] = frozenset(
    {TRANSMIT_USER_IDS, TRANSMIT_DEVICE_IDS, TRANSMIT_PRECISE_GEO}
)

ALLOW = "allow"
DENY = "deny"
EFFECTS = (ALLOW, DENY)

# Reason codes of denials that come from activity controls rather than consent.
ACTIVITY_RULE_DENIED = "activity_rule_denied"
ACTIVITY_DEFAULT_DENIED = "activity_default_denied"

# Values a rule's regime condition may name (see gateway.privacy.regime).
RULE_REGIMES = ("tcf", "us_national", "us_state", "none")
_COUNTRY = re.compile(r"[A-Z]{2}")
_REGION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
_SECTION = re.compile(r"[a-z][a-z0-9]{1,15}")


@dataclass(frozen=True)
class PurposeRequirement:
    """The TCF legal bases one activity needs.

    ``purposes``: each needs a legal basis (consent, or LI where allowed);
    ``any_purpose``: at least one of them needs one; ``special_features``: each
    needs the user's opt-in; ``device_access``: purpose 1 too when the event
    carries device access data (an advertising id, or a feed that sends one).
    """

    purposes: tuple[int, ...] = ()
    any_purpose: tuple[int, ...] = ()
    special_features: tuple[int, ...] = ()
    device_access: bool = False

    @property
    def is_empty(self) -> bool:
        return not (
            self.purposes or self.any_purpose or self.special_features or self.device_access
        )


_IDENTIFIER_PURPOSES = PurposeRequirement(any_purpose=tuple(range(2, 11)))
# The documented defaults (docs/privacy.md): measurement needs purpose 7, plus
# purpose 1 for device access; identifiers need a basis for one of purposes
# 2-10; precise geo needs special feature 1. IP and user agent need nothing
# beyond the event itself.
DEFAULT_PURPOSES: Mapping[str, PurposeRequirement] = {
    TRANSMIT_EVENT: PurposeRequirement(purposes=(7,), device_access=True),
    TRANSMIT_USER_IDS: _IDENTIFIER_PURPOSES,
    TRANSMIT_DEVICE_IDS: _IDENTIFIER_PURPOSES,
    TRANSMIT_PRECISE_GEO: PurposeRequirement(special_features=(1,)),
    TRANSMIT_IP: PurposeRequirement(),
    TRANSMIT_USER_AGENT: PurposeRequirement(),
}


@dataclass(frozen=True)
class ActivityRuleSpec:
    """One activity rule as plain data (from ``partners.models.ActivityRule``)."""

    activity: str
    position: int
    effect: str
    regimes: frozenset[str] = frozenset()
    gpp_sections: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    gpc: bool | None = None
    coppa: bool | None = None
    note: str = ""

    def conditions(self) -> dict[str, object]:
        """The conditions that are set, for explanations."""
        named: dict[str, object] = {
            "regimes": sorted(self.regimes),
            "gpp_sections": sorted(self.gpp_sections),
            "countries": sorted(self.countries),
            "regions": sorted(self.regions),
            "gpc": self.gpc,
            "coppa": self.coppa,
        }
        return {key: value for key, value in named.items() if value not in ([], None)}


@dataclass(frozen=True)
class RuleContext:
    """What rule conditions are matched against, for one event."""

    regimes: tuple[str, ...]
    gpp_sections: frozenset[str]
    country: str | None
    # ISO 3166-2, e.g. "US-CA"; None when unknown.
    region: str | None
    gpc: bool
    coppa: bool


@dataclass(frozen=True)
class RuleEvaluation:
    """One rule checked against an event: did it match, and which condition failed."""

    rule: ActivityRuleSpec
    matched: bool
    failed_condition: str | None = None


@dataclass(frozen=True)
class ActivityOutcome:
    """The verdict on one activity: allowed or not, who decided and why."""

    activity: str
    allowed: bool
    # Why it is denied (a consent reason or an activity reason); None when allowed.
    reason: str | None
    # "consent", "rule" or "default".
    decided_by: str
    consent_reason: str | None
    rule: ActivityRuleSpec | None
    evaluations: tuple[RuleEvaluation, ...]


def rule_failed_condition(rule: ActivityRuleSpec, context: RuleContext) -> str | None:
    """The first condition of ``rule`` that ``context`` does not meet; None when it matches."""
    if rule.regimes and rule.regimes.isdisjoint(context.regimes):
        return "regimes"
    if rule.gpp_sections and rule.gpp_sections.isdisjoint(context.gpp_sections):
        return "gpp_sections"
    if rule.countries and context.country not in rule.countries:
        return "countries"
    if rule.regions and context.region not in rule.regions:
        return "regions"
    if rule.gpc is not None and rule.gpc != context.gpc:
        return "gpc"
    if rule.coppa is not None and rule.coppa != context.coppa:
        return "coppa"
    return None


def activity_evaluate(
    *,
    activity: str,
    rules: tuple[ActivityRuleSpec, ...],
    default: str,
    context: RuleContext,
    consent_reason: str | None,
) -> ActivityOutcome:
    """The outcome of ``activity``: consent first, then the first matching rule, then the default.

    ``rules`` are the activity's rules in order. Every rule up to the first
    match is recorded (for explanations) even when consent already denied.
    """
    evaluations = []
    matched = None
    for rule in rules:
        failed = rule_failed_condition(rule, context)
        evaluations.append(
            RuleEvaluation(rule=rule, matched=failed is None, failed_condition=failed)
        )
        if failed is None:
            matched = rule
            break
    if consent_reason is not None:
        return ActivityOutcome(
            activity, False, consent_reason, "consent", consent_reason, matched, tuple(evaluations)
        )
    if matched is not None:
        allowed = matched.effect == ALLOW
        reason = None if allowed else ACTIVITY_RULE_DENIED
        return ActivityOutcome(activity, allowed, reason, "rule", None, matched, tuple(evaluations))
    allowed = default != DENY
    reason = None if allowed else ACTIVITY_DEFAULT_DENIED
    return ActivityOutcome(activity, allowed, reason, "default", None, None, tuple(evaluations))


def rules_by_activity(
    rules: Iterable[ActivityRuleSpec],
) -> dict[str, tuple[ActivityRuleSpec, ...]]:
    """Each activity's rules in evaluation order (position, then as given)."""
    grouped: dict[str, list[ActivityRuleSpec]] = {activity: [] for activity in ACTIVITIES}
    for rule in rules:
        # A rule for an unknown activity cannot be honoured safely, but it can
        # only deny, never widen, so it is simply ignored here; validation
        # refuses it in admin.
        if rule.activity in grouped:
            grouped[rule.activity].append(rule)
    return {
        activity: tuple(sorted(found, key=lambda rule: rule.position))
        for activity, found in grouped.items()
    }


# --- Validation (shared by the admin forms and the models' clean()) -----------------


def activity_rule_problems(
    *,
    activity: object,
    effect: object,
    regimes: object,
    gpp_sections: object,
    countries: object,
    regions: object,
    known_sections: Iterable[str],
) -> dict[str, str]:
    """Problems with an activity rule's fields, by field name; empty when valid."""
    problems: dict[str, str] = {}
    if activity not in ACTIVITIES:
        problems["activity"] = f"Unknown activity; one of {', '.join(ACTIVITIES)}."
    if effect not in EFFECTS:
        problems["effect"] = 'Must be "allow" or "deny".'
    sections = frozenset(known_sections)
    checks = (
        ("regimes", regimes, lambda v: v in RULE_REGIMES, f"one of {', '.join(RULE_REGIMES)}"),
        (
            "gpp_sections",
            gpp_sections,
            lambda v: bool(_SECTION.fullmatch(v)) and v in sections,
            "GPP section names such as usca or usnat",
        ),
        ("countries", countries, lambda v: bool(_COUNTRY.fullmatch(v)), 'ISO 3166-1 codes ("US")'),
        ("regions", regions, lambda v: bool(_REGION.fullmatch(v)), 'ISO 3166-2 codes ("US-CA")'),
    )
    for name, value, valid, expected in checks:
        if not isinstance(value, list) or not all(isinstance(v, str) and valid(v) for v in value):
            problems[name] = f"Must be a list of {expected}."
    return problems


def activity_purposes_parse(value: object) -> dict[str, PurposeRequirement]:
    """``ConsentRule.activity_purposes`` as requirements; raises ValueError when invalid.

    The shape is ``{"<activity>": {"purposes": [7], "any_purpose": [2, 3],
    "special_features": [1], "device_access": true}}``; every key is optional
    and a listed activity replaces its default entirely.
    """
    if not isinstance(value, Mapping):
        raise ValueError("must be an object keyed by activity name")
    parsed = {}
    for activity, spec in value.items():
        if activity not in ACTIVITIES:
            raise ValueError(f"{activity!r} is not an activity")
        if not isinstance(spec, Mapping):
            raise ValueError(f"{activity}: must be an object")
        unknown = set(spec) - {"purposes", "any_purpose", "special_features", "device_access"}
        if unknown:
            raise ValueError(f"{activity}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        device_access = spec.get("device_access", False)
        if not isinstance(device_access, bool):
            raise ValueError(f"{activity}: device_access must be true or false")
        parsed[activity] = PurposeRequirement(
            purposes=_ids(spec.get("purposes", []), high=11, what=f"{activity}.purposes"),
            any_purpose=_ids(spec.get("any_purpose", []), high=11, what=f"{activity}.any_purpose"),
            special_features=_ids(
                spec.get("special_features", []), high=2, what=f"{activity}.special_features"
            ),
            device_access=device_access,
        )
    return parsed


def activity_defaults_parse(value: object) -> dict[str, str]:
    """``ConsentRule.activity_defaults`` as ``{activity: "allow"|"deny"}``; raises ValueError."""
    if not isinstance(value, Mapping):
        raise ValueError("must be an object keyed by activity name")
    for activity, effect in value.items():
        if activity not in ACTIVITIES:
            raise ValueError(f"{activity!r} is not an activity")
        if effect not in EFFECTS:
            raise ValueError(f'{activity}: must be "allow" or "deny"')
    return dict(value)


def _ids(value: object, *, high: int, what: str) -> tuple[int, ...]:
    # TCF v2.2 defines purposes 1-11 and special features 1-2.
    if not isinstance(value, list) or not all(
        type(item) is int and 1 <= item <= high for item in value
    ):
        raise ValueError(f"{what} must be a list of ids between 1 and {high}")
    return tuple(sorted(set(value)))
