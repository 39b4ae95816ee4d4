"""Whatever arrives as a GPP string, only MalformedConsent may escape the decoder.

Anything else (IndexError, KeyError, a hang) would drop the event as filter_error at best
and crash a batch at worst. Seeded, so a failure reproduces.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gateway.privacy.gpp import (
    MAX_GPP_STRING_LENGTH,
    GppString,
    MalformedConsent,
    UsSection,
    decode_gpp_string,
    gpp_us_denials,
    sections_applicable,
    us_national_view,
)
from gateway.privacy.gpp.bits import BASE64URL_ALPHABET
from tests.work_budget import measure_work

VECTORS = json.loads((Path(__file__).parent / "vectors" / "gpp_vectors.json").read_text())
VALID = [vector["gpp"] for vector in VECTORS["vectors"]]
GPP_ALPHABET = BASE64URL_ALPHABET + "~."


def _decode_safely(value: object) -> GppString | None:
    """Decode, and use every decoded US section, allowing only MalformedConsent."""
    try:
        gpp = decode_gpp_string(value)  # type: ignore[arg-type]
    except MalformedConsent:
        return None
    assert isinstance(gpp, GppString)
    assert gpp.raw == value
    for section in sections_applicable(gpp, list(gpp.section_ids)):
        if isinstance(section, UsSection):
            try:
                view = us_national_view(section)
            except MalformedConsent:
                continue
            reasons = gpp_us_denials(view, gpc_flag=None)
            assert all(isinstance(reason, str) for reason in reasons)
    return gpp


@pytest.mark.parametrize("value", VALID, ids=range(len(VALID)))
def test_every_truncation_of_a_valid_string_decodes_or_is_malformed(value: str) -> None:
    for length in range(len(value)):
        _decode_safely(value[:length])


def test_cutting_a_valid_string_inside_a_section_never_passes_silently_as_the_original() -> None:
    for value in VALID:
        for length in range(len(value)):
            decoded = _decode_safely(value[:length])
            if decoded is not None:
                # What decodes is what was received: never the longer original.
                assert decoded.raw == value[:length]


@pytest.mark.parametrize("seed", range(4))
def test_every_single_character_change_of_a_valid_string_is_handled(seed: int) -> None:
    rng = random.Random(seed)
    for value in VALID:
        for index in range(len(value)):
            replacement = rng.choice(GPP_ALPHABET + "+/= \x00é")
            _decode_safely(value[:index] + replacement + value[index + 1 :])


@pytest.mark.parametrize("seed", range(5))
def test_random_strings_over_the_gpp_alphabet_are_handled(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2000):
        length = rng.randint(0, 80)
        _decode_safely("".join(rng.choice(GPP_ALPHABET) for _ in range(length)))


@pytest.mark.parametrize("seed", range(3))
def test_random_headers_with_plausible_sections_are_handled(seed: int) -> None:
    # "DB" starts every real header, so these reach the Fibonacci range and section decoders.
    rng = random.Random(seed)
    sections = ["CAAAAAAAAABA.QA", "1YNN", "BAAAAABA", "BAAAABA", "BQAA.AAA", "AAAA"]
    for _ in range(2000):
        header = "DB" + "".join(rng.choice(BASE64URL_ALPHABET) for _ in range(rng.randint(0, 8)))
        body = [rng.choice(sections) for _ in range(rng.randint(0, 5))]
        _decode_safely("~".join([header, *body]))


def _header(ids: list[int]) -> str:
    """A well-formed header naming ``ids`` (ascending), each as a single entry."""

    def fib(value: int) -> str:
        fibs = [1, 2]
        while fibs[-1] <= value:
            fibs.append(fibs[-1] + fibs[-2])
        flags = ["0"] * len(fibs)
        for index in range(len(fibs) - 1, -1, -1):
            if fibs[index] <= value:
                flags[index], value = "1", value - fibs[index]
        return "".join(flags).rstrip("0") + "1"

    bits = "000011" + "000001" + format(len(ids), "012b")
    previous = 0
    for section_id in ids:
        bits += "0" + fib(section_id - previous)
        previous = section_id
    bits += "0" * (-len(bits) % 8)
    bits += "0" * (-len(bits) % 6)
    return "".join(BASE64URL_ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


# Every raw section of the vectors, to put under ids they do or do not belong to.
SECTION_POOL = sorted({raw for vector in VECTORS["vectors"] for raw in vector["raw_sections"]})


@pytest.mark.parametrize("seed", range(4))
def test_well_formed_headers_over_mismatched_or_damaged_sections_are_handled(seed: int) -> None:
    # Valid headers reach every section decoder with every kind of section string.
    rng = random.Random(seed)
    decoded = 0
    for _ in range(1500):
        ids = sorted(rng.sample(range(1, 30), rng.randint(1, 4)))
        sections = []
        for _ in ids:
            raw = rng.choice(SECTION_POOL)
            if rng.random() < 0.5:
                index = rng.randrange(len(raw))
                raw = raw[:index] + rng.choice(GPP_ALPHABET) + raw[index + 1 :]
            sections.append(raw)
        decoded += _decode_safely("~".join([_header(ids), *sections])) is not None
    assert decoded > 0


@pytest.mark.parametrize("seed", range(3))
def test_random_bytes_are_handled(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        _decode_safely(raw.decode("latin-1"))
        _decode_safely(raw.decode("utf-8", errors="replace"))
        _decode_safely(raw)


@pytest.mark.parametrize(
    "value",
    [
        "DBABLA~CAAAAAAAAABA+QA",
        "DBABLA~CAAAAAAAAABA/",
        "DBABLA~CAAAAAAAAABA==",
        "DBABLA~CAAAAAAAAABA\n",
        "DBABLA~CAAAAAAAAABA\u00a0",
        "DBABLA~\uff23AAAAAAAAABA",  # a full-width C
        "DBABLA~CAAAAAAAAABA~",
        "~DBABLA~CAAAAAAAAABA",
        "DBABLA CAAAAAAAAABA",
        "dbabla~caaaaaaaaaba",
    ],
)
def test_characters_outside_the_gpp_alphabet_are_malformed(value: str) -> None:
    with pytest.raises(MalformedConsent):
        decode_gpp_string(value)


@pytest.mark.parametrize("value", [None, 7, b"DBABLA~CAAAAAAAAABA", ["DBABLA"], {"gpp": "x"}])
def test_a_value_that_is_not_a_string_is_malformed(value: object) -> None:
    with pytest.raises(MalformedConsent):
        decode_gpp_string(value)  # type: ignore[arg-type]


def test_an_absurdly_long_string_is_refused_without_being_read() -> None:
    value = "DBABLA~" + "A" * MAX_GPP_STRING_LENGTH
    # "Without being read": a handful of lines, however long the string.
    measured = measure_work(lambda: decode_gpp_string(value), max_lines=100)

    assert isinstance(measured.raised, MalformedConsent)
    assert "longer than" in str(measured.raised)


@pytest.mark.parametrize(
    "value",
    [
        # Many sections, each an opaque id: near the length limit, still quick.
        "DBABBcA~" + "~".join(["AAAA"] * 1900),
        # A header claiming 4095 entries, with sections it does not have.
        "DB" + "_" * 9000 + "~AAAA",
        # Long runs of zeros where a Fibonacci code should end.
        "DBAB" + "A" * 9990,
        # A long valid-looking section.
        "DBABLA~C" + "A" * 9990,
    ],
)
def test_hostile_strings_under_the_limit_cost_little(value: str) -> None:
    assert len(value) <= MAX_GPP_STRING_LENGTH

    # About one line per character, never one per id or bit a header claims.
    measured = measure_work(lambda: _decode_safely(value), max_lines=50_000)

    assert measured.raised is None
    assert measured.work.peak_bytes < 2_000_000
