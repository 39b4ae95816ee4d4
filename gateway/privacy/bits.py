"""Fixed-width fields of base64url consent segments, shared by the TCF and GPP decoders.

Both IAB formats pack big-endian unsigned fields into base64url characters of
six bits each. Every problem raises MalformedConsent: a segment we cannot read
exactly is never guessed at.
"""

from __future__ import annotations

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
