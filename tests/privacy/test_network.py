from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy.network import truncate_ip, truncator, uncached_truncator


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


# --- Configurable prefixes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        (0, None),
        (8, "203.0.0.0"),
        (20, "203.0.112.0"),
        (24, "203.0.113.0"),
        (32, "203.0.113.77"),
    ],
)
def test_ipv4_keeps_the_configured_number_of_bits(bits: int, expected: str | None) -> None:
    assert truncate_ip("203.0.113.77", ipv4_bits=bits) == expected


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        (0, None),
        (32, "2001:db8::"),
        (56, "2001:db8:abcd:1200::"),
        (64, "2001:db8:abcd:12ff::"),
        (128, "2001:db8:abcd:12ff:1234:5678:9abc:def0"),
    ],
)
def test_ipv6_keeps_the_configured_number_of_bits(bits: int, expected: str | None) -> None:
    assert truncate_ip("2001:db8:abcd:12ff:1234:5678:9abc:def0", ipv6_bits=bits) == expected


def test_the_ipv4_setting_does_not_touch_ipv6_and_the_reverse() -> None:
    assert truncate_ip("2001:db8::1", ipv4_bits=0) == "2001:db8::"
    assert truncate_ip("203.0.113.77", ipv6_bits=0) == "203.0.113.0"


@pytest.mark.parametrize(
    ("bits", "expected"), [(0, None), (8, "::ffff:203.0.0.0"), (32, "::ffff:203.0.113.77")]
)
def test_an_ipv4_mapped_address_follows_the_ipv4_setting(bits: int, expected: str | None) -> None:
    assert truncate_ip("::ffff:203.0.113.77", ipv4_bits=bits, ipv6_bits=128) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        # 6to4 embeds 203.0.113.77 in bits 16-48: /128 may keep only 16 + 24 bits.
        ("2002:cb00:714d:1234::1", "2002:cb00:7100::"),
        # NAT64 and IPv4-compatible addresses carry it in the last 32 bits.
        ("64:ff9b::203.0.113.77", "64:ff9b::cb00:7100"),
        ("::203.0.113.77", "::cb00:7100"),
        # Teredo: the client's address, inverted, in the last 32 bits.
        ("2001:0:4136:e378:8000:63bf:34ff:8cb2", "2001:0:4136:e378:8000:63bf:34ff:8c00"),
    ],
)
def test_an_embedded_ipv4_address_is_never_kept_beyond_the_ipv4_setting(
    ip: str, expected: str
) -> None:
    assert truncate_ip(ip, ipv4_bits=24, ipv6_bits=128) == expected


def test_an_embedded_ipv4_address_with_no_ipv4_bits_keeps_only_the_prefix() -> None:
    assert truncate_ip("2002:cb00:714d:1234::1", ipv4_bits=0, ipv6_bits=128) == "2002::"


@pytest.mark.parametrize(
    ("ipv4_bits", "ipv6_bits"), [(-1, 56), (33, 56), (24, -1), (24, 129), (True, 56), (24.0, 56)]
)
def test_a_bit_count_out_of_range_removes_the_address(ipv4_bits: object, ipv6_bits: object) -> None:
    assert truncate_ip("203.0.113.77", ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits) is None  # type: ignore[arg-type]
    assert truncate_ip("2001:db8::1", ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits) is None  # type: ignore[arg-type]


# --- Against a reference built on the ipaddress module ----------------------------------------


def _reference(text: str, ipv4_bits: int, ipv6_bits: int) -> str | None:
    address = ipaddress.IPv6Address(text)
    if address.ipv4_mapped is not None:
        if ipv4_bits == 0:
            return None
        network = ipaddress.IPv4Network(f"{address.ipv4_mapped}/{ipv4_bits}", strict=False)
        return f"::ffff:{network.network_address}"
    if ipv6_bits == 0:
        return None
    prefix = ipv6_bits
    embeddings = (
        ("2002::/16", 16),
        ("64:ff9b::/96", 96),
        ("64:ff9b:1::/48", 48),
        ("::ffff:0:0:0/96", 96),
        ("2001::/32", 96),
    )
    for embedding, offset in embeddings:
        if address in ipaddress.IPv6Network(embedding):
            prefix = min(ipv6_bits, offset + ipv4_bits)
            break
    else:
        if address in ipaddress.IPv6Network("::/96"):
            prefix = min(ipv6_bits, 96 + ipv4_bits)
    return str(ipaddress.IPv6Network(f"{address}/{prefix}", strict=False).network_address)


_NETWORKS = st.sampled_from(
    [
        ipaddress.IPv6Network(network)
        for network in (
            "2002::/16", "64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "2001::/32",
            "::/96", "::ffff:0:0/96", "2001:db8::/32", "fe80::/10", "::/0",
        )
    ]
)  # fmt: skip


@given(
    network=_NETWORKS,
    host=st.integers(0, (1 << 128) - 1),
    ipv4_bits=st.integers(0, 32),
    ipv6_bits=st.integers(0, 128),
    exploded=st.booleans(),
)
def test_ipv6_truncation_agrees_with_the_ipaddress_module(
    network: ipaddress.IPv6Network, host: int, ipv4_bits: int, ipv6_bits: int, exploded: bool
) -> None:
    address = ipaddress.IPv6Address(int(network.network_address) | host & int(network.hostmask))
    text = address.exploded if exploded else address.compressed

    expected = _reference(text, ipv4_bits, ipv6_bits)

    assert truncate_ip(text, ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits) == expected


@given(st.text(max_size=50))
def test_arbitrary_text_is_an_address_only_if_ipaddress_agrees(text: str) -> None:
    try:
        ipaddress.ip_address(text)
        valid = "%" not in text
    except ValueError:
        valid = False

    if not valid:
        assert truncate_ip(text) is None


@given(
    text=st.one_of(
        st.sampled_from(["203.0.113.77", "2001:db8::1", "::ffff:1.2.3.4", "bad", ""]),
        st.text(max_size=20),
        st.none(),
        st.integers(),
    ),
    ipv4_bits=st.integers(-1, 33),
    ipv6_bits=st.integers(-1, 129),
)
def test_a_bound_truncator_answers_as_truncate_ip(
    text: object, ipv4_bits: int, ipv6_bits: int
) -> None:
    truncate = truncator(ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits)

    for _ in range(2):  # the second time from the cache
        assert truncate(text) == truncate_ip(text, ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits)


_QUAD_PARTS = ["0", "1", "9", "00", "01", "010", "99", "100", "199", "249", "250", "255", "256"]


@given(
    text=st.one_of(
        # Near-quads: the C parser's edge cases (leading zeros, 256, missing or extra parts).
        st.lists(st.sampled_from(_QUAD_PARTS), min_size=3, max_size=5).map(".".join),
        # A non-ASCII digit (ARABIC-INDIC ONE), a NUL, spaces: never a dotted quad.
        st.sampled_from(["\u0661.2.3.4", "1.2.3.4\x00", "1.2.3.4 ", " 1.2.3.4", "1..2.3", "::1"]),
        st.text(alphabet="0123456789.:abf", max_size=20),
        st.text(max_size=20),
        st.none(),
        st.integers(),
    ),
    ipv4_bits=st.integers(0, 32),
    ipv6_bits=st.integers(0, 128),
)
def test_the_uncached_truncator_answers_as_truncate_ip(
    text: object, ipv4_bits: int, ipv6_bits: int
) -> None:
    # With the speedups built, dotted quads are truncated in C: the same answers.
    truncate = uncached_truncator(ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits)

    assert truncate(text) == truncate_ip(text, ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits)


@given(
    network=_NETWORKS,
    host=st.integers(0, (1 << 128) - 1),
    ipv4_bits=st.integers(0, 32),
    ipv6_bits=st.integers(0, 128),
    form=st.sampled_from(["compressed", "exploded", "upper"]),
)
def test_the_uncached_truncator_answers_as_the_reference_for_ipv6(
    network: ipaddress.IPv6Network, host: int, ipv4_bits: int, ipv6_bits: int, form: str
) -> None:
    # With the speedups built, IPv6 is read and written by inet_pton/inet_ntop in C.
    address = ipaddress.IPv6Address(int(network.network_address) | host & int(network.hostmask))
    text = address.exploded if form == "exploded" else address.compressed
    text = text.upper() if form == "upper" else text
    truncate = uncached_truncator(ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits)

    assert truncate(text) == _reference(text, ipv4_bits, ipv6_bits)
