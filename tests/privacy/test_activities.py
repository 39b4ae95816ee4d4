from __future__ import annotations

import pytest

from gateway.privacy.activities import (
    ACTIVITIES,
    ACTIVITY_DEFAULT_DENIED,
    ACTIVITY_RULE_DENIED,
    PurposeRequirement,
    RuleContext,
    activity_defaults_parse,
    activity_evaluate,
    activity_purposes_parse,
    activity_rule_problems,
    rules_by_activity,
)
from gateway.privacy.regime import GPP_SECTION_NAMES

from .engine_builders import rule

CA_EVENT = RuleContext(
    regimes=("us_state",),
    gpp_sections=frozenset({"usca"}),
    country="US",
    region="US-CA",
    gpc=True,
    coppa=False,
)


def _outcome(*rules, default: str = "allow", consent_reason: str | None = None):
    return activity_evaluate(
        activity="transmit_ip",
        rules=tuple(rules),
        default=default,
        context=CA_EVENT,
        consent_reason=consent_reason,
    )


def test_without_rules_the_default_decides() -> None:
    assert _outcome().allowed
    denied = _outcome(default="deny")
    assert (denied.allowed, denied.reason, denied.decided_by) == (
        False,
        ACTIVITY_DEFAULT_DENIED,
        "default",
    )


def test_an_empty_condition_matches_anything() -> None:
    outcome = _outcome(rule("transmit_ip", "deny"))

    assert (outcome.allowed, outcome.reason, outcome.decided_by) == (
        False,
        ACTIVITY_RULE_DENIED,
        "rule",
    )


def test_the_first_matching_rule_decides_and_later_rules_are_not_evaluated() -> None:
    outcome = _outcome(
        rule("transmit_ip", "deny", 1, countries=["DE"]),
        rule("transmit_ip", "allow", 2, regions=["US-CA"]),
        rule("transmit_ip", "deny", 3),
        default="deny",
    )

    assert outcome.allowed
    assert [(e.rule.position, e.matched, e.failed_condition) for e in outcome.evaluations] == [
        (1, False, "countries"),
        (2, True, None),
    ]


@pytest.mark.parametrize(
    ("conditions", "matches"),
    [
        ({"regimes": ["us_state", "us_national"]}, True),
        ({"regimes": ["tcf"]}, False),
        ({"gpp_sections": ["usca"]}, True),
        ({"gpp_sections": ["usnat"]}, False),
        ({"countries": ["US"]}, True),
        ({"regions": ["US-VA"]}, False),
        ({"gpc": True}, True),
        ({"gpc": False}, False),
        ({"coppa": False}, True),
        ({"coppa": True}, False),
        ({"countries": ["US"], "coppa": True}, False),
    ],
)
def test_every_given_condition_must_hold(conditions: dict, matches: bool) -> None:
    outcome = _outcome(rule("transmit_ip", "deny", **conditions))

    assert outcome.allowed is not matches


def test_a_rule_never_allows_what_consent_denied() -> None:
    outcome = _outcome(rule("transmit_ip", "allow"), consent_reason="gpc")

    assert (outcome.allowed, outcome.reason, outcome.decided_by) == (False, "gpc", "consent")
    assert outcome.evaluations[0].matched  # still shown as evaluated


def test_rules_are_grouped_per_activity_in_position_order() -> None:
    grouped = rules_by_activity(
        [rule("transmit_ip", "deny", 3), rule("transmit_ip", "allow", 1), rule("nope", "deny")]
    )

    assert set(grouped) == set(ACTIVITIES)
    assert [r.position for r in grouped["transmit_ip"]] == [1, 3]


def test_valid_rule_fields_have_no_problems() -> None:
    assert (
        activity_rule_problems(
            activity="transmit_user_ids",
            effect="deny",
            regimes=["us_state"],
            gpp_sections=["usca", "usnat"],
            countries=["US"],
            regions=["US-CA"],
            known_sections=GPP_SECTION_NAMES.values(),
        )
        == {}
    )


def test_invalid_rule_fields_are_named() -> None:
    problems = activity_rule_problems(
        activity="transmit_everything",
        effect="maybe",
        regimes=["gdpr"],
        gpp_sections=["uszz"],
        countries=["usa"],
        regions=["CA"],
        known_sections=GPP_SECTION_NAMES.values(),
    )

    assert set(problems) == {
        "activity",
        "effect",
        "regimes",
        "gpp_sections",
        "countries",
        "regions",
    }


def test_activity_purposes_are_parsed_into_requirements() -> None:
    parsed = activity_purposes_parse(
        {"transmit_event": {"purposes": [7, 9], "device_access": True}, "transmit_ip": {}}
    )

    assert parsed == {
        "transmit_event": PurposeRequirement(purposes=(7, 9), device_access=True),
        "transmit_ip": PurposeRequirement(),
    }


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"transmit_all": {}},
        {"transmit_event": []},
        {"transmit_event": {"purposes": [12]}},
        {"transmit_event": {"purposes": [True]}},
        {"transmit_event": {"special_features": [3]}},
        {"transmit_event": {"device_access": "yes"}},
        {"transmit_event": {"purpose": [7]}},
    ],
)
def test_invalid_activity_purposes_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        activity_purposes_parse(value)


def test_activity_defaults_must_be_allow_or_deny() -> None:
    assert activity_defaults_parse({"transmit_ip": "deny"}) == {"transmit_ip": "deny"}
    with pytest.raises(ValueError):
        activity_defaults_parse({"transmit_ip": "no"})
    with pytest.raises(ValueError):
        activity_defaults_parse({"transmit_nothing": "deny"})
