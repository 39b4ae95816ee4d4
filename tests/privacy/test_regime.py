from __future__ import annotations

from typing import Any

import pytest

from gateway.privacy.regime import (
    NONE,
    TCF,
    US_NATIONAL,
    US_STATE,
    regimes_decide,
    state_code,
)


def _regimes(**inputs: Any) -> tuple[str, ...]:
    inputs.setdefault("gdpr", None)
    inputs.setdefault("gpp_sid", ())
    inputs.setdefault("country", None)
    inputs.setdefault("region", None)
    inputs.setdefault("default_regime", NONE)
    return regimes_decide(**inputs).regimes


@pytest.mark.parametrize("country", ["DE", "FR", "GB", "NO", "IS", "LI", "RE"])
def test_eea_and_uk_events_are_under_tcf(country: str) -> None:
    assert _regimes(country=country) == (TCF,)


def test_gdpr_1_forces_tcf_anywhere() -> None:
    assert _regimes(gdpr=1, country="BR") == (TCF,)
    assert _regimes(gdpr=1, country="US", region="CA") == (TCF, US_STATE)


def test_gdpr_0_wins_over_an_eea_country() -> None:
    assert _regimes(gdpr=0, country="DE") == (NONE,)


def test_a_gpp_sid_naming_tcfeuv2_means_tcf() -> None:
    assert _regimes(gdpr=0, gpp_sid=(2,), country="US") == (TCF, US_NATIONAL)


def test_without_any_signal_or_readable_country_tcf_is_assumed() -> None:
    assert _regimes() == (TCF,)


def test_a_gpp_sid_without_tcf_and_without_a_country_is_not_tcf() -> None:
    assert _regimes(gpp_sid=(7,)) == (US_NATIONAL,)


@pytest.mark.parametrize(
    ("region", "gpp_sid", "expected", "section"),
    [
        ("CA", (), US_STATE, "usca"),
        ("VA", (), US_STATE, "usva"),
        ("CO", (), US_STATE, "usco"),
        ("UT", (), US_STATE, "usut"),
        ("CT", (), US_STATE, "usct"),
        ("FL", (), US_STATE, "usfl"),
        ("MN", (), US_STATE, "usmn"),
        ("NY", (), US_NATIONAL, None),
        (None, (), US_NATIONAL, None),
        ("FL", (8,), US_STATE, "usca"),
        ("CA", (7,), US_STATE, "usca"),
        (None, (13,), US_STATE, "usfl"),
        (None, (27,), US_NATIONAL, None),
    ],
)
def test_us_events_are_under_a_state_section_when_one_is_supported(
    region: str | None, gpp_sid: tuple[int, ...], expected: str, section: str | None
) -> None:
    decision = regimes_decide(
        gdpr=0, gpp_sid=gpp_sid, country="US", region=region, default_regime=NONE
    )

    assert decision.regimes == (expected,)
    assert decision.state_section == section


@pytest.mark.parametrize(
    ("default", "expected"), [("none", (NONE,)), ("us_national", (US_NATIONAL,))]
)
def test_other_countries_get_the_default_regime(default: str, expected: tuple[str, ...]) -> None:
    assert _regimes(gdpr=0, country="BR", default_regime=default) == expected


def test_a_default_of_deny_denies_what_no_regime_claims() -> None:
    decision = regimes_decide(gdpr=0, gpp_sid=(), country="BR", region=None, default_regime="deny")

    assert decision.denied
    assert decision.regimes == ()


@pytest.mark.parametrize(
    ("region", "expected"),
    [("CA", "CA"), ("ca", "CA"), ("US-CA", "CA"), ("California", None), (None, None), (5, None)],
)
def test_state_codes_are_read_leniently_but_never_guessed(region: object, expected: str) -> None:
    assert state_code(region) == expected
