from __future__ import annotations

import pytest

from gateway.privacy.network import truncate_ip


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.0"),
        ("8.8.8.8", "8.8.8.0"),
    ],
)
def test_ipv4_keeps_the_first_three_octets(ip: str, expected: str) -> None:
    assert truncate_ip(ip) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("2001:db8:abcd:12ff:1234:5678:9abc:def0", "2001:db8:abcd:1200::"),
        ("2001:DB8:ABCD:12FF::1", "2001:db8:abcd:1200::"),
        ("::1", "::"),
        ("fe80::1", "fe80::"),
    ],
)
def test_ipv6_keeps_the_first_56_bits(ip: str, expected: str) -> None:
    assert truncate_ip(ip) == expected


def test_an_ipv4_mapped_ipv6_address_is_truncated_like_ipv4() -> None:
    assert truncate_ip("::ffff:203.0.113.77") == "::ffff:203.0.113.0"


def test_a_6to4_address_does_not_keep_its_embedded_ipv4_address() -> None:
    # 2002:cb00:714d::/48 embeds 203.0.113.77; /56 would keep all of it.
    assert truncate_ip("2002:cb00:714d:1234::1") == "2002:cb00:7100::"


@pytest.mark.parametrize(
    "ip",
    [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.04",
        " 1.2.3.4",
        "1.2.3.4\n",
        "1.2.3.-4",
        "\u0661.\u0662.\u0663.\u0664",  # Arabic-Indic digits
        "fe80::1%eth0",
        "2001:db8::g",
        "2001:db8:::1",
        "::ffff:999.1.1.1",
        "x" * 100,
        "localhost",
    ],
)
def test_text_that_is_not_an_ip_address_gives_none(ip: str) -> None:
    assert truncate_ip(ip) is None


@pytest.mark.parametrize("ip", [None, 3_405_803_853, b"203.0.113.77", ["203.0.113.77"]])
def test_a_value_that_is_not_a_string_gives_none(ip: object) -> None:
    assert truncate_ip(ip) is None
