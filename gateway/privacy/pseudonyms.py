"""Per-partner pseudonyms for user, device and household identifiers."""

from __future__ import annotations

import functools
import hmac


def pseudonymise(value: object, *, key: bytes) -> str | None:
    """Hex HMAC-SHA256 of ``value`` (UTF-8) under ``key``; None when either cannot be used.

    Each partner has its own key, so two partners never share a pseudonym and
    cannot join their data on it. Without a key, or for a value that is not a
    non-empty string, there is no safe pseudonym and the caller removes the field.
    """
    if not key or not isinstance(key, bytes):
        return None
    if not isinstance(value, str) or not value:
        return None
    return _pseudonym(key, value)


# Users, devices and households recur across events, so most pseudonyms are
# cache hits. The cache lives in the same process that already holds the raw
# events, so it widens no exposure.
@functools.lru_cache(maxsize=65_536)
def _pseudonym(key: bytes, value: str) -> str | None:
    try:
        message = value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return None
    mac = _keyed(key).copy()
    mac.update(message)
    return mac.hexdigest()


@functools.lru_cache(maxsize=256)
def _keyed(key: bytes) -> hmac.HMAC:
    # The key schedule is computed once per key; copying it is cheaper than redoing it.
    return hmac.new(key, digestmod="sha256")
