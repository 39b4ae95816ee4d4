from __future__ import annotations

import pytest

from gateway.privacy.usprivacy import MalformedConsent, UsPrivacy, parse_us_privacy


def test_it_reads_each_flag_of_a_version_1_string() -> None:
    assert parse_us_privacy("1YNY") == UsPrivacy(version=1, notice="Y", opt_out_sale="N", lspa="Y")


def test_an_opt_out_of_sale_is_the_third_character() -> None:
    assert parse_us_privacy("1NYN").opted_out_of_sale is True
    assert parse_us_privacy("1YNN").opted_out_of_sale is False
    assert parse_us_privacy("1Y-N").opted_out_of_sale is False


def test_1_dash_dash_dash_means_ccpa_does_not_apply() -> None:
    us_privacy = parse_us_privacy("1---")

    assert us_privacy.applies is False
    assert us_privacy.opted_out_of_sale is False


def test_any_other_flags_mean_ccpa_applies() -> None:
    assert parse_us_privacy("1-Y-").applies is True
    assert parse_us_privacy("1NNN").applies is True


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1",
        "1YN",
        "1YNNN",
        "2YNN",
        "0---",
        "1yNN",
        "1YXN",
        "1YN ",
        " 1YN",
        "1Y\u00ddN",
        "\uff11YNN",
    ],
)
def test_anything_but_four_valid_characters_is_malformed(value: str) -> None:
    with pytest.raises(MalformedConsent):
        parse_us_privacy(value)


@pytest.mark.parametrize("value", [None, 1, b"1YNN", ["1", "Y", "N", "N"]])
def test_a_value_that_is_not_a_string_is_malformed(value: object) -> None:
    with pytest.raises(MalformedConsent):
        parse_us_privacy(value)  # type: ignore[arg-type]


def test_a_malformed_string_raises_every_time_it_is_seen() -> None:
    # Parsing is cached: the cache must keep the failure, not swallow it.
    for _ in range(3):
        with pytest.raises(MalformedConsent, match="version"):
            parse_us_privacy("2YNN")
