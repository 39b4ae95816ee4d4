"""IP address truncation: enough for geo and fraud checks, too coarse to single out a home."""

from __future__ import annotations

import functools
import ipaddress
import re

IPV4_PREFIX = 24
IPV6_PREFIX = 56
# 6to4 addresses (2002::/16) carry the client's whole IPv4 address in bits 16-48;
# keeping 16 + 24 bits truncates that embedded address to /24 as well.
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_SIX_TO_FOUR_PREFIX = 16 + IPV4_PREFIX

# A decimal octet without leading zeros: "010" may mean octal to some parsers.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def truncate_ip(value: object) -> str | None:
    """IPv4 to /24 (last octet 0), IPv6 to /56; None for anything that is not an IP address.

    Dotted quads with leading zeros, scoped IPv6 addresses and surrounding
    whitespace are refused rather than guessed at.
    """
    if not isinstance(value, str) or len(value) > 45:  # longest IPv6 text form
        return None
    return _truncate(value)


# The same address comes back once per partner and once per event of a session.
@functools.lru_cache(maxsize=65_536)
def _truncate(value: str) -> str | None:
    match = _IPV4.fullmatch(value)
    if match is not None:
        return f"{match[1]}.{match[2]}.{match[3]}.0"
    if ":" not in value or "%" in value:
        return None
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    mapped = address.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{_truncate(str(mapped))}"
    prefix = _SIX_TO_FOUR_PREFIX if address in _SIX_TO_FOUR else IPV6_PREFIX
    mask = ((1 << prefix) - 1) << (128 - prefix)
    return str(ipaddress.IPv6Address(int(address) & mask))
