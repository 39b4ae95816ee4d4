"""Push endpoints are resolved once and every address is checked before anything connects.

A fake resolver stands in for DNS, so no test here sends a packet anywhere.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest
from django.core.exceptions import ValidationError

from partners.endpoints import (
    EndpointRefused,
    EndpointUnresolvable,
    PinnedEndpoint,
    resolve_and_check,
    validate_push_endpoint,
)

URL = "https://partner.test/in"

HOST = "partner.test"


@dataclass
class FakeResolver:
    """Stands in for DNS: answers from ``answers``, records every name asked."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def getaddrinfo(self, host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [_info(address, port) for address in self.answers[host]]


def _info(address: str, port: int) -> tuple:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    resolver = FakeResolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver.getaddrinfo)
    return resolver


BLOCKED_IN_PRODUCTION = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("192.0.0.192", "special-purpose"),  # Oracle Cloud metadata
    ("192.0.2.10", "special-purpose"),  # documentation
    ("198.18.0.1", "special-purpose"),  # benchmarking
    ("240.0.0.1", "special-purpose"),  # reserved
    ("255.255.255.255", "broadcast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("168.63.129.16", "metadata"),  # Azure WireServer: a "public" address
    ("100.100.100.200", "metadata"),
    ("169.254.1.1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fd00:ec2::254", "metadata"),
    ("fec0::1", "special-purpose"),  # deprecated site-local
    ("ff02::1", "multicast"),
    ("2001:db8::1", "special-purpose"),
    ("2001:0:4136:e378::1", "special-purpose"),  # Teredo
    ("::127.0.0.1", "special-purpose"),  # deprecated IPv4-compatible
    ("::8.8.8.8", "special-purpose"),
    ("::ffff:127.0.0.1", "embeds 127.0.0.1"),
    ("::ffff:10.0.0.1", "embeds 10.0.0.1"),
    ("::ffff:169.254.169.254", "embeds 169.254.169.254"),
    ("64:ff9b::a00:1", "embeds 10.0.0.1"),  # NAT64 of a private address
    ("64:ff9b::7f00:1", "embeds 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254"),
    ("64:ff9b:1::a00:1", "special-purpose"),  # local-use NAT64
    ("2002:a00:1::1", "embeds 10.0.0.1"),  # 6to4 of a private address
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED_IN_PRODUCTION)
def test_a_host_resolving_to_a_non_public_address_is_refused(
    dns: FakeResolver, address: str, reason: str
) -> None:
    dns.answers[HOST] = [address]

    with pytest.raises(EndpointRefused, match="non-public") as refused:
        resolve_and_check(URL, allow_private=False)

    assert address in str(refused.value)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "168.63.129.16",
        "::ffff:169.254.169.254",
        "169.254.1.1",
        "fe80::1",
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",
        "::",
    ],
)
def test_metadata_link_local_multicast_and_unspecified_are_refused_even_in_development(
    dns: FakeResolver, address: str
) -> None:
    dns.answers[HOST] = [address]

    with pytest.raises(EndpointRefused):
        resolve_and_check(URL, allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",  # IPv4-mapped form of a public address
        "64:ff9b::808:808",  # NAT64 of a public address
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_a_host_resolving_to_public_addresses_is_pinned_to_the_first(
    dns: FakeResolver, address: str
) -> None:
    dns.answers[HOST] = [address, "1.1.1.1", address]

    pinned = resolve_and_check(URL, allow_private=False)

    assert pinned == PinnedEndpoint(
        url=URL, host="partner.test", port=443, address=address, addresses=(address, "1.1.1.1")
    )
    assert dns.asked == [HOST]


@pytest.mark.parametrize(
    "addresses",
    [
        ["8.8.8.8", "10.0.0.1"],
        ["10.0.0.1", "8.8.8.8"],
        ["2606:4700:4700::1111", "::1"],
        ["8.8.8.8", "169.254.169.254"],
    ],
)
def test_one_private_address_among_public_ones_refuses_the_host(
    dns: FakeResolver, addresses: list[str]
) -> None:
    # Which address a connection would try is the resolver's choice, so all must pass.
    dns.answers[HOST] = addresses

    with pytest.raises(EndpointRefused, match="non-public"):
        resolve_and_check(URL, allow_private=False)


def test_private_addresses_are_allowed_in_development(dns: FakeResolver) -> None:
    dns.answers[HOST] = ["127.0.0.1", "10.0.0.1"]

    pinned = resolve_and_check("http://partner.test:8080/in", allow_private=True)

    assert (pinned.address, pinned.port) == ("127.0.0.1", 8080)


def test_the_setting_decides_when_not_told(dns: FakeResolver, settings) -> None:
    dns.answers[HOST] = ["10.0.0.1"]

    settings.ALLOW_PRIVATE_ENDPOINTS = True
    assert resolve_and_check(URL).address == "10.0.0.1"
    settings.ALLOW_PRIVATE_ENDPOINTS = False
    with pytest.raises(EndpointRefused):
        resolve_and_check(URL)


def test_plain_http_is_refused_in_production_before_any_lookup(dns: FakeResolver) -> None:
    with pytest.raises(EndpointRefused, match="https"):
        resolve_and_check("http://partner.test/in", allow_private=False)

    assert dns.asked == []


@pytest.mark.parametrize(
    "url", ["ftp://partner.test/in", "https:///in", "https://partner.test:99999/in", "https://[::1"]
)
def test_a_malformed_url_is_refused(dns: FakeResolver, url: str) -> None:
    with pytest.raises(EndpointRefused):
        resolve_and_check(url, allow_private=True)


def test_a_name_that_does_not_resolve_is_unresolvable_not_refused(dns: FakeResolver) -> None:
    # A DNS failure may pass; the send path can retry it, unlike a refusal.
    with pytest.raises(EndpointUnresolvable, match="does not resolve"):
        resolve_and_check(URL, allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/in", "https://[::1]/in", "https://2130706433/in", "https://0x7f.1/in"],
)
def test_numeric_spellings_of_loopback_are_refused(url: str) -> None:
    # The real resolver: numeric hosts are parsed locally, no DNS query is made.
    with pytest.raises(EndpointRefused, match="loopback"):
        resolve_and_check(url, allow_private=False)


def test_form_validation_reports_a_refusal_on_the_endpoint_field(
    dns: FakeResolver, settings
) -> None:
    settings.ALLOW_PRIVATE_ENDPOINTS = False
    dns.answers[HOST] = ["8.8.8.8", "192.168.0.10"]

    with pytest.raises(ValidationError) as invalid:
        validate_push_endpoint(URL)

    assert "192.168.0.10" in invalid.value.message_dict["endpoint_url"][0]


def test_form_validation_accepts_a_public_host(dns: FakeResolver, settings) -> None:
    settings.ALLOW_PRIVATE_ENDPOINTS = False
    dns.answers[HOST] = ["8.8.8.8"]

    validate_push_endpoint(URL)


def test_form_validation_in_development_checks_only_the_url(dns: FakeResolver, settings) -> None:
    # Demo and test hosts need not resolve; the send path checks addresses anyway.
    settings.ALLOW_PRIVATE_ENDPOINTS = True

    validate_push_endpoint("http://partner.test/in")
    with pytest.raises(ValidationError):
        validate_push_endpoint("ftp://partner.test/in")
    assert dns.asked == []
