from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.privacy.gpp import MalformedConsent, decode_fibonacci, decode_gpp_string
from gateway.privacy.tcf import encode_tc_string
from tests.work_budget import measure_work

# --- A bit-level builder, independent of the decoder under test ------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _bits(value: int, width: int) -> str:
    assert 0 <= value < 1 << width
    return format(value, f"0{width}b")


def _fib(value: int) -> str:
    """Zeckendorf representation, least significant first, then the closing 1."""
    assert value >= 1
    fibs = [1, 2]
    while fibs[-1] <= value:
        fibs.append(fibs[-1] + fibs[-2])
    flags = ["0"] * len(fibs)
    for index in range(len(fibs) - 1, -1, -1):
        if fibs[index] <= value:
            flags[index] = "1"
            value -= fibs[index]
    return "".join(flags).rstrip("0") + "1"


def _b64(bits: str) -> str:
    """Pad to a whole byte, then to a whole character, as GPP does."""
    bits += "0" * (-len(bits) % 8)
    bits += "0" * (-len(bits) % 6)
    return "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def _range(entries: list[int | tuple[int, int]]) -> str:
    bits = _bits(len(entries), 12)
    previous = 0
    for entry in entries:
        if isinstance(entry, tuple):
            first, last = entry
            bits += "1" + _fib(first - previous) + _fib(last - first)
            previous = last
        else:
            bits += "0" + _fib(entry - previous)
            previous = entry
    return bits


def _header(entries: list[int | tuple[int, int]], *, type_: int = 3, version: int = 1) -> str:
    return _b64(_bits(type_, 6) + _bits(version, 6) + _range(entries))


def _gpp(entries: list[int | tuple[int, int]], sections: int, **header: int) -> str:
    # Opaque sections (ids the decoder keeps undecoded) isolate the header under test.
    return "~".join([_header(entries, **header), *["AAAA"] * sections])


# A valid section string for each id a library header above names.
VALID_SECTIONS = {
    2: encode_tc_string(created=datetime(2024, 5, 17, tzinfo=UTC)),
    6: "1YNN",
    7: "CAAAAAAAAABA.QA",
    8: "BAAAAABA",
    9: "BAAAABA",
    10: "BAAAAEA.YA",
    11: "BAAAAAQA",
    12: "BAAAAAEA",
    27: "BQAA.AAA",
}


# --- Fibonacci integers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("11", 1),
        ("011", 2),
        ("0011", 3),
        ("1011", 4),
        ("00011", 5),
        ("10011", 6),
        ("01011", 7),
        ("000011", 8),
        ("101011", 12),
        ("0000000011", 55),
        ("1010101011", 88),
    ],
)
def test_it_decodes_fibonacci_codes(code: str, value: int) -> None:
    assert decode_fibonacci(code) == value


def test_the_test_builder_agrees_with_the_decoder_on_the_first_thousand_integers() -> None:
    assert [decode_fibonacci(_fib(n)) for n in range(1, 1001)] == list(range(1, 1001))


@pytest.mark.parametrize("code", ["", "1", "0", "10", "01", "111", "0110", "1101", "0121", "0011 "])
def test_a_string_that_is_not_one_fibonacci_code_is_malformed(code: str) -> None:
    with pytest.raises(MalformedConsent):
        decode_fibonacci(code)


def test_a_fibonacci_code_longer_than_any_gpp_value_is_malformed() -> None:
    with pytest.raises(MalformedConsent):
        decode_fibonacci("0" * 60 + "11")


# --- Section id ranges -----------------------------------------------------------------------


# Ids the decoder keeps opaque (1, 3-5, 24 and up), so only the header is under test.
@pytest.mark.parametrize(
    ("entries", "ids"),
    [
        ([1], (1,)),
        ([28], (28,)),
        ([1, 5], (1, 5)),
        ([(24, 27)], (24, 25, 26, 27)),
        ([1, (3, 5), 28], (1, 3, 4, 5, 28)),
        ([(3, 4), (24, 26)], (3, 4, 24, 25, 26)),
        ([5, 100], (5, 100)),
        ([1, 4181], (1, 4181)),
    ],
)
def test_it_reads_single_ids_and_ranges_as_fibonacci_deltas(
    entries: list[int | tuple[int, int]], ids: tuple[int, ...]
) -> None:
    assert decode_gpp_string(_gpp(entries, len(ids))).section_ids == ids


@pytest.mark.parametrize(
    ("header", "ids"),
    [
        ("DBABMA", (2,)),
        ("DBABTA", (6,)),
        ("DBABLA", (7,)),
        ("DBACNYA", (2, 6)),
        ("DBACPeA", (2, 6, 7)),
        ("DBABh2A", (8, 9, 10, 11, 12)),
        ("DBABrYA", (7, 8, 9)),
        ("DBACLKw", (7, 27)),
    ],
)
def test_it_reads_headers_written_by_the_iab_library(header: str, ids: tuple[int, ...]) -> None:
    value = "~".join([header, *(VALID_SECTIONS[section_id] for section_id in ids)])

    assert decode_gpp_string(value).section_ids == ids


def test_a_header_without_sections_names_none() -> None:
    assert decode_gpp_string(_header([])).section_ids == ()


@pytest.mark.parametrize(("type_", "version"), [(2, 1), (0, 1), (63, 1), (3, 0), (3, 2), (3, 63)])
def test_a_header_of_another_type_or_version_is_malformed(type_: int, version: int) -> None:
    with pytest.raises(MalformedConsent, match=r"type|version"):
        decode_gpp_string(_gpp([9], 1, type_=type_, version=version))


@pytest.mark.parametrize(
    ("entries", "sections"),
    [([9], 0), ([9], 2), ([9, 10], 1), ([(9, 11)], 2), ([(9, 11)], 4), ([], 1)],
)
def test_section_ids_must_match_the_sections_that_follow(
    entries: list[int | tuple[int, int]], sections: int
) -> None:
    with pytest.raises(MalformedConsent, match=r"sections|ids"):
        decode_gpp_string(_gpp(entries, sections))


def test_a_header_cut_short_is_malformed() -> None:
    bits = _bits(3, 6) + _bits(1, 6) + _bits(3, 12) + "0" + _fib(9) + "0" + _fib(1)
    with pytest.raises(MalformedConsent, match="truncated"):
        decode_gpp_string(_b64(bits) + "~AAAA~AAAA~AAAA")


def test_a_header_with_bits_set_after_its_ids_is_malformed() -> None:
    bits = _bits(3, 6) + _bits(1, 6) + _range([9])
    bits += "0" * (-len(bits) % 8)
    with pytest.raises(MalformedConsent, match="bits set"):
        decode_gpp_string(_b64(bits[:-1] + "1") + "~AAAA")


def test_a_header_longer_than_its_fields_is_malformed() -> None:
    with pytest.raises(MalformedConsent, match="longer"):
        decode_gpp_string(_header([9]) + "A~AAAA")


def test_a_huge_range_fails_instead_of_expanding() -> None:
    measured = measure_work(lambda: decode_gpp_string(_gpp([(1, 10**9)], 1)), max_lines=5_000)

    assert isinstance(measured.raised, MalformedConsent)
    assert measured.work.peak_bytes < 1_000_000


def test_a_fibonacci_code_that_never_ends_is_malformed() -> None:
    bits = _bits(3, 6) + _bits(1, 6) + _bits(1, 12) + "0" + "0" * 200
    with pytest.raises(MalformedConsent):
        decode_gpp_string(_b64(bits) + "~AAAA")


@pytest.mark.parametrize("header", ["", "D", "DB", "DBA", "DB+BMA", "DB=BMA", "DB.BMA"])
def test_a_header_too_short_or_outside_base64url_is_malformed(header: str) -> None:
    with pytest.raises(MalformedConsent):
        decode_gpp_string(header + "~AAAA")
