"""Fixed-width fields of base64url consent segments, shared by the TCF and GPP decoders.

Both IAB formats pack big-endian unsigned fields into base64url characters of
six bits each. Every problem raises MalformedConsent: a segment we cannot read
exactly is never guessed at.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from gateway.privacy.errors import MalformedConsent

BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
BASE64URL = frozenset(BASE64URL_ALPHABET)
_SIX_BITS = {char: format(index, "06b") for index, char in enumerate(BASE64URL_ALPHABET)}


class Base64urlBitReader:
    """Reads fields, in order, from one base64url-encoded segment.

    ``what`` names the segment in error messages ("TC string", "GPP header").
    """

    def __init__(self, encoded: str, *, what: str) -> None:
        if not encoded:
            raise MalformedConsent(f"{what} is empty")
        if not BASE64URL.issuperset(encoded):
            raise MalformedConsent(f"{what} has characters outside base64url")
        self._what = what
        self._chars = len(encoded)
        self._bits = "".join(_SIX_BITS[char] for char in encoded)
        self._position = 0

    def read_bits(self, width: int, *, field: str) -> str:
        end = self._position + width
        if end > len(self._bits):
            raise MalformedConsent(f"{self._what} is truncated in {field}")
        chunk = self._bits[self._position : end]
        self._position = end
        return chunk

    def read_int(self, width: int, *, field: str) -> int:
        return int(self.read_bits(width, field=field), 2)

    def read_bool(self, *, field: str) -> bool:
        return self.read_bits(1, field=field) == "1"


T = TypeVar("T")


def cached_decoder(
    decode: Callable[[str], T], *, what: str, max_length: int, maxsize: int = 4096
) -> tuple[Callable[[str], T], Callable[[str], T | str]]:
    """``decode`` behind a length check and a bounded per-string cache.

    Returns the public decoder and its cache (for ``cache_info``/``cache_clear``).
    Traffic reuses a few thousand distinct consent strings, so each is decoded
    once. Malformed strings are cached as their problem too, so a flood of one
    bad string costs one decode, not one per event; oversized input is refused
    before the cache so it never occupies it.
    """

    @functools.lru_cache(maxsize=maxsize)
    def decode_or_problem(value: str) -> T | str:
        try:
            return decode(value)
        except MalformedConsent as exc:
            return str(exc)

    def decoder(value: str) -> T:
        if not isinstance(value, str):
            raise MalformedConsent(f"{what} is not a string")
        if len(value) > max_length:
            raise MalformedConsent(f"{what} longer than {max_length} characters")
        result = decode_or_problem(value)
        if isinstance(result, str):
            # A fresh exception each time: re-raising one cached instance would
            # grow its traceback on every raise.
            raise MalformedConsent(result)
        return result

    return decoder, decode_or_problem
