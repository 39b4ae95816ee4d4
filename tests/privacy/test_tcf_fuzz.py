"""Whatever it is given, the TC string decoder returns a TCString or raises MalformedConsent.

Plain loops with fixed seeds, so a failure always reproduces. Any other
exception (IndexError, KeyError, OverflowError...) fails these tests: it would
reach the filter as ``filter_error`` instead of ``malformed_consent``.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime

import pytest

from gateway.privacy.tcf import (
    MAX_TC_STRING_LENGTH,
    MalformedConsent,
    PublisherRestriction,
    PublisherTC,
    RestrictionType,
    TCString,
    VendorEncoding,
    decode_tc_string,
    encode_tc_string,
)
from tests.work_budget import measure_work

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SEED = 20_261_125

# A string with every segment and section kind, and its exact size in bits per
# segment, counted from the specification rather than from our encoder.
_CONSENTS = {1, 2, 3, 9, 1200}  # range: (1-3), (9), (1200)
_LI = {2, 5}  # range: (2), (5)
_RESTRICTED = {4, 5, 793}  # range: (4-5), (793)
_DISCLOSED = {1, 3, 1201}  # range: (1), (3), (1201)
_ALLOWED = {2, 4}  # range: (2), (4)
_PUBLISHER_TC = PublisherTC(
    purpose_consents=frozenset({1, 24}),
    purpose_li=frozenset({2}),
    num_custom_purposes=5,
    custom_purpose_consents=frozenset({1, 5}),
    custom_purpose_li=frozenset({3}),
)
VALID = encode_tc_string(
    purpose_consents={1, 7},
    purpose_li={2},
    vendor_consents=_CONSENTS,
    vendor_li=_LI,
    special_feature_opt_ins={1},
    vendor_encoding=VendorEncoding.RANGE,
    publisher_restrictions=[
        PublisherRestriction(
            purpose_id=7,
            restriction_type=RestrictionType.REQUIRE_CONSENT,
            vendor_ids=frozenset(_RESTRICTED),
        )
    ],
    disclosed_vendors=_DISCLOSED,
    allowed_vendors=_ALLOWED,
    publisher_tc=_PUBLISHER_TC,
    created=datetime(2026, 3, 1, tzinfo=UTC),
)
_HEADER_BITS = 213  # Version ... PublisherCC
_SINGLE, _RANGE = 1 + 16, 1 + 16 + 16  # IsARange + ids
_RANGE_SECTION = 16 + 1 + 12  # MaxVendorId, IsRangeEncoding, NumEntries
NEEDED_BITS = [
    # Core: header, consents and LI as ranges, one restriction (NumPubRestrictions,
    # PurposeId, RestrictionType, NumEntries, entries).
    _HEADER_BITS
    + (_RANGE_SECTION + _RANGE + 2 * _SINGLE)
    + (_RANGE_SECTION + 2 * _SINGLE)
    + (12 + 6 + 2 + 12 + _RANGE + _SINGLE),
    3 + _RANGE_SECTION + 3 * _SINGLE,  # disclosed vendors
    3 + _RANGE_SECTION + 2 * _SINGLE,  # allowed vendors
    3 + 24 + 24 + 6 + 5 + 5,  # publisher TC
]


def _decoded_or_none(value: object) -> TCString | None:
    """The decoded string, or None for MalformedConsent; anything else propagates."""
    try:
        result = decode_tc_string(value)  # type: ignore[arg-type]
    except MalformedConsent:
        return None
    assert isinstance(result, TCString)
    assert result.version == 2
    return result


def _bits_of(segment: str) -> str:
    return "".join(format(_ALPHABET.index(char), "06b") for char in segment)


def _segment_of(bits: str) -> str:
    bits += "0" * (-len(bits) % 6)
    return "".join(_ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_the_valid_string_is_valid_and_its_bit_counts_are_right() -> None:
    tc = decode_tc_string(VALID)
    segments = VALID.split(".")

    assert tc.vendor_consents == _CONSENTS
    assert tc.disclosed_vendors == _DISCLOSED
    assert tc.publisher_tc == _PUBLISHER_TC
    for segment, needed in zip(segments, NEEDED_BITS, strict=True):
        # What follows the fields is only padding: zeros, less than a byte of them.
        padding = _bits_of(segment)[needed:]
        assert set(padding) <= {"0"}
        assert len(padding) < 8 + 6


# --- Truncation at every bit ---------------------------------------------------------------


@pytest.mark.parametrize(
    "index", range(len(NEEDED_BITS)), ids=["core", "disclosed", "allowed", "pub"]
)
def test_every_bit_length_of_each_segment_is_malformed_or_complete(index: int) -> None:
    segments = VALID.split(".")
    bits = _bits_of(segments[index])
    needed = NEEDED_BITS[index]
    original = decode_tc_string(VALID)
    for length in range(len(bits) + 1):
        cut = _segment_of(bits[:length])
        result = _decoded_or_none(".".join([*segments[:index], cut, *segments[index + 1 :]]))
        if length >= needed:
            assert result == original, f"{length} bits of {needed} changed the result"
        elif length % 6 == 0:
            # A cut between characters keeps a prefix of the same fields: too short.
            assert result is None, f"{length} bits of {needed} decoded"
        # Otherwise the zero bits that fill the last character are a different
        # string (a cut IsRangeEncoding bit turns ranges into an empty bitfield,
        # say), which may be complete: only MalformedConsent or a TCString.


def test_cutting_the_whole_string_at_every_character_never_misleads() -> None:
    original = decode_tc_string(VALID)
    for length in range(len(VALID) + 1):
        result = _decoded_or_none(VALID[:length])
        if result is None:
            continue
        # Only a cut after a whole segment, or inside the last one's padding, decodes.
        assert result.vendor_consents == original.vendor_consents
        assert result.publisher_restrictions == original.publisher_restrictions


# --- Wrong alphabet, wrong version, absurd lengths -----------------------------------------


def test_every_character_outside_base64url_is_malformed_anywhere() -> None:
    rng = random.Random(SEED)
    outsiders = [chr(c) for c in range(128) if chr(c) not in _ALPHABET + "."]
    # Look-alikes of base64url: accented, invisible, mathematical and full-width
    # characters, a byte-order mark and a lone surrogate.
    outsiders += ["\u00e9", "\u00a0", "\u200b", "\U0001d7d8", "\ufeff", "\uff21", "\udc80"]
    for char in outsiders:
        position = rng.randrange(len(VALID) + 1)
        with pytest.raises(MalformedConsent, match="base64url"):
            decode_tc_string(VALID[:position] + char + VALID[position:])


@pytest.mark.parametrize("version", [v for v in range(64) if v != 2])
def test_every_version_but_2_is_malformed(version: int) -> None:
    core, *rest = VALID.split(".")
    bits = _bits_of(core)
    changed = _segment_of(format(version, "06b") + bits[6:])

    with pytest.raises(MalformedConsent, match=f"version {version} is not 2"):
        decode_tc_string(".".join([changed, *rest]))


@pytest.mark.parametrize(
    "value",
    [
        "C" * (MAX_TC_STRING_LENGTH + 1),
        VALID + "." + "A" * MAX_TC_STRING_LENGTH,
        "a" * 1_000_000,
        "." * 100_000,
        "C" + "_" * (MAX_TC_STRING_LENGTH - 1),
        VALID + "." + "_" * (MAX_TC_STRING_LENGTH - len(VALID) - 1),
        ".".join([VALID.split(".")[0]] + ["Y" + "A" * 10] * 2_000)[:MAX_TC_STRING_LENGTH],
    ],
    ids=[
        "one-over",
        "valid-then-padding",
        "a-million",
        "only-dots",
        "max-all-ones",
        "valid-then-ones",
        "thousands-of-segments",
    ],
)
def test_absurdly_long_or_dense_input_is_refused_cheaply(value: str) -> None:
    # Counted, not timed: a few thousand lines at most (one per character read
    # of the longest), and no allocation growing with what the string claims.
    measured = measure_work(lambda: _decoded_or_none(value), max_lines=50_000)

    assert measured.result is None and measured.raised is None
    assert measured.work.peak_bytes < 1_000_000


# --- Random input --------------------------------------------------------------------------


def test_random_bytes_only_ever_raise_malformed_consent() -> None:
    rng = random.Random(SEED)
    core = VALID.split(".")[0]
    for _ in range(1_500):
        raw = rng.randbytes(rng.randrange(0, 200))
        for value in (
            raw.decode("latin-1"),
            _b64(raw),
            "C" + _b64(raw),  # "C" is version 2: reaches the fields after it
            f"{core}.{_b64(raw)}",  # random optional segments
            ".".join(_b64(rng.randbytes(rng.randrange(1, 30))) for _ in range(rng.randrange(1, 5))),
        ):
            _decoded_or_none(value)


def test_random_segments_of_each_type_only_ever_raise_malformed_consent() -> None:
    rng = random.Random(SEED + 1)
    core = VALID.split(".")[0]
    decoded = 0
    for _ in range(3_000):
        segment_type = rng.choice([1, 2, 3, rng.randrange(8)])
        body = "".join(rng.choice("01") for _ in range(rng.randrange(0, 300)))
        if _decoded_or_none(f"{core}.{_segment_of(format(segment_type, '03b') + body)}"):
            decoded += 1
    # Short random bodies are often complete: both outcomes are exercised.
    assert decoded > 100


def test_every_single_bit_flip_only_ever_raises_malformed_consent() -> None:
    decoded = 0
    segments = VALID.split(".")
    for index, segment in enumerate(segments):
        bits = _bits_of(segment)
        for position in range(len(bits)):
            flipped = (
                bits[:position] + ("1" if bits[position] == "0" else "0") + bits[position + 1 :]
            )
            value = ".".join([*segments[:index], _segment_of(flipped), *segments[index + 1 :]])
            decoded += _decoded_or_none(value) is not None
    assert decoded > 0


def test_random_mutations_of_a_valid_string_only_ever_raise_malformed_consent() -> None:
    rng = random.Random(SEED + 2)
    for _ in range(3_000):
        chars = list(VALID)
        for _ in range(rng.randrange(1, 6)):
            operation = rng.randrange(3)
            position = rng.randrange(len(chars))
            if operation == 0:
                chars[position] = rng.choice(_ALPHABET + ".")
            elif operation == 1:
                del chars[position]
            else:
                chars.insert(position, rng.choice(_ALPHABET + ".="))
        _decoded_or_none("".join(chars))
