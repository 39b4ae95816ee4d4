"""The consent engine end to end: regimes, TCF per activity, US signals, LMT, rules, audit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.privacy.activities import PurposeRequirement
from gateway.privacy.consent import EngineReason, evaluate
from gateway.privacy.filter import filter_event
from gateway.privacy.gpp import reasons as gpp_reasons
from gateway.privacy.gvl import parse_gvl
from gateway.privacy.reasons import Reason

from .builders import VENDOR_ID, exposure, tc_string
from .engine_builders import gvl_document, policy, rule

USER_DATA = {"transmit_user_ids", "transmit_device_ids", "transmit_precise_geo"}
DE = {"country": "DE"}
# From tests/privacy/vectors/gpp_vectors.json (generated with @iabgpp/cmpapi).
GPP_TCF = (
    "DBABMA~CP-x2PwP-x2PwEsAHCFRCWEgAMJAAEIAAAYgH0QA4AAgAGAvMB9AF5wAQF5gAAAA.IAAA.YAAAAAAAAAAA"
)
GPP_USP_NO_OPT_OUT = "DBABTA~1YNN"
GPP_USP_OPTED_OUT = "DBABTA~1YYY"
GPP_USNAT_DEFAULTS = "DBABLA~CAAAAAAAAABA.QA"
GPP_USNAT_ALL_OPTED_OUT = "DBABLA~CVVVAAAAAABA.YA"
GPP_USNAT_SERVICE_PROVIDER = "DBABLA~CAAAAAAAAABk.QA"
GPP_USFL = "DBABAw~BAAAAABA"
# usmn: targeted advertising opted out, sensitive data without consent, GPC true.
GPP_USMN_OPTED_OUT = "DBABIYA~BVlhhlQA.YA"
GPP_USNAT_AND_USRI = "DBACLKw~CAAAAAAAAABA.QA~BQAA.AAA"


def _result(event: dict[str, Any], **policy_overrides: Any):
    return evaluate(event, policy(**policy_overrides))


def _gdpr(**tc_overrides: Any) -> dict[str, Any]:
    return exposure(consent={"gdpr": 1, "tcf": tc_string(**tc_overrides)}, geo=DE)


# --- TCF per activity ----------------------------------------------------------------------


def test_identifiers_need_a_legal_basis_for_one_of_purposes_2_to_10() -> None:
    assert _result(_gdpr()).denied == {
        "transmit_precise_geo": Reason.tcf_special_feature_missing(1)
    }  # purpose 7 counts for identifiers

    custom = (("transmit_user_ids", PurposeRequirement(any_purpose=(2, 3))),)
    result = _result(_gdpr(), activity_purposes=custom)

    assert result.decision.eligible
    assert result.denied["transmit_user_ids"] == EngineReason.TCF_NO_PURPOSE_BASIS


def test_precise_geo_needs_special_feature_1() -> None:
    assert "transmit_precise_geo" not in _result(_gdpr(special_feature_opt_ins={1})).denied


def test_without_vendor_consent_identifiers_are_denied_with_the_shared_reason() -> None:
    consent = {"gdpr": 1, "tcf": tc_string(purpose_consents={1, 7}, vendor_consents=set())}
    result = _result(exposure(consent=consent, geo=DE), require_vendor_consent=False)

    assert result.decision.reason == Reason.TCF_VENDOR_NOT_CONSENTED


def test_purpose_1_is_needed_only_with_device_access_data() -> None:
    event = _gdpr(purpose_consents={7})
    del event["device"]["ifa"]

    assert _result(event, required_tcf_purposes=frozenset()).decision.eligible
    with_ifa = _gdpr(purpose_consents={7})
    assert _result(with_ifa, required_tcf_purposes=frozenset()).decision.reason == (
        Reason.tcf_purpose_missing(1)
    )
    sends_ids = policy(required_tcf_purposes=frozenset(), field_allowlist=frozenset({"device"}))
    assert evaluate(event, sends_ids).decision.reason == Reason.tcf_purpose_missing(1)


def test_legitimate_interest_counts_where_the_vendor_declares_it() -> None:
    gvl = parse_gvl(gvl_document(purposes=[1], legIntPurposes=[7]))
    event = _gdpr(purpose_consents={1}, purpose_li={7}, vendor_li={VENDOR_ID})

    assert _result(event, gvl=gvl).decision.eligible


def test_a_vendor_missing_from_the_gvl_fails_closed() -> None:
    gvl = parse_gvl(gvl_document(vendor_id=VENDOR_ID + 1))

    assert _result(_gdpr(), gvl=gvl).decision.reason == Reason.TCF_VENDOR_NOT_IN_GVL


def test_a_globally_scoped_tc_string_fails_closed() -> None:
    assert _result(_gdpr(is_service_specific=False)).decision.reason == (
        Reason.TCF_NOT_SERVICE_SPECIFIC
    )


def test_the_tc_string_may_come_from_gpp() -> None:
    gvl = parse_gvl(gvl_document(vendor_id=755))
    event = exposure(consent={"gdpr": 1, "gpp": GPP_TCF, "gpp_sid": [2]}, geo=DE)

    result = _result(event, gvl=gvl, gvl_vendor_id=755)

    assert result.decision.eligible
    assert result.signals.tc_source == "gpp:tcfeuv2"


def test_a_gdpr_event_in_the_us_gets_the_us_checks_too() -> None:
    event = exposure(consent={"gdpr": 1, "tcf": tc_string(), "us_privacy": "1YYN"})

    result = _result(event)

    assert result.regime.regimes == ("tcf", "us_state")
    assert result.denied["transmit_user_ids"] == Reason.US_PRIVACY_OPT_OUT


# --- GPP -----------------------------------------------------------------------------------


def test_gpp_uspv1_overrides_the_legacy_us_privacy_string() -> None:
    lenient = exposure(consent={"us_privacy": "1YYN", "gpp": GPP_USP_NO_OPT_OUT})
    strict = exposure(consent={"us_privacy": "1YNN", "gpp": GPP_USP_OPTED_OUT})

    assert _result(lenient).denied == {}
    assert _result(strict).denied == dict.fromkeys(USER_DATA, Reason.US_PRIVACY_OPT_OUT)
    assert _result(strict).signals.us_privacy_source == "gpp:uspv1"


def test_a_malformed_legacy_string_fails_closed_even_beside_gpp_uspv1() -> None:
    event = exposure(consent={"us_privacy": "1YY", "gpp": GPP_USP_NO_OPT_OUT})

    assert _result(event).decision.reason == Reason.MALFORMED_CONSENT


def test_usnat_without_opt_outs_denies_nothing() -> None:
    assert _result(exposure(consent={"gpp": GPP_USNAT_DEFAULTS, "gpp_sid": [7]})).denied == {}


def test_usnat_opt_outs_deny_identifiers_with_the_first_gpp_reason() -> None:
    result = _result(exposure(consent={"gpp": GPP_USNAT_ALL_OPTED_OUT, "gpp_sid": [7]}))

    assert result.decision.eligible
    assert result.denied == dict.fromkeys(USER_DATA, gpp_reasons.GPP_GPC)
    assert gpp_reasons.GPP_SALE_OPT_OUT in result.signals.gpp_us_reasons


def test_service_provider_mode_denies_identifiers() -> None:
    result = _result(exposure(consent={"gpp": GPP_USNAT_SERVICE_PROVIDER}))

    assert result.denied == dict.fromkeys(USER_DATA, gpp_reasons.GPP_SERVICE_PROVIDER_MODE)


def test_a_gpp_gpc_sub_section_is_ignored_by_a_partner_that_does_not_honour_gpc() -> None:
    result = _result(exposure(consent={"gpp": GPP_USNAT_ALL_OPTED_OUT}), honour_gpc=False)

    assert result.denied == dict.fromkeys(USER_DATA, gpp_reasons.GPP_SALE_OPT_OUT)


def test_a_later_state_section_without_opt_outs_denies_nothing() -> None:
    event = exposure(consent={"gpp": GPP_USFL, "gpp_sid": [13]}, geo={"country": "US"})

    result = _result(event)

    assert result.decision.eligible
    assert result.denied == {}


def test_a_later_state_section_with_an_opt_out_denies_identifiers() -> None:
    event = exposure(consent={"gpp": GPP_USMN_OPTED_OUT, "gpp_sid": [23]}, geo={"country": "US"})

    result = _result(event)

    assert result.decision.eligible
    assert result.denied == dict.fromkeys(USER_DATA, gpp_reasons.GPP_GPC)
    assert gpp_reasons.GPP_TARGETED_ADVERTISING_OPT_OUT in result.signals.gpp_us_reasons


def test_a_us_section_that_is_not_decoded_fails_closed() -> None:
    # usri (27) is kept opaque: its layout is not read, so nothing can be vouched for.
    event = exposure(consent={"gpp": GPP_USNAT_AND_USRI, "gpp_sid": [27]}, geo={"country": "US"})

    assert _result(event).decision.reason == gpp_reasons.GPP_SECTION_UNSUPPORTED


def test_a_gpp_sid_naming_a_missing_section_fails_closed() -> None:
    event = exposure(consent={"gpp": GPP_USNAT_DEFAULTS, "gpp_sid": [8]})

    assert _result(event).decision.reason == gpp_reasons.GPP_SID_MISMATCH


@pytest.mark.parametrize("gpp", ["DBABLA~", "not-gpp", "DBABLA~CAAAAAAAAABA~1YNN", "~"])
def test_a_malformed_gpp_string_fails_closed(gpp: str) -> None:
    assert _result(exposure(consent={"gpp": gpp})).decision.reason == Reason.MALFORMED_CONSENT


# --- LMT, ATT, COPPA -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "denied"),
    [
        ({"lmt": True}, True),
        ({"lmt": False}, False),
        ({"lmt": False, "atts": 0}, True),
        ({"lmt": False, "atts": 1}, True),
        ({"lmt": False, "atts": 2}, True),
        ({"lmt": False, "atts": 3}, False),
        ({"lmt": False, "atts": "3"}, True),
        ({"lmt": "no"}, True),
    ],
)
def test_limit_ad_tracking_and_att_deny_device_ids(device: dict, denied: bool) -> None:
    event = exposure(device={"type": "mobile", "os": "ios", "ifa": "IFA", **device})

    expected = {"transmit_device_ids": EngineReason.LMT} if denied else {}
    assert _result(event).denied == expected
    assert _result(event, honour_lmt=False).denied == {}


def test_coppa_takes_the_ip_away_from_a_feed_that_keeps_all_of_it() -> None:
    event = exposure(consent={"coppa": True})

    assert "transmit_ip" not in _result(event).denied
    assert _result(event, ipv4_prefix_bits=32).denied["transmit_ip"] == Reason.COPPA


# --- Default regime and activity rules --------------------------------------------------------


def test_the_default_regime_deny_drops_events_no_regime_claims() -> None:
    event = exposure(consent={"gdpr": 0}, geo={"country": "BR"})

    assert _result(event).decision.eligible
    assert _result(event, default_regime="deny").decision.reason == (
        EngineReason.DEFAULT_REGIME_DENY
    )


def test_a_rule_can_deny_the_event() -> None:
    rules = (rule("transmit_event", "deny", countries=["US"], gpc=True),)

    assert _result(exposure(consent={"gpc": True}), activity_rules=rules).decision.reason == (
        EngineReason.ACTIVITY_RULE_DENIED
    )
    assert _result(exposure(), activity_rules=rules).decision.eligible


def test_a_rule_can_deny_a_field_activity_that_consent_allowed() -> None:
    rules = (rule("transmit_user_agent", "deny", regimes=["us_state"]),)

    result = _result(exposure(), activity_rules=rules)

    assert result.denied == {"transmit_user_agent": EngineReason.ACTIVITY_RULE_DENIED}
    assert result.audit == ("transmit_user_agent_denied:activity_rule_denied",)


def test_a_rule_never_allows_what_consent_denied() -> None:
    rules = tuple(rule(activity, "allow") for activity in USER_DATA)

    result = _result(exposure(consent={"us_privacy": "1YYN"}), activity_rules=rules)

    assert result.denied == dict.fromkeys(USER_DATA, Reason.US_PRIVACY_OPT_OUT)


def test_activity_defaults_apply_when_no_rule_matches() -> None:
    defaults = (("transmit_ip", "deny"),)
    rules = (rule("transmit_ip", "allow", countries=["CA"]),)

    result = _result(exposure(), activity_defaults=defaults, activity_rules=rules)

    assert result.denied == {"transmit_ip": EngineReason.ACTIVITY_DEFAULT_DENIED}


def test_rules_can_match_gpp_sections() -> None:
    rules = (rule("transmit_ip", "deny", gpp_sections=["usnat"]),)
    event = exposure(consent={"gpp": GPP_USNAT_DEFAULTS, "gpp_sid": [7]})

    assert _result(event, activity_rules=rules).denied == {
        "transmit_ip": EngineReason.ACTIVITY_RULE_DENIED
    }


# --- Audit, caching and the input ------------------------------------------------------------


def test_audit_keys_name_the_activity_and_the_reason() -> None:
    result = _result(exposure(consent={"gpc": True}))

    assert sorted(result.audit) == sorted(f"{a}_denied:gpc" for a in USER_DATA)


def test_decisions_are_cached_per_policy_and_signal_key() -> None:
    partner = policy()
    first = evaluate(exposure(event_id="a"), partner)

    assert evaluate(exposure(event_id="b"), partner) is first
    assert evaluate(exposure(event_id="a"), policy()) is not first


def test_true_and_1_do_not_share_a_cached_decision_for_gdpr() -> None:
    partner = policy()

    assert evaluate(exposure(consent={"gdpr": 1}), partner).decision.reason == (
        Reason.TCF_CONSENT_MISSING
    )
    assert evaluate(exposure(consent={"gdpr": True}), partner).decision.reason == (
        Reason.MALFORMED_CONSENT
    )
    assert evaluate(exposure(consent={"gdpr": 1.0}), partner).decision.reason == (
        Reason.MALFORMED_CONSENT
    )


def test_the_event_and_its_consent_strings_are_never_altered() -> None:
    event = exposure(consent={"gdpr": 1, "tcf": tc_string(), "gpp": GPP_USP_NO_OPT_OUT})
    before = copy.deepcopy(event)

    _decision, record = filter_event(event, policy(field_allowlist=frozenset({"consent"})))

    assert event == before
    assert record == {"consent": before["consent"]}


def test_the_engine_modules_do_not_import_django() -> None:
    import subprocess
    import sys

    code = (
        "import sys, gateway.privacy.consent, gateway.privacy.explain, gateway.privacy.regime, "
        "gateway.privacy.activities, gateway.privacy.signals; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.stdout.strip() == "[]", result.stderr
