"""Bit-level reading of GPP segments: base64url characters of six bits each, big-endian
fixed-width integers, and the Fibonacci-coded integers and ranges of the GPP header.

Every problem raises MalformedConsent: a segment we cannot read exactly is never guessed at.
"""

from __future__ import annotations

from gateway.privacy.bits import BASE64URL, BASE64URL_ALPHABET, Base64urlBitReader
from gateway.privacy.errors import MalformedConsent

__all__ = ["BASE64URL", "BASE64URL_ALPHABET", "BitReader", "decode_fibonacci"]


# Fibonacci numbers 1, 2, 3, 5, 8, ... : bit i of a Fibonacci code stands for _FIBONACCI[i].
# A code longer than this names an integer above 10^9: no section id or delta is that large,
# and the bound keeps a hostile string from making us scan or add up thousands of bits.
MAX_FIBONACCI_CODE_BITS = 45
_FIBONACCI = [1, 2]
while len(_FIBONACCI) < MAX_FIBONACCI_CODE_BITS:
    _FIBONACCI.append(_FIBONACCI[-1] + _FIBONACCI[-2])


def decode_fibonacci(code: str) -> int:
    """The integer of one Fibonacci code: Zeckendorf bits, least significant first, then "1".

    "11" = 1, "011" = 2, "0011" = 3, "1011" = 4. The code ends at its first "11", the only
    place two ones may meet, and encodes integers from 1 up: zero has no code.
    """
    if not set(code) <= {"0", "1"} or not code.endswith("11") or "11" in code[:-1]:
        raise MalformedConsent(f"{code!r} is not a Fibonacci code")
    if len(code) - 1 > MAX_FIBONACCI_CODE_BITS:
        raise MalformedConsent("Fibonacci code is longer than any GPP value")
    return sum(_FIBONACCI[index] for index, bit in enumerate(code[:-1]) if bit == "1")


class BitReader(Base64urlBitReader):
    """Reads fields, in order, from one GPP segment, including Fibonacci-coded ones.

    ``what`` names the segment in error messages ("GPP header", "usnat core segment").
    """

    def read_fibonacci(self, *, field: str) -> int:
        """One Fibonacci-coded integer (1 or more)."""
        # Look no further than the longest code we accept: a run of zeros cannot make us
        # scan the rest of a long string for every entry.
        window = self._bits[self._position : self._position + MAX_FIBONACCI_CODE_BITS + 1]
        end = window.find("11")
        if end == -1:
            if len(window) > MAX_FIBONACCI_CODE_BITS:
                raise MalformedConsent(f"{self._what} {field} is larger than any GPP value")
            raise MalformedConsent(f"{self._what} is truncated in {field}")
        return decode_fibonacci(self.read_bits(end + 2, field=field))

    def read_fibonacci_range(self, *, field: str, max_ids: int) -> tuple[int, ...]:
        """A GPP "Range (Fibonacci)": the ids of NumEntries entries, ascending.

        NumEntries is 12 bits. Each entry is IsRange (1 bit), then the Fibonacci-coded
        distance from the previous entry's last id (from 0 for the first entry), and for a
        range the Fibonacci-coded distance from its first id to its last. Distances are at
        least 1, so the ids come out strictly ascending with no repeats.

        ``max_ids`` caps how many ids may be expanded: a range "1 to a billion" fails here
        instead of filling memory.
        """
        ids: list[int] = []
        previous = 0
        for _ in range(self.read_int(12, field=f"{field} NumEntries")):
            is_range = self.read_bool(field=f"{field} IsRange")
            first = previous + self.read_fibonacci(field=f"{field} StartOrOnlyId")
            last = first + self.read_fibonacci(field=f"{field} EndId") if is_range else first
            if len(ids) + (last - first + 1) > max_ids:
                raise MalformedConsent(f"{self._what} {field} names more ids than it can hold")
            ids.extend(range(first, last + 1))
            previous = last
        return tuple(ids)

    def finish(self) -> None:
        """Check that only padding follows the last field.

        GPP pads a segment with zero bits to a whole byte, then to a whole base64 character
        (the IAB library does exactly this). Anything more, or a set bit in the padding,
        means the string has a layout we did not read: a newer version, another section,
        or corruption.
        """
        padded_bits = self._position + (-self._position % 8)
        max_chars = -(-padded_bits // 6)
        if self._chars > max_chars:
            raise MalformedConsent(f"{self._what} is longer than its fields")
        if "1" in self._bits[self._position :]:
            raise MalformedConsent(f"{self._what} has bits set after its last field")
