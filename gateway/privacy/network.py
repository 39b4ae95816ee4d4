"""IP address truncation: enough for geo and fraud checks, too coarse to single out a home.

Each feed sets how many leading bits of an address survive (``Feed.ipv4_prefix_bits``,
``Feed.ipv6_prefix_bits``; /24 and /56 by default). 0 bits removes the address;
32 or 128 keeps it whole.

Some IPv6 addresses carry a client's IPv4 address inside them (IPv4-mapped,
6to4, NAT64, IPv4-translated, Teredo, IPv4-compatible). Those never reveal more
of the embedded IPv4 address than the IPv4 setting allows.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import cast

from gateway.privacy.speedups import speedups_load

# The compiled dotted-quad truncation (see speedups.py), or None.
_speedups = speedups_load()

IPV4_PREFIX = 24
IPV6_PREFIX = 56
IPV4_BITS = 32
IPV6_BITS = 128
# Longest text form of an IPv6 address (with an embedded dotted quad).
MAX_IP_TEXT = 45

# Networks whose addresses embed an IPv4 address, as (network, prefix length, bit
# offset where the IPv4 address starts): keeping offset + ipv4_bits bits
# truncates the embedded address like IPv4.
_EMBEDDING_IPV4: tuple[tuple[int, int, int], ...] = tuple(
    (int(network.network_address), network.prefixlen, offset)
    for network, offset in (
        (ipaddress.IPv6Network("2002::/16"), 16),  # 6to4: the client's address in bits 16-48
        (ipaddress.IPv6Network("64:ff9b::/96"), 96),  # NAT64 well-known prefix (RFC 6052)
        # NAT64 local-use prefix (RFC 8215) as a /48: the address starts at bit 48.
        (ipaddress.IPv6Network("64:ff9b:1::/48"), 48),
        (ipaddress.IPv6Network("::ffff:0:0:0/96"), 96),  # IPv4-translated (SIIT)
        # Teredo: the client's public address (inverted) in the last 32 bits.
        (ipaddress.IPv6Network("2001::/32"), 96),
        (ipaddress.IPv6Network("::/96"), 96),  # IPv4-compatible (deprecated, still seen)
    )
)
_MAPPED_PREFIX = 0xFFFF << 32  # ::ffff:0:0/96
# The same networks as the C truncator reads them: each in two 64-bit halves.
_EMBEDDING_IPV4_HALVES = tuple(
    (network >> 64, network & (2**64 - 1), length, offset)
    for network, length, offset in _EMBEDDING_IPV4
)

# The same address comes back once per event of a session: results are kept per
# pair of prefix settings. When full, a cache starts over, which costs far less
# per miss than an LRU's bookkeeping.
CACHE_SIZE = 65_536
_UNKNOWN = UNKNOWN = object()
_caches: dict[tuple[int, int], dict[str, str | None]] = {}


# A decimal octet without leading zeros: "010" may mean octal to some parsers.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}", re.ASCII)


def truncate_ip(
    value: object, *, ipv4_bits: int = IPV4_PREFIX, ipv6_bits: int = IPV6_PREFIX
) -> str | None:
    """``value`` with only its first ``ipv4_bits`` / ``ipv6_bits`` bits; None to remove it.

    None for anything that is not an IP address, for 0 bits, and for a bit count
    out of range (0-32, 0-128): an unusable setting fails closed. Dotted quads with
    leading zeros, scoped IPv6 addresses and surrounding whitespace are refused
    rather than guessed at. An IPv4-mapped IPv6 address is truncated as IPv4.
    """
    if type(value) is str and type(ipv4_bits) is int and type(ipv6_bits) is int:
        # A cache exists only for valid settings and holds only checked values.
        cache = _caches.get((ipv4_bits, ipv6_bits))
        if cache is not None:
            truncated = cache.get(value, _UNKNOWN)
            if truncated is not _UNKNOWN:
                return cast("str | None", truncated)
    if not isinstance(value, str) or len(value) > MAX_IP_TEXT:
        return None
    if not _valid_bits(ipv4_bits, ipv6_bits):
        return None
    cache = _cache_for(ipv4_bits, ipv6_bits)
    truncated = _truncate(value, ipv4_bits, ipv6_bits)
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[value] = truncated
    return truncated


def truncator(
    *, ipv4_bits: int = IPV4_PREFIX, ipv6_bits: int = IPV6_PREFIX
) -> Callable[[object], str | None]:
    """``truncate_ip`` with its settings bound: the same results, cheaper once per event."""
    cache = _cache_for(ipv4_bits, ipv6_bits) if _valid_bits(ipv4_bits, ipv6_bits) else None

    def truncate(value: object) -> str | None:
        if cache is not None and type(value) is str:
            found = cache.get(value, _UNKNOWN)
            if found is not _UNKNOWN:
                return cast("str | None", found)
        return truncate_ip(value, ipv4_bits=ipv4_bits, ipv6_bits=ipv6_bits)

    return truncate


def uncached_truncator(
    *, ipv4_bits: int = IPV4_PREFIX, ipv6_bits: int = IPV6_PREFIX
) -> Callable[[object], str | None]:
    """``truncate_ip`` with its settings bound that remembers nothing (no address is kept).

    For callers that keep their own, shorter-lived cache (the privacy filter keeps
    one per policy, which lives as long as a worker keeps it:
    gateway.delivery.kept_policies).
    """
    valid = _valid_bits(ipv4_bits, ipv6_bits)

    def truncate(value: object) -> str | None:
        if not valid or not isinstance(value, str) or len(value) > MAX_IP_TEXT:
            return None
        return _truncate(value, ipv4_bits, ipv6_bits)

    if _speedups is None or not valid:
        return truncate
    # The same in C; the few values it leaves (see _speedups.c) go to truncate.
    compiled: Callable[[object], str | None] = _speedups.IpTruncator(
        ipv4_bits, ipv6_bits, _EMBEDDING_IPV4_HALVES, truncate
    )
    return compiled


def truncation_cache(*, ipv4_bits: int, ipv6_bits: int) -> dict[str, str | None] | None:
    """The cache ``truncator`` reads for these settings (None when they are not valid).

    Values are the truncated address, or None for one to remove; use ``UNKNOWN``
    as the default of ``get``.
    """
    return _cache_for(ipv4_bits, ipv6_bits) if _valid_bits(ipv4_bits, ipv6_bits) else None


def _valid_bits(ipv4_bits: object, ipv6_bits: object) -> bool:
    return (
        type(ipv4_bits) is int
        and 0 <= ipv4_bits <= IPV4_BITS
        and type(ipv6_bits) is int
        and 0 <= ipv6_bits <= IPV6_BITS
    )


def _cache_for(ipv4_bits: int, ipv6_bits: int) -> dict[str, str | None]:
    cache = _caches.get((ipv4_bits, ipv6_bits))
    if cache is None:
        if len(_caches) >= 64:
            _caches.clear()
        cache = _caches[(ipv4_bits, ipv6_bits)] = {}
    return cache


def _truncate(value: str, ipv4_bits: int, ipv6_bits: int) -> str | None:
    match = _IPV4.fullmatch(value)
    if match is not None:
        return _ipv4_text(match, ipv4_bits)
    if ":" not in value:
        return None
    try:
        # The C parser: strict (no zone index, no leading zeros in a dotted
        # quad, at most four hex digits a group) and ten times faster than ipaddress.
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, value), "big")
    except (OSError, ValueError):
        return None
    if number >> 32 == _MAPPED_PREFIX >> 32:
        truncated = _ipv4_number_text(number & 0xFFFFFFFF, ipv4_bits)
        return None if truncated is None else f"::ffff:{truncated}"
    if ipv6_bits == 0:
        return None
    return _ipv6_text(number & _mask(_ipv6_prefix(number, ipv4_bits, ipv6_bits), IPV6_BITS))


def _ipv6_prefix(number: int, ipv4_bits: int, ipv6_bits: int) -> int:
    for network, length, offset in _EMBEDDING_IPV4:
        if number >> (IPV6_BITS - length) == network >> (IPV6_BITS - length):
            return min(ipv6_bits, offset + ipv4_bits)
    return ipv6_bits


def _ipv6_text(number: int) -> str:
    if number >> 32 == 0 and number > 1:
        # inet_ntop writes ::/96 as a dotted quad ("::203.0.113.0"); keep hex
        # groups, as for every other address (RFC 5952).
        return str(ipaddress.IPv6Address(number))
    return socket.inet_ntop(socket.AF_INET6, number.to_bytes(16, "big"))


def _ipv4_text(match: re.Match[str], bits: int) -> str | None:
    if bits == IPV4_PREFIX:  # the default, and by far the most common
        return f"{match[1]}.{match[2]}.{match[3]}.0"
    number = (int(match[1]) << 24) | (int(match[2]) << 16) | (int(match[3]) << 8)
    return _ipv4_number_text(number | int(match[4]), bits)


def _ipv4_number_text(number: int, bits: int) -> str | None:
    if bits == 0:
        return None
    masked = number & _mask(bits, IPV4_BITS)
    return f"{masked >> 24}.{(masked >> 16) & 255}.{(masked >> 8) & 255}.{masked & 255}"


def _mask(prefix: int, width: int) -> int:
    return ((1 << prefix) - 1) << (width - prefix)
