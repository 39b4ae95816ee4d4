"""Our TC string decoder and encoder against the IAB Tech Lab's reference library.

``vectors/tcf_vectors.json`` holds strings the library (@iabtechlabtcf/core)
encoded and what the same library decoded from them; ``tools/vectors/tcf.mjs``
generates it from ``vectors/gvl.json`` (see there to add a case). CI needs no Node.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.privacy.tcf import (
    PublisherTC,
    SegmentType,
    TCString,
    VendorEncoding,
    decode_tc_string,
    encode_tc_string,
)

VECTORS_DIR = Path(__file__).parent / "vectors"
VECTOR_FILE = json.loads((VECTORS_DIR / "tcf_vectors.json").read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = VECTOR_FILE["vectors"]

# The library's segment names, as the vectors record them.
CORE = "core"
SEGMENT_TYPES = {
    "vendorsDisclosed": SegmentType.DISCLOSED_VENDORS,
    "vendorsAllowed": SegmentType.ALLOWED_VENDORS,
    "publisherTC": SegmentType.PUBLISHER_TC,
}
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _by_name() -> list[Any]:
    return [pytest.param(vector, id=vector["name"]) for vector in VECTORS]


def _expected(vector: dict[str, Any]) -> dict[str, Any]:
    """What the library decoded, in our field names and types.

    An optional segment the string does not carry is None for us; the library
    has no such notion and reports empty values, so presence comes from the
    segment list the vector records.
    """
    lib = vector["decoded"]
    present = set(vector["segments"])
    publisher_tc = None
    if "publisherTC" in present:
        publisher_tc = PublisherTC(
            purpose_consents=frozenset(lib["publisherConsents"]),
            purpose_li=frozenset(lib["publisherLegitimateInterests"]),
            num_custom_purposes=lib["numCustomPurposes"],
            custom_purpose_consents=frozenset(lib["publisherCustomConsents"]),
            custom_purpose_li=frozenset(lib["publisherCustomLegitimateInterests"]),
        )
    return {
        "version": lib["version"],
        "created": datetime.fromisoformat(lib["created"]),
        "last_updated": datetime.fromisoformat(lib["lastUpdated"]),
        "cmp_id": lib["cmpId"],
        "cmp_version": lib["cmpVersion"],
        "consent_screen": lib["consentScreen"],
        "consent_language": lib["consentLanguage"],
        "vendor_list_version": lib["vendorListVersion"],
        "policy_version": lib["policyVersion"],
        "is_service_specific": lib["isServiceSpecific"],
        "use_non_standard_texts": lib["useNonStandardTexts"],
        "special_feature_opt_ins": frozenset(lib["specialFeatureOptins"]),
        "purpose_consents": frozenset(lib["purposeConsents"]),
        "purpose_li": frozenset(lib["purposeLegitimateInterests"]),
        "purpose_one_treatment": lib["purposeOneTreatment"],
        "publisher_cc": lib["publisherCountryCode"],
        "vendor_consents": frozenset(lib["vendorConsents"]),
        "vendor_li": frozenset(lib["vendorLegitimateInterests"]),
        "publisher_restrictions": [
            (r["purposeId"], r["restrictionType"], frozenset(r["vendorIds"]))
            for r in lib["publisherRestrictions"]
        ],
        "disclosed_vendors": (
            frozenset(lib["vendorsDisclosed"]) if "vendorsDisclosed" in present else None
        ),
        "allowed_vendors": frozenset(lib["vendorsAllowed"])
        if "vendorsAllowed" in present
        else None,
        "publisher_tc": publisher_tc,
    }


def _ours(tc: TCString) -> dict[str, Any]:
    fields = {name: getattr(tc, name) for name in TCString.__dataclass_fields__}
    fields["publisher_restrictions"] = [
        (r.purpose_id, r.restriction_type.value, r.vendor_ids) for r in tc.publisher_restrictions
    ]
    return fields


def _encode_like(tc: TCString, *, encoding: VendorEncoding) -> str:
    """Our encoder, given every field of a decoded string."""
    return encode_tc_string(
        purpose_consents=tc.purpose_consents,
        purpose_li=tc.purpose_li,
        vendor_consents=tc.vendor_consents,
        vendor_li=tc.vendor_li,
        special_feature_opt_ins=tc.special_feature_opt_ins,
        vendor_encoding=encoding,
        publisher_restrictions=tc.publisher_restrictions,
        created=tc.created,
        last_updated=tc.last_updated,
        cmp_id=tc.cmp_id,
        cmp_version=tc.cmp_version,
        consent_screen=tc.consent_screen,
        consent_language=tc.consent_language,
        vendor_list_version=tc.vendor_list_version,
        policy_version=tc.policy_version,
        is_service_specific=tc.is_service_specific,
        use_non_standard_texts=tc.use_non_standard_texts,
        purpose_one_treatment=tc.purpose_one_treatment,
        publisher_cc=tc.publisher_cc,
        disclosed_vendors=tc.disclosed_vendors,
        allowed_vendors=tc.allowed_vendors,
        publisher_tc=tc.publisher_tc,
    )


def _meaningful_bits(tc_string: str) -> dict[str, str]:
    """Each segment's bits by segment, without the zero padding.

    The library pads to 24 bits, we pad to a byte: the same fields, different tails.
    """
    by_segment = {}
    for index, segment in enumerate(tc_string.split(".")):
        bits = "".join(format(_ALPHABET.index(char), "06b") for char in segment)
        name = CORE if index == 0 else SegmentType(int(bits[:3], 2)).name
        by_segment[name] = bits.rstrip("0")
    return by_segment


def _uniform_encoding(vector: dict[str, Any]) -> VendorEncoding | None:
    """The one encoding the library used for every vendor section, or None if it mixed them."""
    encodings = set(vector["encodings"].values())
    return VendorEncoding(encodings.pop()) if len(encodings) == 1 else None


# --- The vector file itself ----------------------------------------------------------------


def test_the_vectors_come_from_the_pinned_library_and_this_gvl() -> None:
    package = json.loads((VECTORS_DIR.parents[2] / "tools/vectors/package.json").read_text())
    gvl_bytes = (VECTORS_DIR / VECTOR_FILE["gvl"]).read_bytes()

    assert VECTOR_FILE["library"] == "@iabtechlabtcf/core"
    assert package["dependencies"][VECTOR_FILE["library"]] == VECTOR_FILE["libraryVersion"]
    assert hashlib.sha256(gvl_bytes).hexdigest() == VECTOR_FILE["gvlSha256"]


def test_there_are_enough_distinct_vectors() -> None:
    assert len(VECTORS) >= 40
    assert (
        len({v["name"] for v in VECTORS}) == len({v["tcString"] for v in VECTORS}) == len(VECTORS)
    )


def test_most_vectors_are_also_compared_bit_for_bit() -> None:
    # The comparison below only runs where the library used one encoding for
    # every vendor section; make sure that stays most of them.
    assert sum(_uniform_encoding(v) is not None for v in VECTORS) >= 25


# --- Decoder -------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", _by_name())
def test_we_decode_every_field_as_the_library_does(vector: dict[str, Any]) -> None:
    assert _ours(decode_tc_string(vector["tcString"])) == _expected(vector)


# --- Encoder -------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", list(VendorEncoding))
@pytest.mark.parametrize("vector", _by_name())
def test_our_encoding_of_a_vector_decodes_identically(
    vector: dict[str, Any], encoding: VendorEncoding
) -> None:
    decoded = decode_tc_string(vector["tcString"])

    again = decode_tc_string(_encode_like(decoded, encoding=encoding))

    assert again == decoded
    assert _ours(again) == _expected(vector)


@pytest.mark.parametrize(
    "vector", [p for p in _by_name() if _uniform_encoding(p.values[0]) is not None]
)
def test_our_encoder_writes_the_libraries_bits(vector: dict[str, Any]) -> None:
    # Only where the library used one encoding for every vendor section: ours
    # takes one for all. Padding aside, the bits must be the same.
    encoding = _uniform_encoding(vector)
    assert encoding is not None

    ours = _encode_like(decode_tc_string(vector["tcString"]), encoding=encoding)

    assert _meaningful_bits(ours) == _meaningful_bits(vector["tcString"])
