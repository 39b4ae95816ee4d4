from __future__ import annotations

import json

import pytest

from gateway.privacy import filter as privacy_filter
from gateway.privacy.filter import Decision, Reason, filter_event

from .builders import RAW_HOUSEHOLD_ID, RAW_IFA, RAW_IP, RAW_USER_ID, exposure, tc_string
from .engine_builders import policy


def test_an_allowed_event_comes_back_minimised() -> None:
    fields = frozenset({"event_id", "geo.country", "user_id", "ip"})

    decision, record = filter_event(exposure(), policy(field_allowlist=fields))

    assert decision == Decision.allow()
    assert record is not None
    assert record["event_id"] == "evt-00000001"
    assert record["geo"] == {"country": "US"}
    assert record["ip"] == "203.0.113.0"
    assert record["user_id"] != RAW_USER_ID


def test_a_dropped_event_has_a_reason_and_no_record() -> None:
    decision, record = filter_event(exposure(consent={"gdpr": 1}), policy())

    assert decision == Decision.drop(Reason.TCF_CONSENT_MISSING)
    assert record is None


@pytest.mark.parametrize(
    "consent", [{"gpc": True}, {"us_privacy": "1YYN"}, {"coppa": True}], ids=str
)
def test_an_opted_out_event_is_sent_without_identifiers_or_precise_geo(consent: dict) -> None:
    fields = frozenset({"event_id", "user_id", "household_id", "device", "geo", "ip"})

    decision, record = filter_event(exposure(consent=consent), policy(field_allowlist=fields))

    assert decision == Decision.allow()
    assert record is not None
    assert set(record) == {"event_id", "device", "geo", "ip"}
    assert "ifa" not in record["device"]
    assert set(record["geo"]) == {"country", "region"}
    text = json.dumps(record)
    for raw in (RAW_USER_ID, RAW_HOUSEHOLD_ID, RAW_IFA, RAW_IP, "Oakland", "94607", "37.8"):
        assert raw not in text


def test_a_gdpr_event_with_consent_is_sent() -> None:
    event = exposure(consent={"gdpr": 1, "tcf": tc_string()}, geo={"country": "DE"})

    decision, record = filter_event(event, policy(field_allowlist=frozenset({"geo.country"})))

    assert decision.eligible
    assert record == {"geo": {"country": "DE"}}


def test_a_failure_while_minimising_drops_the_event_without_logging_data(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: object, policy: object, **options: object) -> dict:
        raise KeyError(RAW_IFA)

    monkeypatch.setattr(privacy_filter, "transform_event", broken)

    decision, record = filter_event(exposure(), policy())

    assert decision == Decision.drop(Reason.FILTER_ERROR)
    assert record is None
    assert "KeyError" in caplog.text
    assert RAW_IFA not in caplog.text


@pytest.mark.parametrize("event", [None, [], "x", {"consent": "x"}, {"consent": {"gpc": 3}}])
def test_it_never_raises_on_bad_input(event: object) -> None:
    decision, record = filter_event(event, policy())  # type: ignore[arg-type]

    assert not decision.eligible
    assert record is None


def test_every_partner_gets_its_own_view_of_the_same_event() -> None:
    fields = frozenset({"user_id", "device", "ip"})
    event = exposure()

    _, nielsen = filter_event(event, policy(field_allowlist=fields, pseudonym_key=b"n"))
    _, ias = filter_event(event, policy(field_allowlist=fields, pseudonym_key=b"i"))

    assert nielsen is not None and ias is not None
    assert nielsen["user_id"] != ias["user_id"]
    assert nielsen["device"]["ifa"] != ias["device"]["ifa"]
    for record in (nielsen, ias):
        assert RAW_IP not in json.dumps(record)
