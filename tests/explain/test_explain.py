"""The pure explanation: regime, signals, checks, rules and the field diff."""

from __future__ import annotations

import json

from gateway.privacy.explain import explain
from gateway.privacy.reasons import Reason
from tests.privacy.builders import RAW_USER_ID, exposure, tc_string
from tests.privacy.engine_builders import policy, rule

FIELDS = frozenset({"event_id", "user_id", "device", "geo", "ip", "user_agent"})


def _fields(explanation: dict) -> dict[str, tuple[str, str]]:
    return {row["path"]: (row["action"], row["why"]) for row in explanation["fields"]}


def test_an_opted_out_event_explains_which_fields_were_removed_and_why() -> None:
    explanation = explain(exposure(consent={"us_privacy": "1YYN"}), policy(field_allowlist=FIELDS))

    assert explanation["decision"] == {"eligible": True, "reason": None}
    assert explanation["regime"]["regimes"] == ["us_state"]
    assert explanation["signals"]["us_privacy"]["opted_out_of_sale"] is True
    fields = _fields(explanation)
    assert fields["user_id"] == ("removed", "transmit_user_ids denied: us_privacy_opt_out")
    assert fields["device.ifa"][0] == "removed"
    assert fields["geo.lat"] == ("removed", "transmit_precise_geo denied: us_privacy_opt_out")
    assert fields["ip"][0] == "transformed"
    assert fields["event_id"] == ("kept", "allowlisted")
    assert fields["campaign_id"][0] == "removed"
    assert "transmit_user_ids_denied:us_privacy_opt_out" in explanation["audit"]


def test_pseudonyms_are_shown_shortened_only() -> None:
    explanation = explain(exposure(), policy(field_allowlist=FIELDS))

    shown = explanation["output"]["user_id"]
    assert shown.endswith("(pseudonym)") and len(shown) < 30
    assert RAW_USER_ID not in json.dumps(explanation["output"])
    assert _fields(explanation)["user_id"][0] == "transformed"


def test_a_dropped_event_explains_the_tcf_checks() -> None:
    event = exposure(consent={"gdpr": 1, "tcf": tc_string(purpose_consents={1})})

    explanation = explain(event, policy())

    assert explanation["decision"] == {"eligible": False, "reason": "tcf_purpose_7_missing"}
    assert explanation["output"] is None
    assert explanation["signals"]["tcf"]["purpose_consents"] == [1]
    assert explanation["signals"]["tcf"]["vendor_consent"] is True
    failed = [c for c in explanation["checks"] if not c["passed"]]
    assert failed[-1]["reason"] == "tcf_purpose_7_missing"
    assert {row["action"] for row in explanation["fields"]} == {"removed"}


def test_each_rule_is_shown_evaluated() -> None:
    rules = (
        rule("transmit_ip", "deny", 1, countries=["DE"]),
        rule("transmit_ip", "deny", 2, regions=["US-CA"], note="no IPs from California"),
    )

    explanation = explain(exposure(), policy(activity_rules=rules, field_allowlist=FIELDS))

    [ip] = [a for a in explanation["activities"] if a["activity"] == "transmit_ip"]
    assert ip["allowed"] is False and ip["decided_by"] == "rule"
    assert [(r["position"], r["matched"], r["failed_condition"]) for r in ip["rules"]] == [
        (1, False, "countries"),
        (2, True, None),
    ]
    assert ip["rules"][1]["note"] == "no IPs from California"
    assert _fields(explanation)["ip"] == ("removed", "transmit_ip denied: activity_rule_denied")


def test_malformed_input_is_explained_without_raising() -> None:
    explanation = explain(exposure(consent={"tcf": "%%%"}), policy())

    assert explanation["decision"]["reason"] == Reason.MALFORMED_CONSENT
    assert explanation["signals"]["problem"]
    assert explain("not an event", policy())["decision"]["reason"] == Reason.MALFORMED_EVENT


def test_the_explanation_is_json() -> None:
    event = exposure(consent={"gpp": "DBABLA~CVVVAAAAAABA.YA", "gpp_sid": [7], "gpc": True})

    explanation = explain(event, policy(field_allowlist=FIELDS))

    assert json.loads(json.dumps(explanation)) == explanation
    assert explanation["signals"]["gpp"]["us_denials"][0] == "gpp_gpc"
