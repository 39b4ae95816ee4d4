"""Checks on partner push endpoints, so the gateway cannot be aimed at our own network.

An endpoint's name is resolved once, every address it resolves to is checked,
and the send path then connects to exactly the checked address
(``resolve_and_check`` here, ``pinned_address`` in
``gateway.delivery.transport.post``). Checking one lookup and connecting after
another would let a DNS answer that changes in between (DNS rebinding) reach
an internal address.

In production only https to globally routable addresses is allowed. With
``ALLOW_PRIVATE_ENDPOINTS`` (development, tests, the demo) http and loopback
or private addresses are allowed too, but never addresses that are unsafe
anywhere: cloud metadata services, link-local, multicast, unspecified.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata and control services of cloud providers: reading them can hand out
# credentials. Most lie in ranges refused anyway; Azure's WireServer does not.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "168.63.129.16",  # Azure WireServer
        "100.100.100.200",  # Alibaba Cloud
    )
)

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")

# NAT64 (RFC 6052): the last 32 bits are the IPv4 address the gateway reaches.
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")

# Special-purpose ranges (IANA registry) that Python 3.11's ``is_global``
# still counts as global, or that embed an IPv4 address we cannot check.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in (
        "192.0.0.0/24",  # IETF protocol assignments (Oracle's metadata is 192.0.0.192)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "::/96",  # deprecated IPv4-compatible IPv6
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs
        "fec0::/10",  # deprecated site-local
    )
)


class EndpointError(ValueError):
    """Base class: the endpoint cannot be used."""


class EndpointRefused(EndpointError):
    """The URL or an address it resolves to is not allowed. Permanent until someone changes it."""


class EndpointUnresolvable(EndpointError):
    """The host name did not resolve. May be a passing DNS failure."""


@dataclass(frozen=True)
class PinnedEndpoint:
    """An endpoint URL and the one checked address to connect to for it."""

    url: str
    host: str
    port: int
    address: str
    # Every address the name resolved to, all checked; ``address`` is the first.
    addresses: tuple[str, ...]


def resolve_and_check(url: str, *, allow_private: bool | None = None) -> PinnedEndpoint:
    """Resolve the URL's host once and check every address; raise EndpointError if unusable.

    ``allow_private`` defaults to ``settings.ALLOW_PRIVATE_ENDPOINTS``.
    """
    if allow_private is None:
        allow_private = settings.ALLOW_PRIVATE_ENDPOINTS
    host, port = _host_and_port(url, allow_private=allow_private)
    addresses = _resolve(host, port)
    for address in addresses:
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            # One bad address refuses the whole name: which one a connection
            # would use is not ours to choose reliably.
            raise EndpointRefused(f"Host resolves to a non-public address: {address} ({problem}).")
    return PinnedEndpoint(
        url=url, host=host, port=port, address=addresses[0], addresses=tuple(addresses)
    )


def validate_push_endpoint(url: str, *, resolve: bool = True) -> None:
    """Form and model validation: https to a public address unless ALLOW_PRIVATE_ENDPOINTS is on.

    With private endpoints allowed, only the URL's shape is checked here (demo
    and test hosts need not resolve); the send path checks addresses anyway.
    """
    try:
        if settings.ALLOW_PRIVATE_ENDPOINTS or not resolve:
            _host_and_port(url, allow_private=settings.ALLOW_PRIVATE_ENDPOINTS)
        else:
            resolve_and_check(url, allow_private=False)
    except EndpointError as exc:
        raise ValidationError({"endpoint_url": str(exc)}) from exc


def address_problem(address: str, *, allow_private: bool) -> str | None:
    """Why the gateway must not connect to ``address``, or None when it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        # Drop the zone (fe80::1%eth0): addresses compare equal only without it.
        ip = ipaddress.IPv6Address(address.partition("%")[0])
    return _problem(ip, allow_private=allow_private)


def _problem(ip: IPAddress, *, allow_private: bool) -> str | None:
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata service"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        # The packet ends up at the embedded IPv4 address: judge that one.
        problem = _problem(embedded, allow_private=allow_private)
        return f"embeds {embedded}, {problem}" if problem else None
    if ip.is_unspecified or ip in _THIS_NETWORK:
        # Linux takes a connection to 0.0.0.0 as one to this very machine.
        return "unspecified (0.0.0.0/8 or ::)"
    if ip.is_multicast or ip == _BROADCAST:
        return "multicast or broadcast"
    if ip.is_link_local:
        return "link-local"
    if allow_private:
        return None
    if ip.is_loopback:
        return "loopback"
    if ip.is_private or any(ip in network for network in _NOT_GLOBAL):
        return "a private or special-purpose range"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 address leads to."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _host_and_port(url: str, *, allow_private: bool) -> tuple[str, int]:
    """The host and port of an acceptable push URL, or EndpointRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad port or a malformed IPv6 literal
        raise EndpointRefused(f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise EndpointRefused("Must be an http(s) URL with a host.")
    if parts.scheme != "https" and not allow_private:
        raise EndpointRefused("Push endpoints must use https.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host``, in the resolver's order of preference, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise EndpointUnresolvable(f"Host does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise EndpointUnresolvable("Host does not resolve: no addresses.")
    return addresses
