from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from gateway.privacy.consent import EngineReason, evaluate
from gateway.privacy.filter import Decision, Reason, decide
from gateway.privacy.tcf import PublisherRestriction, RestrictionType

from .builders import VENDOR_ID, exposure, tc_string
from .engine_builders import policy

USER_DATA = {"transmit_user_ids", "transmit_device_ids", "transmit_precise_geo"}

GDPR_OK = {"gdpr": 1, "tcf": tc_string()}


def _reason(event: Any, **policy_overrides: Any) -> str | None:
    decision = decide(event, policy(**policy_overrides))
    assert decision.eligible is (decision.reason is None)
    return decision.reason


def _denied(event: Any, **policy_overrides: Any) -> dict[str, str]:
    """The activities denied for an event that is itself allowed."""
    result = evaluate(event, policy(**policy_overrides))
    assert result.decision.eligible
    return result.denied


def test_it_allows_a_us_event_without_any_opt_out() -> None:
    assert decide(exposure(), policy()) == Decision.allow()


def test_it_allows_a_gdpr_event_with_every_required_consent() -> None:
    assert _reason(exposure(consent=GDPR_OK)) is None


# --- COPPA ---------------------------------------------------------------------------------


@pytest.mark.parametrize("coppa", [True, 1])
def test_child_directed_events_are_sent_without_identifiers_or_precise_geo(coppa: object) -> None:
    denied = _denied(exposure(consent={"coppa": coppa}))

    assert denied == dict.fromkeys(USER_DATA, Reason.COPPA)


def test_a_partner_that_does_not_honour_coppa_keeps_identifiers() -> None:
    assert _denied(exposure(consent={"coppa": True}), honour_coppa=False) == {}


def test_coppa_never_drops_an_event_by_itself() -> None:
    consent = {"coppa": True, "us_privacy": "1YYN", "gpc": True}

    assert _reason(exposure(consent=consent)) is None


# --- GDPR and TCF --------------------------------------------------------------------------


@pytest.mark.parametrize("tcf", [None, ""], ids=["absent", "empty"])
def test_it_drops_gdpr_events_without_a_tc_string(tcf: str | None) -> None:
    consent: dict[str, Any] = {"gdpr": 1}
    if tcf is not None:
        consent["tcf"] = tcf

    assert _reason(exposure(consent=consent)) == Reason.TCF_CONSENT_MISSING


def test_it_drops_gdpr_events_with_a_malformed_tc_string() -> None:
    consent = {"gdpr": 1, "tcf": "not a tc string"}

    assert _reason(exposure(consent=consent)) == Reason.MALFORMED_CONSENT


def test_it_drops_events_without_purpose_7_consent() -> None:
    consent = {"gdpr": 1, "tcf": tc_string(purpose_consents={1, 2, 3})}

    assert _reason(exposure(consent=consent)) == "tcf_purpose_7_missing"


def test_it_reports_the_lowest_missing_purpose_first() -> None:
    consent = {"gdpr": 1, "tcf": tc_string(purpose_consents={2})}

    assert _reason(exposure(consent=consent), required_tcf_purposes=frozenset({9, 1, 7})) == (
        "tcf_purpose_1_missing"
    )


def test_legitimate_interest_does_not_stand_in_for_purpose_consent() -> None:
    consent = {"gdpr": 1, "tcf": tc_string(purpose_consents={1}, purpose_li={7})}

    assert _reason(exposure(consent=consent)) == Reason.tcf_purpose_missing(7)


def test_within_a_purpose_the_purpose_bit_is_checked_before_the_vendor_bit() -> None:
    consent = {"gdpr": 1, "tcf": tc_string(purpose_consents={7}, vendor_consents={1})}

    assert _reason(exposure(consent=consent)) == "tcf_purpose_1_missing"


def test_it_drops_gdpr_events_without_the_partners_vendor_consent() -> None:
    consent = {"gdpr": 1, "tcf": tc_string(vendor_consents={VENDOR_ID + 1})}

    assert _reason(exposure(consent=consent)) == Reason.TCF_VENDOR_NOT_CONSENTED


def test_vendor_li_does_not_stand_in_for_vendor_consent() -> None:
    consent = {"gdpr": 1, "tcf": tc_string(vendor_consents=set(), vendor_li={VENDOR_ID})}

    assert _reason(exposure(consent=consent)) == Reason.TCF_VENDOR_NOT_CONSENTED


def test_a_partner_without_a_gvl_id_never_has_vendor_consent() -> None:
    assert _reason(exposure(consent=GDPR_OK), gvl_vendor_id=None) == (
        Reason.TCF_VENDOR_NOT_CONSENTED
    )


def test_vendor_consent_is_needed_even_when_the_old_rule_switch_is_off() -> None:
    # TCF v2.2 always needs the vendor's legal basis; the switch is kept for configuration only.
    consent = {"gdpr": 1, "tcf": tc_string(vendor_consents=set())}

    assert _reason(exposure(consent=consent), require_vendor_consent=False) == (
        Reason.TCF_VENDOR_NOT_CONSENTED
    )


def test_without_a_vendor_list_tcf_events_fail_closed() -> None:
    assert _reason(exposure(consent=GDPR_OK), gvl=None) == EngineReason.TCF_GVL_MISSING


def test_it_drops_events_whose_publisher_forbids_a_required_purpose_for_the_vendor() -> None:
    restriction = PublisherRestriction(
        purpose_id=7,
        restriction_type=RestrictionType.NOT_ALLOWED,
        vendor_ids=frozenset({VENDOR_ID}),
    )
    consent = {"gdpr": 1, "tcf": tc_string(publisher_restrictions=[restriction])}

    assert _reason(exposure(consent=consent)) == Reason.TCF_PUBLISHER_RESTRICTION


def test_a_restriction_of_another_vendor_or_purpose_does_not_matter() -> None:
    restrictions = [
        PublisherRestriction(
            purpose_id=7, restriction_type=RestrictionType.NOT_ALLOWED, vendor_ids=frozenset({1})
        ),
        PublisherRestriction(
            purpose_id=3,
            restriction_type=RestrictionType.NOT_ALLOWED,
            vendor_ids=frozenset({VENDOR_ID}),
        ),
    ]
    consent = {"gdpr": 1, "tcf": tc_string(publisher_restrictions=restrictions)}

    assert _reason(exposure(consent=consent)) is None


def test_the_tc_string_is_ignored_where_gdpr_does_not_apply() -> None:
    consent = {"gdpr": 0, "tcf": tc_string(purpose_consents=set())}

    assert _reason(exposure(consent=consent)) is None


@pytest.mark.parametrize("gdpr", ["absent", None])
@pytest.mark.parametrize("country", ["DE", "FR", "IE", "NO", "IS", "LI", "GB", "de", "RE"])
def test_gdpr_applies_by_geo_when_the_flag_is_absent(gdpr: object, country: str) -> None:
    consent = {} if gdpr == "absent" else {"gdpr": gdpr}
    event = exposure(consent=consent, geo={"country": country})

    assert _reason(event) == Reason.TCF_CONSENT_MISSING


@pytest.mark.parametrize("country", ["US", "CH", "BR", "JP"])
def test_gdpr_does_not_apply_outside_the_eea_and_uk_when_the_flag_is_absent(country: str) -> None:
    event = exposure(consent={"gdpr": None}, geo={"country": country})

    assert _reason(event) is None


@pytest.mark.parametrize(
    "geo",
    [None, {}, {"country": None}, {"country": 49}, {"country": "DEU"}, {"country": ""}, "DE"],
)
def test_gdpr_applies_when_neither_the_flag_nor_the_country_can_be_read(geo: object) -> None:
    event = exposure(consent={})
    if geo is None:
        del event["geo"]
    else:
        event["geo"] = geo

    assert _reason(event) == Reason.TCF_CONSENT_MISSING


def test_an_explicit_gdpr_0_wins_over_an_eea_country() -> None:
    event = exposure(consent={"gdpr": 0}, geo={"country": "DE"})

    assert _reason(event) is None


def test_an_explicit_gdpr_1_applies_outside_the_eea() -> None:
    assert _reason(exposure(consent={"gdpr": 1})) == Reason.TCF_CONSENT_MISSING


@pytest.mark.parametrize("gdpr", [2, -1, "1", "0", True, False, 1.0, [1], {}])
def test_a_gdpr_flag_other_than_0_1_or_null_is_malformed(gdpr: object) -> None:
    assert _reason(exposure(consent={"gdpr": gdpr})) == Reason.MALFORMED_CONSENT


# --- US Privacy ----------------------------------------------------------------------------


def test_an_opt_out_of_sale_removes_identifiers_and_precise_geo_but_not_the_event() -> None:
    denied = _denied(exposure(consent={"us_privacy": "1YYN"}))

    assert denied == dict.fromkeys(USER_DATA, Reason.US_PRIVACY_OPT_OUT)


def test_an_opt_out_is_ignored_by_a_partner_that_does_not_honour_it() -> None:
    event = exposure(consent={"us_privacy": "1YYN"})

    assert _denied(event, honour_us_privacy_opt_out=False) == {}


@pytest.mark.parametrize("us_privacy", ["1---", "1YNN", "1NNY", ""])
def test_nothing_is_denied_without_an_opt_out_of_sale(us_privacy: str) -> None:
    assert _denied(exposure(consent={"us_privacy": us_privacy})) == {}


@pytest.mark.parametrize("us_privacy", ["1YY", "2YYN", "1yyn", "YES!"])
def test_a_malformed_us_privacy_string_fails_closed(us_privacy: str) -> None:
    assert _reason(exposure(consent={"us_privacy": us_privacy})) == Reason.MALFORMED_CONSENT


def test_a_malformed_us_privacy_string_fails_closed_even_when_not_honoured() -> None:
    event = exposure(consent={"us_privacy": "2YYN"})

    assert _reason(event, honour_us_privacy_opt_out=False) == Reason.MALFORMED_CONSENT


# --- GPC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gpc", [True, 1])
def test_gpc_in_a_state_that_requires_it_removes_identifiers(gpc: object) -> None:
    event = exposure(consent={"gpc": gpc})  # geo.region CA

    assert _denied(event) == dict.fromkeys(USER_DATA, Reason.GPC)


def test_gpc_is_ignored_by_a_partner_that_does_not_honour_it() -> None:
    assert _denied(exposure(consent={"gpc": True}), honour_gpc=False) == {}


def test_gpc_is_ignored_in_a_state_whose_law_does_not_require_it() -> None:
    event = exposure(consent={"gpc": True}, geo={"country": "US", "region": "FL"})

    assert _denied(event) == {}
    assert _denied(event, gpc_states=frozenset({"FL"})) == dict.fromkeys(USER_DATA, Reason.GPC)


# --- Order ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({"gdpr": 1, "us_privacy": "1YYN", "gpc": True, "coppa": True}, Reason.TCF_CONSENT_MISSING),
        ({"gdpr": 1, "tcf": "garbage", "coppa": True}, Reason.MALFORMED_CONSENT),
        ({"gdpr": 0, "us_privacy": "1YYN", "gpc": True}, None),
        ({**GDPR_OK, "us_privacy": "1YYN"}, None),
    ],
)
def test_only_malformed_signals_and_tcf_drop_events(consent: dict, expected: str | None) -> None:
    assert _reason(exposure(consent=consent)) == expected


def test_the_first_denial_of_an_activity_is_the_one_recorded() -> None:
    consent = {"us_privacy": "1YYN", "gpc": True, "coppa": True}

    assert _denied(exposure(consent=consent))["transmit_user_ids"] == Reason.US_PRIVACY_OPT_OUT


# --- Missing and malformed input -----------------------------------------------------------


def test_a_missing_consent_object_counts_as_empty() -> None:
    event = exposure()
    del event["consent"]

    assert _reason(event) is None
    assert _reason({**event, "geo": {"country": "DE"}}) == Reason.TCF_CONSENT_MISSING


def test_a_null_consent_object_counts_as_empty() -> None:
    event = exposure(geo={"country": "FR"})
    event["consent"] = None

    assert _reason(event) == Reason.TCF_CONSENT_MISSING


@pytest.mark.parametrize("consent", [[], "gdpr=0", 0, True])
def test_a_consent_value_that_is_not_an_object_is_malformed(consent: object) -> None:
    event = exposure()
    event["consent"] = consent

    assert _reason(event) == Reason.MALFORMED_CONSENT


@pytest.mark.parametrize(
    "consent",
    [
        {"gpc": "true"},
        {"gpc": 2},
        {"coppa": "no"},
        {"coppa": None, "gpc": []},
        {"us_privacy": 1},
        {"us_privacy": ["1YNN"]},
        {"tcf": 12345},
        {"gdpr": 0, "tcf": {"purposes": [1]}},
    ],
)
def test_a_wrongly_typed_consent_field_fails_closed(consent: dict) -> None:
    assert _reason(exposure(consent=consent)) == Reason.MALFORMED_CONSENT


@pytest.mark.parametrize(
    "consent",
    [{"gpc": "true"}, {"us_privacy": 1}, {"coppa": "yes"}, {"us_privacy": "1YY"}],
)
def test_a_wrongly_typed_field_fails_closed_even_when_the_partner_ignores_it(
    consent: dict,
) -> None:
    event = exposure(consent=consent)
    ignoring = {
        "honour_gpc": False,
        "honour_us_privacy_opt_out": False,
        "honour_coppa": False,
    }

    assert _reason(event, **ignoring) == Reason.MALFORMED_CONSENT


def test_unknown_consent_fields_are_ignored() -> None:
    assert _reason(exposure(consent={"gdpr": 0, "x": 1, "tcfv1": "BOE"})) is None


@pytest.mark.parametrize("event", [None, 42, "event", [("consent", {})], b"{}"])
def test_an_event_that_is_not_an_object_is_dropped(event: object) -> None:
    assert _reason(event) == Reason.MALFORMED_EVENT


class _ExplodingMapping(Mapping[str, Any]):
    """A mapping whose every read fails, standing in for any bug below decide."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("user-123 leaked into an error message")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("user-123")

    def __len__(self) -> int:
        return 1


def test_it_never_raises_and_fails_closed_on_unexpected_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _reason(_ExplodingMapping()) == Reason.FILTER_ERROR
    assert "RuntimeError" in caplog.text
    assert "user-123" not in caplog.text


def test_purpose_reason_codes_name_the_purpose() -> None:
    assert Reason.tcf_purpose_missing(7) == "tcf_purpose_7_missing"
    assert Reason.tcf_purpose_missing(7).startswith(Reason.TCF_PURPOSE_MISSING_PREFIX)
