"""Our GPP decoder against strings encoded, and decoded, by the IAB's own library.

tests/privacy/vectors/gpp_vectors.json is written by tools/vectors-gpp/gpp.mjs with
@iabgpp/cmpapi (version in the file). Where we and the library disagree, the library wins.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.privacy.gpp import (
    OpaqueSection,
    TcfEuV2Section,
    UspV1Section,
    UsSection,
    decode_gpp_string,
)

VECTORS_FILE = Path(__file__).parent / "vectors" / "gpp_vectors.json"
DOCUMENT = json.loads(VECTORS_FILE.read_text())
VECTORS = DOCUMENT["vectors"]

# Fields of the library's objects that are not core-segment fields of ours.
GPC_FIELDS = {"GpcSegmentType", "GpcSegmentIncluded", "Gpc"}
# Sections the library decodes that we deliberately keep opaque.
OPAQUE = {"tcfcav1", "usmd", "usin", "usky", "usri"}


def _ids(flags: list[bool]) -> frozenset[int]:
    return frozenset(index for index, flag in enumerate(flags, start=1) if flag)


def _by_description(vector: dict[str, Any]) -> str:
    return vector["description"]


def test_the_vectors_come_from_the_pinned_library() -> None:
    assert DOCUMENT["library"] == "@iabgpp/cmpapi 3.2.0"
    assert len(VECTORS) >= 50


def test_the_vectors_cover_every_required_section_and_both_usnat_versions() -> None:
    names = {name for vector in VECTORS for name in vector["sections"]}
    usnat_versions = {
        vector["sections"]["usnat"]["Version"]
        for vector in VECTORS
        if "usnat" in vector["sections"]
    }

    assert {"tcfeuv2", "uspv1", "usnat", "usca", "usva", "usco", "usut", "usct"} <= names
    assert usnat_versions == {1, 2}


@pytest.mark.parametrize("vector", VECTORS, ids=_by_description)
def test_the_header_and_raw_strings_match_the_library(vector: dict[str, Any]) -> None:
    gpp = decode_gpp_string(vector["gpp"])

    assert gpp.raw == vector["gpp"]
    assert gpp.section_ids == tuple(vector["section_ids"])
    assert gpp.raw_sections == tuple(vector["raw_sections"])
    assert list(gpp.sections) == list(vector["sections"])
    assert [section.raw for section in gpp.sections.values()] == vector["raw_sections"]


@pytest.mark.parametrize("vector", VECTORS, ids=_by_description)
def test_every_field_matches_the_library(vector: dict[str, Any]) -> None:
    gpp = decode_gpp_string(vector["gpp"])

    for name, expected in vector["sections"].items():
        section = gpp.sections[name]
        if name in OPAQUE:
            assert isinstance(section, OpaqueSection)
        elif isinstance(section, UsSection):
            _assert_us_section(section, expected)
        elif isinstance(section, UspV1Section):
            _assert_uspv1(section, expected)
        else:
            assert isinstance(section, TcfEuV2Section)
            _assert_tcfeuv2(section, expected)


def _assert_us_section(section: UsSection, expected: dict[str, Any]) -> None:
    core = {k: v for k, v in expected.items() if k not in GPC_FIELDS | {"Version"}}
    ours = {k: list(v) if isinstance(v, tuple) else v for k, v in section.fields.items()}

    assert section.version == expected["Version"]
    assert ours == core
    if "Gpc" in expected and expected["GpcSegmentIncluded"]:
        assert section.gpc is expected["Gpc"]
    else:
        assert section.gpc is None


def _assert_uspv1(section: UspV1Section, expected: dict[str, Any]) -> None:
    us_privacy = section.us_privacy
    assert us_privacy.version == expected["Version"]
    assert (us_privacy.notice, us_privacy.opt_out_sale, us_privacy.lspa) == (
        expected["Notice"],
        expected["OptOutSale"],
        expected["LspaCovered"],
    )


def _assert_tcfeuv2(section: TcfEuV2Section, expected: dict[str, Any]) -> None:
    tc = section.tc_string
    assert tc.version == expected["Version"]
    assert tc.created == datetime.fromisoformat(expected["Created"])
    assert tc.last_updated == datetime.fromisoformat(expected["LastUpdated"])
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen) == (
        expected["CmpId"],
        expected["CmpVersion"],
        expected["ConsentScreen"],
    )
    assert tc.consent_language == expected["ConsentLanguage"]
    assert tc.vendor_list_version == expected["VendorListVersion"]
    assert tc.policy_version == expected["PolicyVersion"]
    assert tc.is_service_specific is expected["IsServiceSpecific"]
    assert tc.use_non_standard_texts is expected["UseNonStandardStacks"]
    assert tc.special_feature_opt_ins == _ids(expected["SpecialFeatureOptins"])
    assert tc.purpose_consents == _ids(expected["PurposeConsents"])
    assert tc.purpose_li == _ids(expected["PurposeLegitimateInterests"])
    assert tc.purpose_one_treatment is expected["PurposeOneTreatment"]
    assert tc.publisher_cc == expected["PublisherCountryCode"]
    assert tc.vendor_consents == frozenset(expected["VendorConsents"])
    assert tc.vendor_li == frozenset(expected["VendorLegitimateInterests"])
    assert tc.publisher_restrictions == ()
