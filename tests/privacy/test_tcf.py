from __future__ import annotations

import base64
import random
from datetime import UTC, datetime

import pytest

from gateway.privacy.tcf import (
    MAX_DECODED_IDS,
    MAX_TC_STRING_LENGTH,
    MalformedConsent,
    PublisherRestriction,
    PublisherTC,
    RestrictionType,
    SegmentType,
    TCString,
    VendorEncoding,
    _merged,
    decode_tc_string,
    encode_tc_string,
)
from tests.work_budget import measure_work

# Decoded by the IAB's reference Java library (iabtcf-java), as published with
# the string: CMP 2, vendor list 128, purpose 1, vendors 1000-1004, LI 1003-1004.
REAL_CMP_STRING = "CPhBZtcPhBZtcACABAENCACgAIAAAAAAAAAAH2QAYH0AfYB9kAGB9YH2AAAA.YAAAAAAAAAAA"


# --- A bit-level builder, independent of the encoder under test -----------------------------


def _bits(value: int, width: int) -> str:
    assert 0 <= value < 1 << width
    return format(value, f"0{width}b")


def _ids(ids: set[int], width: int) -> str:
    return "".join("1" if i in ids else "0" for i in range(1, width + 1))


def _letters(text: str) -> str:
    return "".join(_bits(ord(c) - ord("A"), 6) for c in text)


def _to_tc_string(bits: str) -> str:
    bits += "0" * (-len(bits) % 8)
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _header(*, version: int = 2, language: str = "FR", service_specific: bool = True) -> str:
    return "".join(
        [
            _bits(version, 6),
            _bits(16_000_000_000, 36),  # Created, in deciseconds: 2020-09-13T12:26:40Z
            _bits(16_000_000_005, 36),  # LastUpdated, half a second later
            _bits(300, 12),  # CmpId
            _bits(7, 12),  # CmpVersion
            _bits(3, 6),  # ConsentScreen
            _letters(language),
            _bits(150, 12),  # VendorListVersion
            _bits(4, 6),  # TcfPolicyVersion
            "1" if service_specific else "0",  # IsServiceSpecific
            "0",  # UseNonStandardTexts
            _ids({1, 12}, 12),  # SpecialFeatureOptIns
            _ids({1, 2, 24}, 24),  # PurposesConsent
            _ids({2, 7}, 24),  # PurposesLITransparency
            "1",  # PurposeOneTreatment
            _letters("DE"),  # PublisherCC
        ]
    )


def _bitfield_section(ids: set[int], *, max_id: int | None = None) -> str:
    max_id = max(ids, default=0) if max_id is None else max_id
    return _bits(max_id, 16) + "0" + _ids(ids, max_id)


def _range_section(entries: list[tuple[int, int]], *, max_id: int) -> str:
    bits = _bits(max_id, 16) + "1" + _bits(len(entries), 12)
    for start, end in entries:
        if start == end:
            bits += "0" + _bits(start, 16)
        else:
            bits += "1" + _bits(start, 16) + _bits(end, 16)
    return bits


NO_RESTRICTIONS = _bits(0, 12)


def _core(*, consents: str = "", li: str = "", tail: str = NO_RESTRICTIONS, **header) -> str:
    return _to_tc_string(
        _header(**header)
        + (consents or _bitfield_section(set()))
        + (li or _bitfield_section(set()))
        + tail
    )


def _segment(segment_type: int, body: str) -> str:
    """An optional segment: SegmentType (3 bits), then its fields."""
    return _to_tc_string(_bits(segment_type, 3) + body)


def _publisher_tc_body(
    *,
    consents: set[int] = frozenset(),  # type: ignore[assignment]
    li: set[int] = frozenset(),  # type: ignore[assignment]
    custom: int = 0,
    custom_consents: set[int] = frozenset(),  # type: ignore[assignment]
    custom_li: set[int] = frozenset(),  # type: ignore[assignment]
) -> str:
    return (
        _ids(consents, 24)
        + _ids(li, 24)
        + _bits(custom, 6)
        + _ids(custom_consents, custom)
        + _ids(custom_li, custom)
    )


# --- Decoding ------------------------------------------------------------------------------


def test_it_decodes_a_string_written_by_a_real_cmp() -> None:
    tc = decode_tc_string(REAL_CMP_STRING)

    assert tc.version == 2
    assert tc.created == datetime(2022, 10, 17, 13, 44, 54, tzinfo=UTC)
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen) == (2, 1, 0)
    assert tc.consent_language == "EN"
    assert tc.vendor_list_version == 128
    assert tc.policy_version == 2
    assert tc.is_service_specific is True
    assert tc.purpose_consents == frozenset({1})
    assert tc.purpose_li == frozenset()
    assert tc.publisher_cc == "AA"
    assert tc.vendor_consents == frozenset({1000, 1001, 1002, 1003, 1004})
    assert tc.vendor_li == frozenset({1003, 1004})
    assert tc.publisher_restrictions == ()
    # ".YAAAAAAAAAAA": a publisher TC segment with nothing set.
    assert tc.publisher_tc == PublisherTC()
    assert tc.disclosed_vendors is None
    assert tc.allowed_vendors is None


def test_it_decodes_every_core_field_in_order() -> None:
    tc = decode_tc_string(_core())

    assert tc.version == 2
    assert tc.created == datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)
    assert tc.last_updated == datetime(2020, 9, 13, 12, 26, 40, 500_000, tzinfo=UTC)
    assert tc.cmp_id == 300
    assert tc.cmp_version == 7
    assert tc.consent_screen == 3
    assert tc.consent_language == "FR"
    assert tc.vendor_list_version == 150
    assert tc.policy_version == 4
    assert tc.is_service_specific is True
    assert tc.use_non_standard_texts is False
    assert tc.special_feature_opt_ins == frozenset({1, 12})
    assert tc.purpose_consents == frozenset({1, 2, 24})
    assert tc.purpose_li == frozenset({2, 7})
    assert tc.purpose_one_treatment is True
    assert tc.publisher_cc == "DE"


def test_it_reads_a_bitfield_vendor_section_with_the_first_bit_as_vendor_1() -> None:
    tc = decode_tc_string(
        _core(consents=_bitfield_section({1, 3, 5}), li=_bitfield_section({2}, max_id=9))
    )

    assert tc.vendor_consents == frozenset({1, 3, 5})
    assert tc.vendor_li == frozenset({2})


def test_it_reads_a_range_vendor_section_with_single_ids_and_ranges() -> None:
    tc = decode_tc_string(
        _core(
            consents=_range_section([(3, 3), (10, 12)], max_id=20),
            li=_range_section([(7, 8)], max_id=8),
        )
    )

    assert tc.vendor_consents == frozenset({3, 10, 11, 12})
    assert tc.vendor_li == frozenset({7, 8})


def test_an_empty_vendor_section_means_no_vendor_has_consent() -> None:
    tc = decode_tc_string(_core(consents=_bitfield_section(set())))

    assert tc.vendor_consents == frozenset()


def test_it_merges_overlapping_ranges() -> None:
    tc = decode_tc_string(_core(consents=_range_section([(5, 9), (1, 6), (8, 8)], max_id=9)))

    assert tc.vendor_consents == frozenset(range(1, 10))


def test_it_decodes_publisher_restrictions() -> None:
    restriction = _bits(1, 12) + _bits(7, 6) + _bits(0, 2) + _bits(1, 12) + "0" + _bits(793, 16)

    tc = decode_tc_string(_core(tail=restriction))

    assert tc.publisher_restrictions == (
        PublisherRestriction(
            purpose_id=7, restriction_type=RestrictionType.NOT_ALLOWED, vendor_ids=frozenset({793})
        ),
    )
    assert tc.restricts(purpose_id=7, vendor_id=793, restriction=RestrictionType.NOT_ALLOWED)
    assert not tc.restricts(purpose_id=1, vendor_id=793, restriction=RestrictionType.NOT_ALLOWED)


def test_a_globally_scoped_string_decodes_and_says_so() -> None:
    # IsServiceSpecific = 0 is for enforcement to refuse, not the decoder.
    tc = decode_tc_string(_core(service_specific=False))

    assert tc.is_service_specific is False


def test_restriction_types_lists_every_restriction_on_a_purpose_and_vendor() -> None:
    restrictions = [
        PublisherRestriction(
            purpose_id=7,
            restriction_type=RestrictionType.REQUIRE_CONSENT,
            vendor_ids=frozenset({1, 2}),
        ),
        PublisherRestriction(
            purpose_id=7, restriction_type=RestrictionType.NOT_ALLOWED, vendor_ids=frozenset({2})
        ),
        PublisherRestriction(
            purpose_id=8,
            restriction_type=RestrictionType.REQUIRE_LEGITIMATE_INTEREST,
            vendor_ids=frozenset({1}),
        ),
    ]
    tc = decode_tc_string(encode_tc_string(publisher_restrictions=restrictions, created=_CREATED))

    assert tc.restriction_types(purpose_id=7, vendor_id=1) == {RestrictionType.REQUIRE_CONSENT}
    assert tc.restriction_types(purpose_id=7, vendor_id=2) == {
        RestrictionType.REQUIRE_CONSENT,
        RestrictionType.NOT_ALLOWED,
    }
    assert tc.restriction_types(purpose_id=8, vendor_id=2) == frozenset()
    assert tc.restriction_types(purpose_id=9, vendor_id=1) == frozenset()


# --- Optional segments ---------------------------------------------------------------------


def test_a_string_without_optional_segments_has_none_of_them() -> None:
    tc = decode_tc_string(_core())

    assert (tc.disclosed_vendors, tc.allowed_vendors, tc.publisher_tc) == (None, None, None)


@pytest.mark.parametrize(
    "section",
    [_bitfield_section({1, 3, 1200}), _range_section([(1, 1), (3, 3), (1200, 1200)], max_id=1200)],
    ids=["bitfield", "range"],
)
def test_it_decodes_the_disclosed_vendors_segment(section: str) -> None:
    tc = decode_tc_string(_core() + "." + _segment(1, section))

    assert tc.disclosed_vendors == frozenset({1, 3, 1200})
    assert tc.allowed_vendors is None


def test_an_empty_disclosed_vendors_segment_is_not_an_absent_one() -> None:
    tc = decode_tc_string(_core() + "." + _segment(1, _bitfield_section(set())))

    assert tc.disclosed_vendors == frozenset()


@pytest.mark.parametrize(
    "section",
    [_bitfield_section({2, 5}), _range_section([(2, 2), (5, 5)], max_id=5)],
    ids=["bitfield", "range"],
)
def test_it_decodes_the_legacy_allowed_vendors_segment(section: str) -> None:
    tc = decode_tc_string(_core() + "." + _segment(2, section))

    assert tc.allowed_vendors == frozenset({2, 5})
    assert tc.disclosed_vendors is None


def test_it_decodes_the_publisher_tc_segment_with_custom_purposes() -> None:
    body = _publisher_tc_body(
        consents={1, 24}, li={2}, custom=5, custom_consents={1, 5}, custom_li={3}
    )

    tc = decode_tc_string(_core() + "." + _segment(3, body))

    assert tc.publisher_tc == PublisherTC(
        purpose_consents=frozenset({1, 24}),
        purpose_li=frozenset({2}),
        num_custom_purposes=5,
        custom_purpose_consents=frozenset({1, 5}),
        custom_purpose_li=frozenset({3}),
    )


def test_optional_segments_may_come_in_any_order() -> None:
    disclosed = _segment(1, _bitfield_section({4}))
    allowed = _segment(2, _bitfield_section({6}))
    publisher = _segment(3, _publisher_tc_body(consents={7}))

    forwards = decode_tc_string(".".join([_core(), disclosed, allowed, publisher]))
    backwards = decode_tc_string(".".join([_core(), publisher, allowed, disclosed]))

    assert forwards == backwards
    assert forwards.disclosed_vendors == frozenset({4})
    assert forwards.allowed_vendors == frozenset({6})
    assert forwards.publisher_tc == PublisherTC(purpose_consents=frozenset({7}))


@pytest.mark.parametrize("segment_type", [0, 4, 5, 6, 7])
def test_an_unknown_segment_type_is_malformed(segment_type: int) -> None:
    segment = _segment(segment_type, _bitfield_section({1}))

    with pytest.raises(MalformedConsent, match=f"unknown type {segment_type}"):
        decode_tc_string(_core() + "." + segment)


@pytest.mark.parametrize(
    "segment",
    [
        _segment(1, _bitfield_section({1})),
        _segment(2, _bitfield_section({1})),
        _segment(3, _publisher_tc_body()),
    ],
    ids=["disclosed", "allowed", "publisher-tc"],
)
def test_a_repeated_segment_is_malformed(segment: str) -> None:
    with pytest.raises(MalformedConsent, match="more than one"):
        decode_tc_string(".".join([_core(), segment, segment]))


def test_a_core_segment_after_the_core_is_malformed() -> None:
    with pytest.raises(MalformedConsent, match="unknown type 0"):
        decode_tc_string(f"{_core()}.{_core()}")


def test_segment_names_follow_the_specification() -> None:
    assert [(s.name, s.value) for s in SegmentType] == [
        ("DISCLOSED_VENDORS", 1),
        ("ALLOWED_VENDORS", 2),
        ("PUBLISHER_TC", 3),
    ]


def test_it_decodes_each_distinct_string_once() -> None:
    tc_string = _core(consents=_bitfield_section({42}))

    assert decode_tc_string(tc_string) is decode_tc_string(tc_string)


def test_overlapping_ranges_are_merged_before_they_are_expanded() -> None:
    # ~1 800 entries each covering every vendor id: the most a 10 000-character
    # string can hold. Expanding each range separately would set 118 million
    # ids, all in C, so no line count would show it: the merge is what keeps it
    # to 65 535.
    assert _merged([(1, 65_535)] * 1_800) == [(1, 65_535)]
    assert _merged([(5, 9), (1, 2), (3, 4), (12, 14), (13, 20)]) == [(1, 9), (12, 20)]


def test_huge_overlapping_ranges_decode_cheaply() -> None:
    entries = [(1, 65_535)] * 1_800
    tc_string = _core(consents=_range_section(entries, max_id=65_535))
    assert len(tc_string) <= MAX_TC_STRING_LENGTH

    measured = measure_work(lambda: decode_tc_string(tc_string), max_lines=200_000)

    assert measured.result is not None
    assert len(measured.result.vendor_consents) == 65_535
    # One set of 65 535 ids (and its frozen copy), not one per entry.
    assert measured.work.peak_bytes < 20_000_000


# --- Malformed strings ---------------------------------------------------------------------


def _truncations() -> list[str]:
    valid = _core(
        consents=_range_section([(1, 2), (9, 9)], max_id=9),
        li=_bitfield_section({2, 4}),
        tail=_bits(1, 12) + _bits(2, 6) + _bits(1, 2) + _bits(1, 12) + "0" + _bits(9, 16),
    )
    decode_tc_string(valid)  # the untruncated string is fine
    # Cutting a whole byte or more always loses a field; fewer characters may
    # only drop the padding.
    return [valid[:length] for length in range(0, len(valid) - 2)]


@pytest.mark.parametrize("truncated", _truncations())
def test_a_truncated_string_is_malformed(truncated: str) -> None:
    with pytest.raises(MalformedConsent):
        decode_tc_string(truncated)


def _segment_truncations() -> list[str]:
    """Each optional segment of a valid string cut short of its last field, at every length."""
    core = _core()
    bodies = {
        1: _range_section([(1, 3), (1200, 1200)], max_id=1200),
        2: _bitfield_section({2, 9}),
        3: _publisher_tc_body(consents={1}, li={2}, custom=4, custom_consents={4}, custom_li={1}),
    }
    cases = []
    for segment_type, body in bodies.items():
        segment = _segment(segment_type, body)
        decode_tc_string(f"{core}.{segment}")  # the whole segment is fine
        needed = 3 + len(body)
        # k characters carry 6k bits: fewer than the fields need is truncated.
        cases += [f"{core}.{segment[:k]}" for k in range(1, len(segment)) if 6 * k < needed]
    return cases


@pytest.mark.parametrize("truncated", _segment_truncations())
def test_a_truncated_optional_segment_is_malformed(truncated: str) -> None:
    with pytest.raises(MalformedConsent, match="truncated"):
        decode_tc_string(truncated)


def test_a_string_naming_too_many_vendor_ids_is_refused_before_expanding_them() -> None:
    # Each restriction of purpose 1 to vendors 1-65 535 costs 53 bits: about
    # 1 100 of them fit in 10 000 characters, which would expand to 74 million ids.
    full_range = _bits(1, 6) + _bits(0, 2) + _bits(1, 12) + "1" + _bits(1, 16) + _bits(65_535, 16)
    count = MAX_DECODED_IDS // 65_535 + 1
    tc_string = _core(tail=_bits(count, 12) + full_range * count)

    measured = measure_work(lambda: decode_tc_string(tc_string), max_lines=20_000)

    assert isinstance(measured.raised, MalformedConsent)
    assert "more than" in str(measured.raised)
    # Refused once the budget of ids is spent: at most MAX_DECODED_IDS (2**18)
    # of them were ever held, never the 74 million the string names.
    assert measured.work.peak_bytes < 64_000_000


def test_four_sections_of_every_vendor_id_still_decode() -> None:
    everyone = _range_section([(1, 65_535)], max_id=65_535)
    tc_string = ".".join(
        [_core(consents=everyone, li=everyone), _segment(1, everyone), _segment(2, everyone)]
    )

    tc = decode_tc_string(tc_string)

    assert len(tc.vendor_li) == len(tc.disclosed_vendors or ()) == 65_535


@pytest.mark.parametrize(
    "tc_string",
    [
        REAL_CMP_STRING.replace("A", "+", 1),
        REAL_CMP_STRING.replace("A", "/", 1),
        REAL_CMP_STRING + "=",
        " " + REAL_CMP_STRING,
        REAL_CMP_STRING.replace("A", "é", 1),
        REAL_CMP_STRING.replace("A", "\x00", 1),
    ],
    ids=["plus", "slash", "padding", "space", "non-ascii", "nul"],
)
def test_a_character_outside_base64url_is_malformed(tc_string: str) -> None:
    with pytest.raises(MalformedConsent, match="base64url"):
        decode_tc_string(tc_string)


@pytest.mark.parametrize("version", [0, 1, 3, 63])
def test_a_version_other_than_2_is_malformed(version: int) -> None:
    with pytest.raises(MalformedConsent, match="version"):
        decode_tc_string(_core(version=version))


def test_a_tcf_v1_consent_string_is_malformed() -> None:
    with pytest.raises(MalformedConsent, match="version 1"):
        decode_tc_string("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA")


def test_a_string_longer_than_the_limit_is_malformed_even_if_valid() -> None:
    padded = _core() + "." + "A" * MAX_TC_STRING_LENGTH

    with pytest.raises(MalformedConsent, match="longer than"):
        decode_tc_string(padded)


@pytest.mark.parametrize("tc_string", ["", ".", "CPhBZtcPhBZtc..Y", REAL_CMP_STRING + "."])
def test_an_empty_segment_is_malformed(tc_string: str) -> None:
    with pytest.raises(MalformedConsent):
        decode_tc_string(tc_string)


def test_a_range_that_ends_before_it_starts_is_malformed() -> None:
    with pytest.raises(MalformedConsent, match="ends before it starts"):
        decode_tc_string(_core(consents=_range_section([(9, 4)], max_id=9)))


@pytest.mark.parametrize("entry", [(0, 0), (0, 5)], ids=["single", "range"])
def test_vendor_id_0_is_malformed(entry: tuple[int, int]) -> None:
    with pytest.raises(MalformedConsent, match="vendor id 0"):
        decode_tc_string(_core(li=_range_section([entry], max_id=5)))


def test_a_vendor_above_max_vendor_id_is_malformed() -> None:
    with pytest.raises(MalformedConsent, match="MaxVendorId"):
        decode_tc_string(_core(consents=_range_section([(3, 12)], max_id=10)))


def test_a_language_letter_beyond_z_is_malformed() -> None:
    bits = _header().replace(_letters("FR"), _bits(26, 6) + _letters("R"), 1)

    with pytest.raises(MalformedConsent, match="ConsentLanguage"):
        decode_tc_string(_to_tc_string(bits + _bitfield_section(set()) * 2 + NO_RESTRICTIONS))


def test_a_reserved_restriction_type_is_malformed() -> None:
    restriction = _bits(1, 12) + _bits(7, 6) + _bits(3, 2) + _bits(0, 12)

    with pytest.raises(MalformedConsent, match="reserved"):
        decode_tc_string(_core(tail=restriction))


@pytest.mark.parametrize("value", [None, 42, b"CPhBZtcPhBZtc", ["CP"]])
def test_a_value_that_is_not_a_string_is_malformed(value: object) -> None:
    with pytest.raises(MalformedConsent):
        decode_tc_string(value)  # type: ignore[arg-type]


def test_each_failure_raises_a_fresh_exception() -> None:
    # The problem is cached, not the exception: one reused instance would grow
    # its traceback on every raise.
    errors = []
    for _ in range(2):
        with pytest.raises(MalformedConsent) as caught:
            decode_tc_string("CPhBZ")
        errors.append(caught.value)

    assert errors[0] is not errors[1]
    assert str(errors[0]) == str(errors[1])


def test_malformed_consent_is_a_value_error() -> None:
    assert issubclass(MalformedConsent, ValueError)


def _fuzz_inputs(rng: random.Random) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    valid = encode_tc_string(purpose_consents={1}, vendor_consents={1, 5, 793}, created=_CREATED)
    inputs = []
    for _ in range(600):
        length = rng.randrange(0, 300)
        # Random base64url; starting with "C" (version 2) reaches the deeper fields.
        inputs.append("".join(rng.choice(alphabet) for _ in range(length)))
        inputs.append("C" + "".join(rng.choice(alphabet) for _ in range(length)))
        inputs.append(bytes(rng.randrange(256) for _ in range(length)).decode("latin-1"))
        inputs.append("".join(chr(rng.randrange(0x110000)) for _ in range(length % 40)))
        mutated = list(valid)
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.choice(alphabet + ".=+/")
        inputs.append("".join(mutated)[: rng.randrange(1, len(valid) + 1)])
    return inputs


_CREATED = datetime(2026, 3, 1, tzinfo=UTC)


def test_random_input_only_ever_raises_malformed_consent() -> None:
    rng = random.Random(20_261_124)
    decoded = 0
    for value in _fuzz_inputs(rng):
        try:
            result = decode_tc_string(value)
        except MalformedConsent:
            continue
        assert isinstance(result, TCString)
        assert result.version == 2
        decoded += 1
    # Some mutations keep the string valid: the loop exercises both outcomes.
    assert decoded > 0


# --- Encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", list(VendorEncoding))
def test_encode_then_decode_gives_back_every_field(encoding: VendorEncoding) -> None:
    restriction = PublisherRestriction(
        purpose_id=3,
        restriction_type=RestrictionType.REQUIRE_CONSENT,
        vendor_ids=frozenset({2, 3, 4, 600}),
    )
    tc_string = encode_tc_string(
        purpose_consents={1, 7, 24},
        purpose_li={2, 10},
        vendor_consents={1, 2, 3, 793, 1000, 1001, 4_000},
        vendor_li={5, 6, 7},
        special_feature_opt_ins={2},
        vendor_encoding=encoding,
        publisher_restrictions=[restriction],
        created=datetime(2025, 5, 6, 7, 8, 9, 100_000, tzinfo=UTC),
        last_updated=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        cmp_id=4095,
        cmp_version=12,
        consent_screen=63,
        consent_language="DE",
        vendor_list_version=321,
        policy_version=5,
        is_service_specific=False,
        use_non_standard_texts=True,
        purpose_one_treatment=True,
        publisher_cc="FR",
    )

    assert decode_tc_string(tc_string) == TCString(
        version=2,
        created=datetime(2025, 5, 6, 7, 8, 9, 100_000, tzinfo=UTC),
        last_updated=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        cmp_id=4095,
        cmp_version=12,
        consent_screen=63,
        consent_language="DE",
        vendor_list_version=321,
        policy_version=5,
        is_service_specific=False,
        use_non_standard_texts=True,
        special_feature_opt_ins=frozenset({2}),
        purpose_consents=frozenset({1, 7, 24}),
        purpose_li=frozenset({2, 10}),
        purpose_one_treatment=True,
        publisher_cc="FR",
        vendor_consents=frozenset({1, 2, 3, 793, 1000, 1001, 4_000}),
        vendor_li=frozenset({5, 6, 7}),
        publisher_restrictions=(restriction,),
    )


@pytest.mark.parametrize("encoding", list(VendorEncoding))
def test_encode_then_decode_gives_back_every_segment(encoding: VendorEncoding) -> None:
    publisher_tc = PublisherTC(
        purpose_consents=frozenset({1, 2, 24}),
        purpose_li=frozenset({7}),
        num_custom_purposes=63,
        custom_purpose_consents=frozenset({1, 63}),
        custom_purpose_li=frozenset({2}),
    )

    tc = decode_tc_string(
        encode_tc_string(
            vendor_consents={5},
            vendor_encoding=encoding,
            policy_version=5,
            disclosed_vendors={1, 2, 3, 1200},
            allowed_vendors=set(),
            publisher_tc=publisher_tc,
            created=_CREATED,
        )
    )

    assert tc.policy_version == 5
    assert tc.vendor_consents == frozenset({5})
    assert tc.disclosed_vendors == frozenset({1, 2, 3, 1200})
    assert tc.allowed_vendors == frozenset()
    assert tc.publisher_tc == publisher_tc


def test_the_encoder_writes_only_the_segments_asked_for() -> None:
    assert "." not in encode_tc_string(created=_CREATED)
    assert encode_tc_string(disclosed_vendors=(), created=_CREATED).count(".") == 1
    assert encode_tc_string(publisher_tc=PublisherTC(), created=_CREATED).count(".") == 1


def test_the_encoder_writes_segments_as_an_independent_builder_does() -> None:
    encoded = encode_tc_string(
        disclosed_vendors={1, 3, 5},
        allowed_vendors={2},
        publisher_tc=PublisherTC(
            purpose_consents=frozenset({1}),
            num_custom_purposes=3,
            custom_purpose_li=frozenset({3}),
        ),
        created=_CREATED,
    )

    assert encoded.split(".")[1:] == [
        _segment(1, _bitfield_section({1, 3, 5})),
        _segment(2, _bitfield_section({2})),
        _segment(3, _publisher_tc_body(consents={1}, custom=3, custom_li={3})),
    ]


def test_range_encoding_applies_to_the_vendor_segments_too() -> None:
    encoded = encode_tc_string(
        disclosed_vendors={1, 2, 3, 1200}, vendor_encoding=VendorEncoding.RANGE, created=_CREATED
    )

    assert encoded.split(".")[1] == _segment(1, _range_section([(1, 3), (1200, 1200)], max_id=1200))


@pytest.mark.parametrize(
    "publisher_tc",
    [
        PublisherTC(num_custom_purposes=64),
        PublisherTC(num_custom_purposes=2, custom_purpose_consents=frozenset({3})),
        PublisherTC(custom_purpose_li=frozenset({1})),
        PublisherTC(purpose_consents=frozenset({25})),
    ],
    ids=["64-custom", "custom-consent-above-count", "custom-li-without-count", "purpose-25"],
)
def test_the_encoder_rejects_a_publisher_tc_it_cannot_encode(publisher_tc: PublisherTC) -> None:
    with pytest.raises(ValueError):
        encode_tc_string(publisher_tc=publisher_tc)


def test_the_encoder_refuses_more_vendor_ids_than_the_decoder_expands() -> None:
    everyone = range(1, 65_536)

    with pytest.raises(ValueError, match="more than"):
        encode_tc_string(
            vendor_consents=everyone,
            vendor_li=everyone,
            disclosed_vendors=everyone,
            allowed_vendors=everyone,
            publisher_restrictions=[
                PublisherRestriction(
                    purpose_id=1,
                    restriction_type=RestrictionType.NOT_ALLOWED,
                    vendor_ids=frozenset(range(1, 11)),
                )
            ],
            vendor_encoding=VendorEncoding.RANGE,
        )


def test_range_encoding_is_compact_for_runs_of_vendors() -> None:
    vendors = set(range(1, 3_001))

    as_bitfield = encode_tc_string(vendor_consents=vendors, created=_CREATED)
    as_ranges = encode_tc_string(
        vendor_consents=vendors, vendor_encoding=VendorEncoding.RANGE, created=_CREATED
    )

    assert len(as_ranges) < 100 < 500 < len(as_bitfield)
    assert (
        decode_tc_string(as_ranges).vendor_consents == decode_tc_string(as_bitfield).vendor_consents
    )


def test_the_encoder_writes_what_an_independent_builder_writes() -> None:
    encoded = encode_tc_string(
        purpose_consents={1, 2, 24},
        purpose_li={2, 7},
        special_feature_opt_ins={1, 12},
        vendor_consents={1, 3, 5},
        created=datetime.fromtimestamp(1_600_000_000, tz=UTC),
        last_updated=datetime.fromtimestamp(1_600_000_000.5, tz=UTC),
        cmp_id=300,
        cmp_version=7,
        consent_screen=3,
        consent_language="FR",
        vendor_list_version=150,
        policy_version=4,
        is_service_specific=True,
        purpose_one_treatment=True,
        publisher_cc="DE",
    )

    assert encoded == _core(consents=_bitfield_section({1, 3, 5}))


def test_the_encoder_defaults_to_tcf_v2_2_and_now() -> None:
    before = datetime.now(tz=UTC).replace(microsecond=0)

    tc = decode_tc_string(encode_tc_string())

    assert tc.policy_version == 4
    assert tc.created >= before
    assert tc.last_updated == tc.created
    assert tc.vendor_consents == frozenset()


def test_the_encoder_refuses_a_string_the_decoder_would_reject() -> None:
    with pytest.raises(ValueError, match="longer than"):
        encode_tc_string(vendor_consents={65_535}, vendor_encoding=VendorEncoding.BITFIELD)


def test_range_encoding_fits_the_highest_vendor_id() -> None:
    tc_string = encode_tc_string(vendor_consents={65_535}, vendor_encoding=VendorEncoding.RANGE)

    assert decode_tc_string(tc_string).vendor_consents == frozenset({65_535})


@pytest.mark.parametrize(
    "arguments",
    [
        {"purpose_consents": {0}},
        {"purpose_consents": {25}},
        {"vendor_consents": {0}},
        {"vendor_consents": {65_536}},
        {"vendor_li": {True}},
        {"special_feature_opt_ins": {13}},
        {"consent_language": "en"},
        {"publisher_cc": "DEU"},
        {"cmp_id": 4096},
        {"created": datetime(2026, 1, 1)},  # naive
        {"vendor_encoding": "zip"},
        {"disclosed_vendors": {0}},
        {"allowed_vendors": {65_536}},
    ],
)
def test_the_encoder_rejects_arguments_it_cannot_encode(arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_tc_string(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("tenths", range(10))
def test_times_keep_their_tenths_of_a_second(tenths: int) -> None:
    created = datetime(2025, 5, 6, 7, 8, 9, tenths * 100_000, tzinfo=UTC)

    assert decode_tc_string(encode_tc_string(created=created)).created == created
