"""Per-partner pseudonyms for user, device and household identifiers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from gateway.privacy.speedups import speedups_load

# The compiled HMAC (see speedups.py), or None.
_speedups = speedups_load()
# HMAC-SHA256 (RFC 2104): SHA-256 works on 64-byte blocks.
_BLOCK_SIZE = 64
# Pseudonyms remembered per key. Users, devices and households recur within a
# listening session, so most lookups hit; when full, the cache starts over,
# which costs far less per miss than an LRU's bookkeeping. The cache lives in
# the process that already holds the raw events, so it widens no exposure.
CACHE_SIZE = 65_536
# Keys remembered (one per partner; two during a rotation's overlap).
_MAX_KEYS = 256
# Cached for a value that has no pseudonym (a lone surrogate cannot be UTF-8).
_UNUSABLE = ""


class _Keyed:
    """HMAC-SHA256 under one key: the key schedule done once, and the pseudonyms so far."""

    __slots__ = ("cache", "compiled", "inner", "outer", "pseudonymiser")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK_SIZE:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(_BLOCK_SIZE, b"\0")
        # SHA-256 states after the inner and outer padded key. Copying them is
        # what hmac.HMAC.copy does too, without its Python wrapper: about half
        # the cost per pseudonym. Tests check the result against hmac.new.
        self.inner: Any = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
        self.outer: Any = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))
        self.cache: dict[str, str] = {}
        # The same HMAC in C, five times faster: most identifiers of a window
        # are new to the cache, so this is paid about once per event.
        self.compiled: Any = None if _speedups is None else _speedups.KeyedHash(key)
        # The whole of uncached_pseudonymiser's pseudonym in C (None where there is
        # no pseudonym): the filter calls it on every cache miss, from C.
        self.pseudonymiser: Any = (
            None if _speedups is None else _speedups.KeyedHash(key, lenient=True)
        )

    def pseudonym(self, value: str) -> str:
        try:
            if self.compiled is not None:
                return self.compiled(value)
            message = value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return _UNUSABLE
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_keyed: dict[bytes, _Keyed] = {}


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
    keyed = _keyed_for(key)
    pseudonym = keyed.cache.get(value)
    if pseudonym is None:
        pseudonym = keyed.pseudonym(value)
        if len(keyed.cache) >= CACHE_SIZE:
            keyed.cache.clear()
        keyed.cache[value] = pseudonym
    return pseudonym or None


def pseudonymiser(key: bytes) -> Callable[[object], str | None]:
    """``pseudonymise`` with ``key`` bound: the same results, cheaper once per event."""
    if not key or not isinstance(key, bytes):
        return _no_pseudonym
    keyed = _keyed_for(key)
    cache = keyed.cache

    def pseudonym(value: object) -> str | None:
        if type(value) is str:
            found = cache.get(value)
            if found:
                return found
        return pseudonymise(value, key=key)

    return pseudonym


def uncached_pseudonymiser(key: bytes) -> Callable[[object], str | None]:
    """``pseudonymise`` with ``key`` bound that remembers nothing: no raw value is kept.

    For callers that keep their own, shorter-lived cache (the privacy filter keeps
    one per policy, which lives as long as a worker keeps it:
    gateway.delivery.kept_policies). Only the key schedule is shared.
    """
    if not key or not isinstance(key, bytes):
        return _no_pseudonym
    keyed = _keyed_for(key)
    if keyed.pseudonymiser is not None:
        compiled: Callable[[object], str | None] = keyed.pseudonymiser
        return compiled
    compute = keyed.pseudonym

    def pseudonym(value: object) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        return compute(value) or None

    return pseudonym


def pseudonym_cache(key: bytes) -> dict[str, str] | None:
    """The cache ``pseudonymiser(key)`` reads (value -> pseudonym, "" when there is none).

    For callers that inline the cache lookup on their hot path and fall back to
    the pseudonymiser on a miss. None for a key that cannot be used.
    """
    if not key or not isinstance(key, bytes):
        return None
    keyed = _keyed_for(key)
    return keyed.cache


def _no_pseudonym(value: object) -> None:
    return None


def _keyed_for(key: bytes) -> _Keyed:
    """The key schedule of ``key``, made once per process (at most _MAX_KEYS kept)."""
    keyed = _keyed.get(key)
    if keyed is None:
        if len(_keyed) >= _MAX_KEYS:
            _keyed.clear()
        keyed = _keyed[key] = _Keyed(key)
    return keyed
