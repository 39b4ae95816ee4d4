from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from gateway.privacy.gpp import (
    GppSidMismatch,
    MalformedConsent,
    OpaqueSection,
    TcfEuV2Section,
    UspV1Section,
    UsSection,
    decode_gpp_string,
    effective_us_privacy,
    sections_applicable,
)
from gateway.privacy.gpp import reasons as gpp_reasons
from gateway.privacy.tcf import encode_tc_string
from gateway.privacy.usprivacy import UsPrivacy

# --- A bit-level builder, independent of the decoder under test ------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# Headers written by the IAB library for one section of each id.
HEADERS = {2: "DBABMA", 6: "DBABTA", 7: "DBABLA", 8: "DBABBg", 9: "DBABRg", 10: "DBABJg"}
HEADERS |= {11: "DBABFg", 12: "DBABVg", 13: "DBABAw", 27: "DBABAwA"}
# usnat version 2 field order, as the IAB specification lists it, with list lengths.
USNAT_V2 = [
    ("SharingNotice", 1),
    ("SaleOptOutNotice", 1),
    ("SharingOptOutNotice", 1),
    ("TargetedAdvertisingOptOutNotice", 1),
    ("SensitiveDataProcessingOptOutNotice", 1),
    ("SensitiveDataLimitUseNotice", 1),
    ("SaleOptOut", 1),
    ("SharingOptOut", 1),
    ("TargetedAdvertisingOptOut", 1),
    ("SensitiveDataProcessing", 16),
    ("KnownChildSensitiveDataConsents", 3),
    ("PersonalDataConsents", 1),
    ("MspaCoveredTransaction", 1),
    ("MspaOptOutOptionMode", 1),
    ("MspaServiceProviderMode", 1),
]
USNAT_V1 = [(name, {16: 12, 3: 2}.get(count, count)) for name, count in USNAT_V2]


def _bits(value: int, width: int) -> str:
    assert 0 <= value < 1 << width
    return format(value, f"0{width}b")


def _b64(bits: str) -> str:
    bits += "0" * (-len(bits) % 8)
    bits += "0" * (-len(bits) % 6)
    return "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def _core(version: int, values: list[int]) -> str:
    return _b64(_bits(version, 6) + "".join(_bits(value, 2) for value in values))


def _gpc(gpc: bool, *, subsection_type: int = 1) -> str:
    return _b64(_bits(subsection_type, 2) + ("1" if gpc else "0"))


def _gpp(section_id: int, section: str) -> str:
    return f"{HEADERS[section_id]}~{section}"


def _values(layout: list[tuple[str, int]], first: int = 0) -> list[int]:
    """0, 1, 2, 0, ... over every two-bit value; MspaCoveredTransaction gets 1 or 2."""
    values = [(first + i) % 3 for i in range(sum(count for _, count in layout))]
    covered = sum(count for name, count in layout[:-3])
    values[covered] = values[covered] or 1
    return values


def _expected(layout: list[tuple[str, int]], values: list[int]) -> dict[str, object]:
    fields: dict[str, object] = {}
    position = 0
    for name, count in layout:
        chunk = values[position : position + count]
        fields[name] = (
            tuple(chunk) if name.endswith(("Processing", "Consents")) and count > 1 else chunk[0]
        )
        position += count
    return fields


def _usnat(section: str) -> UsSection:
    decoded = decode_gpp_string(_gpp(7, section)).sections["usnat"]
    assert isinstance(decoded, UsSection)
    return decoded


# --- usnat -----------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [0, 1, 2])
def test_it_reads_every_usnat_v2_field_in_order(first: int) -> None:
    values = _values(USNAT_V2, first)

    section = _usnat(_core(2, values))

    assert section.version == 2
    assert dict(section.fields) == _expected(USNAT_V2, values)
    assert len(section["SensitiveDataProcessing"]) == 16  # type: ignore[arg-type]


@pytest.mark.parametrize("first", [0, 1, 2])
def test_it_reads_usnat_v1_with_12_sensitive_categories_and_2_child_consents(first: int) -> None:
    values = _values(USNAT_V1, first)

    section = _usnat(_core(1, values))

    assert section.version == 1
    assert dict(section.fields) == _expected(USNAT_V1, values)


def test_the_gpc_sub_section_is_read_and_its_absence_is_none_not_false() -> None:
    core = _core(2, _values(USNAT_V2))

    assert _usnat(core).gpc is None
    assert _usnat(f"{core}.{_gpc(False)}").gpc is False
    assert _usnat(f"{core}.{_gpc(True)}").gpc is True


@pytest.mark.parametrize("subsection_type", [0, 2, 3])
def test_a_sub_section_that_is_not_gpc_is_malformed(subsection_type: int) -> None:
    core = _core(2, _values(USNAT_V2))
    with pytest.raises(MalformedConsent, match="not GPC"):
        _usnat(f"{core}.{_gpc(True, subsection_type=subsection_type)}")


def test_more_than_one_sub_section_is_malformed() -> None:
    core = _core(2, _values(USNAT_V2))
    with pytest.raises(MalformedConsent, match="sub-sections"):
        _usnat(f"{core}.{_gpc(True)}.{_gpc(True)}")


@pytest.mark.parametrize("version", [0, 3, 63])
def test_a_usnat_version_we_do_not_know_is_malformed(version: int) -> None:
    with pytest.raises(MalformedConsent, match="version"):
        _usnat(_core(version, _values(USNAT_V2)))


def test_a_v1_layout_labelled_version_2_is_malformed_not_misread() -> None:
    # The IAB library picks the layout by length; we read the Version and check the length.
    with pytest.raises(MalformedConsent):
        _usnat(_core(2, _values(USNAT_V1)))
    with pytest.raises(MalformedConsent):
        _usnat(_core(1, _values(USNAT_V2)))


@pytest.mark.parametrize("index", [0, 5, 9, 24, 28, 29, 31])
def test_the_undefined_value_3_is_malformed_in_any_field(index: int) -> None:
    values = _values(USNAT_V2)
    values[index] = 3
    with pytest.raises(MalformedConsent, match="undefined value 3"):
        _usnat(_core(2, values))


def test_mspa_covered_transaction_has_no_not_applicable_value() -> None:
    values = _values(USNAT_V2)
    values[-3] = 0
    with pytest.raises(MalformedConsent, match="MspaCoveredTransaction"):
        _usnat(_core(2, values))


def test_a_core_segment_cut_short_is_malformed() -> None:
    core = _core(2, _values(USNAT_V2))
    for length in range(1, len(core)):
        with pytest.raises(MalformedConsent, match="truncated"):
            _usnat(core[:length])


def test_extra_characters_or_set_padding_bits_are_malformed() -> None:
    core = _core(2, _values(USNAT_V2))
    with pytest.raises(MalformedConsent, match="longer"):
        _usnat(core + "A")
    padded = _bits(2, 6) + "".join(_bits(v, 2) for v in _values(USNAT_V2)) + "01"
    with pytest.raises(MalformedConsent, match="bits set"):
        _usnat(_b64(padded))


# --- State sections --------------------------------------------------------------------------

STATE_LAYOUTS = {
    8: (
        "usca",
        [
            ("SaleOptOutNotice", 1),
            ("SharingOptOutNotice", 1),
            ("SensitiveDataLimitUseNotice", 1),
            ("SaleOptOut", 1),
            ("SharingOptOut", 1),
            ("SensitiveDataProcessing", 9),
            ("KnownChildSensitiveDataConsents", 2),
            ("PersonalDataConsents", 1),
        ],
        True,
    ),
    9: (
        "usva",
        [
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 1),
        ],
        False,
    ),
    10: (
        "usco",
        [
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 7),
            ("KnownChildSensitiveDataConsents", 1),
        ],
        True,
    ),
    11: (
        "usut",
        [
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SensitiveDataProcessingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 1),
        ],
        False,
    ),
    12: (
        "usct",
        [
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 3),
        ],
        True,
    ),
}
MSPA = [("MspaCoveredTransaction", 1), ("MspaOptOutOptionMode", 1), ("MspaServiceProviderMode", 1)]


@pytest.mark.parametrize("section_id", sorted(STATE_LAYOUTS))
@pytest.mark.parametrize("first", [0, 1, 2])
def test_it_reads_each_state_section_field_list(section_id: int, first: int) -> None:
    name, layout, has_gpc = STATE_LAYOUTS[section_id]
    values = _values(layout + MSPA, first)
    raw = _core(1, values) + (f".{_gpc(True)}" if has_gpc else "")

    section = decode_gpp_string(_gpp(section_id, raw)).sections[name]

    assert isinstance(section, UsSection)
    assert (section.section_id, section.name, section.version, section.raw) == (
        section_id,
        name,
        1,
        raw,
    )
    assert dict(section.fields) == _expected(layout + MSPA, values)
    assert section.gpc is (True if has_gpc else None)


@pytest.mark.parametrize("section_id", [9, 11])
def test_a_gpc_sub_section_where_the_state_has_none_is_malformed(section_id: int) -> None:
    _, layout, _ = STATE_LAYOUTS[section_id]
    raw = _core(1, _values(layout + MSPA)) + f".{_gpc(True)}"
    with pytest.raises(MalformedConsent, match="sub-sections"):
        decode_gpp_string(_gpp(section_id, raw))


@pytest.mark.parametrize("section_id", sorted(STATE_LAYOUTS))
def test_a_state_section_version_other_than_1_is_malformed(section_id: int) -> None:
    _, layout, _ = STATE_LAYOUTS[section_id]
    with pytest.raises(MalformedConsent, match="version 2"):
        decode_gpp_string(_gpp(section_id, _core(2, _values(layout + MSPA))))


def test_a_section_fields_mapping_is_read_only() -> None:
    section = _usnat(_core(2, _values(USNAT_V2)))
    with pytest.raises(TypeError):
        section.fields["SaleOptOut"] = 0  # type: ignore[index]


# --- tcfeuv2, uspv1 and opaque sections ------------------------------------------------------

TC_STRING = encode_tc_string(
    purpose_consents={1, 7},
    vendor_consents={755},
    created=datetime(2024, 5, 17, tzinfo=UTC),
)


def test_the_tcfeuv2_section_is_the_tc_string_decoded_by_our_tcf_decoder() -> None:
    raw = TC_STRING + ".YAAAAAAAAAAA"

    section = decode_gpp_string(_gpp(2, raw)).sections["tcfeuv2"]

    assert isinstance(section, TcfEuV2Section)
    assert section.raw == raw
    assert section.tc_string.purpose_consents == frozenset({1, 7})
    assert section.tc_string.vendor_consents == frozenset({755})


def test_a_malformed_tc_string_makes_the_gpp_string_malformed() -> None:
    with pytest.raises(MalformedConsent, match="tcfeuv2"):
        decode_gpp_string(_gpp(2, "BAAAAAAA"))


def test_the_uspv1_section_is_parsed_as_a_us_privacy_string() -> None:
    section = decode_gpp_string(_gpp(6, "1YYN")).sections["uspv1"]

    assert isinstance(section, UspV1Section)
    assert section.us_privacy == UsPrivacy(version=1, notice="Y", opt_out_sale="Y", lspa="N")


@pytest.mark.parametrize("raw", ["1YN", "1YNNN", "2YNN", "1YXN", "1YN.N"])
def test_a_malformed_uspv1_section_makes_the_gpp_string_malformed(raw: str) -> None:
    with pytest.raises(MalformedConsent, match=r"uspv1|US Privacy"):
        decode_gpp_string(_gpp(6, raw))


def test_unknown_sections_are_kept_opaque_and_unchanged() -> None:
    gpp = decode_gpp_string("DBACLKw~CAAAAAAAAABA.QA~BQAA.AAA")

    section = gpp.section(27)
    assert section == OpaqueSection(section_id=27, name="usri", raw="BQAA.AAA")
    assert gpp.section(99) is None


def test_the_string_and_its_sections_are_kept_exactly_as_received() -> None:
    value = f"DBACPeA~{TC_STRING}.YAAAAAAAAAAA~1NYN~BAAAAAAAAQA.QA"

    gpp = decode_gpp_string(value)

    assert gpp.raw == value
    assert "~".join(["DBACPeA", *gpp.raw_sections]) == value
    assert [section.raw for section in gpp.sections.values()] == list(gpp.raw_sections)


@pytest.mark.parametrize(
    "value",
    ["DBABLA~", "DBABLA~CAAAAAAAAABA.", "DBABLA~.QA", "DBABLA~CAAAAAAAAABA..QA", "DBABLA~ CAAA"],
)
def test_an_empty_or_badly_spelled_section_is_malformed(value: str) -> None:
    with pytest.raises(MalformedConsent):
        decode_gpp_string(value)


# --- Caching ---------------------------------------------------------------------------------


def test_decoding_is_cached_per_distinct_string() -> None:
    value = _gpp(7, _core(2, _values(USNAT_V2, 1)))

    assert decode_gpp_string(value) is decode_gpp_string(value)


def test_a_malformed_string_raises_every_time_it_is_seen() -> None:
    for _ in range(3):
        with pytest.raises(MalformedConsent, match="header type"):
            decode_gpp_string("CBABLA~CAAAAAAAAABA")


# --- gpp_sid ---------------------------------------------------------------------------------

THREE_SECTIONS = f"DBACPeA~{TC_STRING}~1NYN~CAAAAAAAAABA.QA"


def test_without_gpp_sid_every_section_applies() -> None:
    gpp = decode_gpp_string(THREE_SECTIONS)

    assert [s.section_id for s in sections_applicable(gpp, None)] == [2, 6, 7]


def test_gpp_sid_picks_the_sections_that_apply() -> None:
    gpp = decode_gpp_string(THREE_SECTIONS)

    assert [s.name for s in sections_applicable(gpp, [7])] == ["usnat"]
    assert [s.name for s in sections_applicable(gpp, [7, 2])] == ["tcfeuv2", "usnat"]
    assert sections_applicable(gpp, []) == ()


def test_a_gpp_sid_naming_a_section_the_string_lacks_is_a_mismatch() -> None:
    gpp = decode_gpp_string(THREE_SECTIONS)

    with pytest.raises(GppSidMismatch, match=r"\[8\]") as raised:
        sections_applicable(gpp, [7, 8])

    assert raised.value.reason == gpp_reasons.GPP_SID_MISMATCH == "gpp_sid_mismatch"
    assert isinstance(raised.value, MalformedConsent)


@pytest.mark.parametrize("gpp_sid", ["7", b"7", [7.0], [True], ["7"], [None], 7])
def test_a_gpp_sid_that_is_not_a_list_of_ids_is_malformed(gpp_sid: object) -> None:
    gpp = decode_gpp_string(THREE_SECTIONS)
    with pytest.raises(MalformedConsent):
        sections_applicable(gpp, gpp_sid)  # type: ignore[arg-type]


# --- US Privacy precedence -------------------------------------------------------------------


def test_the_uspv1_section_overrides_the_legacy_us_privacy_field() -> None:
    gpp = decode_gpp_string(_gpp(6, "1YYN"))

    assert effective_us_privacy(gpp=gpp, us_privacy="1YNN") == UsPrivacy(1, "Y", "Y", "N")
    # The legacy field is not even read when GPP carries US Privacy.
    assert effective_us_privacy(gpp=gpp, us_privacy="garbage").opted_out_of_sale  # type: ignore[union-attr]


def test_the_legacy_field_counts_when_gpp_has_no_uspv1_section() -> None:
    gpp = decode_gpp_string(_gpp(7, _core(2, _values(USNAT_V2))))

    assert effective_us_privacy(gpp=gpp, us_privacy="1YYN") == UsPrivacy(1, "Y", "Y", "N")
    assert effective_us_privacy(gpp=None, us_privacy="1YNN") == UsPrivacy(1, "Y", "N", "N")


def test_no_signal_at_all_is_none() -> None:
    assert effective_us_privacy(gpp=None, us_privacy=None) is None
    assert (
        effective_us_privacy(gpp=decode_gpp_string("DBABLA~CAAAAAAAAABA"), us_privacy=None) is None
    )


def test_a_malformed_legacy_field_without_gpp_uspv1_is_malformed() -> None:
    with pytest.raises(MalformedConsent):
        effective_us_privacy(gpp=None, us_privacy="1YN")


# --- Package ---------------------------------------------------------------------------------


def test_the_gpp_package_does_not_import_django() -> None:
    code = (
        "import sys, gateway.privacy.gpp; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_a_decoded_string_cannot_be_changed() -> None:
    gpp = decode_gpp_string(THREE_SECTIONS)

    with pytest.raises(dataclasses.FrozenInstanceError):
        gpp.raw = "DBABLA~CAAAAAAAAABA"  # type: ignore[misc]
    with pytest.raises(TypeError):
        gpp.sections["usnat"] = gpp.sections["uspv1"]  # type: ignore[index]
