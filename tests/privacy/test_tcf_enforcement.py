from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.privacy.gvl import GvlVendor, parse_gvl
from gateway.privacy.reasons import Reason
from gateway.privacy.tcf import (
    PublisherRestriction,
    RestrictionType,
    TCString,
    decode_tc_string,
    encode_tc_string,
)
from gateway.privacy.tcf_enforcement import (
    special_purposes_allowed,
    tcf_purpose_allowed,
    tcf_service_specific_reason,
    tcf_special_feature_allowed,
)

from .builders import CREATED

VENDOR_ID = 793
VECTORS_DIR = Path(__file__).parent / "vectors"

NOT_ALLOWED = RestrictionType.NOT_ALLOWED
REQUIRE_CONSENT = RestrictionType.REQUIRE_CONSENT
REQUIRE_LI = RestrictionType.REQUIRE_LEGITIMATE_INTEREST


def _vendor(**declarations: Any) -> GvlVendor:
    """A GVL entry for VENDOR_ID; declarations as sets of ids."""
    fields = {key: frozenset(value) for key, value in declarations.items() if key != "deleted_date"}
    return GvlVendor(
        id=VENDOR_ID,
        name="Example Measurement",
        deleted_date=declarations.get("deleted_date"),
        **fields,
    )


# A measurement vendor: consent for 1 and 7, LI for 8, 9 and 10; 7 and 8 flexible.
MEASUREMENT = _vendor(
    purposes={1, 7}, leg_int_purposes={8, 9, 10}, flexible_purposes={7, 8}, special_purposes={1}
)


def _tc(**fields: Any) -> TCString:
    """A decoded TC string (through our encoder and decoder), nothing granted by default."""
    return decode_tc_string(encode_tc_string(created=CREATED, **fields))


def _restricted(purpose_id: int, restriction: RestrictionType, vendor_id: int = VENDOR_ID) -> Any:
    return PublisherRestriction(
        purpose_id=purpose_id, restriction_type=restriction, vendor_ids=frozenset({vendor_id})
    )


CONSENT_TO_ALL = {"purpose_consents": range(1, 12), "vendor_consents": {VENDOR_ID}}
LI_TO_ALL = {"purpose_li": range(1, 12), "vendor_li": {VENDOR_ID}}
EVERYTHING = {**CONSENT_TO_ALL, **LI_TO_ALL, "special_feature_opt_ins": {1, 2}}


def _allowed(tc: TCString, purpose_id: int, vendor: GvlVendor | None = MEASUREMENT) -> str | None:
    return tcf_purpose_allowed(tc=tc, vendor=vendor, vendor_id=VENDOR_ID, purpose_id=purpose_id)


# --- Consent -------------------------------------------------------------------------------


def test_a_consent_purpose_is_allowed_with_purpose_and_vendor_consent() -> None:
    assert _allowed(_tc(purpose_consents={7}, vendor_consents={VENDOR_ID}), 7) is None


def test_a_consent_purpose_without_purpose_consent_is_refused() -> None:
    tc = _tc(purpose_consents={1}, vendor_consents={VENDOR_ID})

    assert _allowed(tc, 7) == Reason.tcf_purpose_missing(7) == "tcf_purpose_7_missing"


def test_a_consent_purpose_without_vendor_consent_is_refused() -> None:
    tc = _tc(purpose_consents={7}, vendor_consents={VENDOR_ID + 1})

    assert _allowed(tc, 7) == Reason.TCF_VENDOR_NOT_CONSENTED


def test_the_purpose_is_checked_before_the_vendor() -> None:
    assert _allowed(_tc(), 7) == "tcf_purpose_7_missing"


def test_legitimate_interest_signals_do_not_stand_in_for_consent() -> None:
    assert _allowed(_tc(**LI_TO_ALL), 7) == "tcf_purpose_7_missing"
    assert _allowed(_tc(purpose_consents={7}, **LI_TO_ALL), 7) == Reason.TCF_VENDOR_NOT_CONSENTED


def test_a_purpose_the_vendor_does_not_declare_is_refused_whatever_the_signals() -> None:
    assert _allowed(_tc(**EVERYTHING), 2) == "tcf_purpose_2_not_declared"


# --- Legitimate interest -------------------------------------------------------------------


def test_an_li_purpose_is_allowed_with_purpose_and_vendor_li() -> None:
    assert _allowed(_tc(purpose_li={9}, vendor_li={VENDOR_ID}), 9) is None


def test_an_li_purpose_without_purpose_li_transparency_is_refused() -> None:
    tc = _tc(purpose_li={8}, vendor_li={VENDOR_ID})

    assert _allowed(tc, 9) == Reason.tcf_purpose_li_missing(9) == "tcf_purpose_9_li_missing"


def test_an_li_purpose_without_vendor_li_is_refused() -> None:
    tc = _tc(purpose_li={9}, vendor_li={VENDOR_ID + 1})

    assert _allowed(tc, 9) == Reason.TCF_VENDOR_LI_MISSING == "tcf_vendor_li_missing"


def test_consent_signals_do_not_stand_in_for_legitimate_interest() -> None:
    # The vendor's basis for 9 is LI: consent to 9 does not give it a basis.
    assert _allowed(_tc(**CONSENT_TO_ALL), 9) == "tcf_purpose_9_li_missing"


@pytest.mark.parametrize("purpose_id", [1, 3, 4, 5, 6])
def test_legitimate_interest_is_never_a_basis_for_purposes_1_and_3_to_6(purpose_id: int) -> None:
    # An old GVL entry could still declare these under LI; every signal is set.
    vendor = _vendor(leg_int_purposes={purpose_id})

    reason = _allowed(_tc(**EVERYTHING), purpose_id, vendor)

    assert reason == Reason.tcf_purpose_li_not_permitted(purpose_id)
    assert reason == f"tcf_purpose_{purpose_id}_li_not_permitted"


@pytest.mark.parametrize("purpose_id", [2, 7, 8, 9, 10, 11])
def test_legitimate_interest_is_a_basis_for_the_other_purposes(purpose_id: int) -> None:
    vendor = _vendor(leg_int_purposes={purpose_id})

    assert _allowed(_tc(**LI_TO_ALL), purpose_id, vendor) is None


# --- Publisher restrictions ----------------------------------------------------------------


@pytest.mark.parametrize("purpose_id", [1, 7, 8, 9])
def test_restriction_0_forbids_the_purpose_whatever_the_signals(purpose_id: int) -> None:
    tc = _tc(**EVERYTHING, publisher_restrictions=[_restricted(purpose_id, NOT_ALLOWED)])

    assert _allowed(tc, purpose_id) == Reason.TCF_PUBLISHER_RESTRICTION


def test_a_restriction_of_another_purpose_or_vendor_does_not_matter() -> None:
    restrictions = [_restricted(9, NOT_ALLOWED), _restricted(7, NOT_ALLOWED, VENDOR_ID + 1)]

    assert _allowed(_tc(**EVERYTHING, publisher_restrictions=restrictions), 7) is None


def test_restriction_1_switches_a_flexible_li_purpose_to_consent() -> None:
    restriction = [_restricted(8, REQUIRE_CONSENT)]

    # LI signals no longer count; consent signals now do.
    assert _allowed(_tc(**LI_TO_ALL, publisher_restrictions=restriction), 8) == (
        "tcf_purpose_8_missing"
    )
    assert _allowed(_tc(**CONSENT_TO_ALL, publisher_restrictions=restriction), 8) is None
    tc = _tc(purpose_consents={8}, **LI_TO_ALL, publisher_restrictions=restriction)
    assert _allowed(tc, 8) == Reason.TCF_VENDOR_NOT_CONSENTED


def test_restriction_1_forbids_a_non_flexible_li_purpose() -> None:
    tc = _tc(**EVERYTHING, publisher_restrictions=[_restricted(9, REQUIRE_CONSENT)])

    assert _allowed(tc, 9) == Reason.TCF_PUBLISHER_RESTRICTION


@pytest.mark.parametrize("purpose_id", [1, 7], ids=["not-flexible", "flexible"])
def test_restriction_1_leaves_a_consent_purpose_on_consent(purpose_id: int) -> None:
    restriction = [_restricted(purpose_id, REQUIRE_CONSENT)]

    assert _allowed(_tc(**CONSENT_TO_ALL, publisher_restrictions=restriction), purpose_id) is None
    assert _allowed(_tc(**LI_TO_ALL, publisher_restrictions=restriction), purpose_id) == (
        f"tcf_purpose_{purpose_id}_missing"
    )


def test_restriction_2_switches_a_flexible_consent_purpose_to_li() -> None:
    restriction = [_restricted(7, REQUIRE_LI)]

    assert _allowed(_tc(**LI_TO_ALL, publisher_restrictions=restriction), 7) is None
    assert _allowed(_tc(**CONSENT_TO_ALL, publisher_restrictions=restriction), 7) == (
        "tcf_purpose_7_li_missing"
    )
    tc = _tc(purpose_li={7}, **CONSENT_TO_ALL, publisher_restrictions=restriction)
    assert _allowed(tc, 7) == Reason.TCF_VENDOR_LI_MISSING


def test_restriction_2_forbids_a_non_flexible_consent_purpose() -> None:
    tc = _tc(**EVERYTHING, publisher_restrictions=[_restricted(1, REQUIRE_LI)])

    assert _allowed(tc, 1) == Reason.TCF_PUBLISHER_RESTRICTION


@pytest.mark.parametrize("purpose_id", [8, 9], ids=["flexible", "not-flexible"])
def test_restriction_2_leaves_an_li_purpose_on_li(purpose_id: int) -> None:
    restriction = [_restricted(purpose_id, REQUIRE_LI)]

    assert _allowed(_tc(**LI_TO_ALL, publisher_restrictions=restriction), purpose_id) is None


def test_restriction_2_cannot_move_purpose_1_or_3_to_6_to_li() -> None:
    vendor = _vendor(purposes={1, 4}, flexible_purposes={1, 4})

    for purpose_id in (1, 4):
        tc = _tc(**EVERYTHING, publisher_restrictions=[_restricted(purpose_id, REQUIRE_LI)])
        assert _allowed(tc, purpose_id, vendor) == f"tcf_purpose_{purpose_id}_li_not_permitted"


def test_a_flexible_purpose_with_no_default_basis_needs_a_restriction() -> None:
    vendor = _vendor(flexible_purposes={10})

    assert _allowed(_tc(**EVERYTHING), 10, vendor) == "tcf_purpose_10_not_declared"
    for restriction in (REQUIRE_CONSENT, REQUIRE_LI):
        tc = _tc(**EVERYTHING, publisher_restrictions=[_restricted(10, restriction)])
        assert _allowed(tc, 10, vendor) is None


@pytest.mark.parametrize("restriction", [REQUIRE_CONSENT, REQUIRE_LI])
def test_a_restriction_does_not_declare_a_purpose_for_the_vendor(
    restriction: RestrictionType,
) -> None:
    tc = _tc(**EVERYTHING, publisher_restrictions=[_restricted(2, restriction)])

    assert _allowed(tc, 2) == "tcf_purpose_2_not_declared"


def test_contradicting_restrictions_on_one_purpose_are_a_refusal() -> None:
    restrictions = [_restricted(7, REQUIRE_CONSENT), _restricted(7, REQUIRE_LI)]

    assert _allowed(_tc(**EVERYTHING, publisher_restrictions=restrictions), 7) == (
        Reason.TCF_PUBLISHER_RESTRICTION
    )


def test_a_restriction_is_checked_before_the_declaration_and_the_signals() -> None:
    tc = _tc(publisher_restrictions=[_restricted(2, NOT_ALLOWED)])

    assert _allowed(tc, 2) == Reason.TCF_PUBLISHER_RESTRICTION


# --- Scope and vendor ----------------------------------------------------------------------


def test_a_globally_scoped_string_is_refused_before_anything_else() -> None:
    tc = _tc(**EVERYTHING, is_service_specific=False, disclosed_vendors={VENDOR_ID})

    assert tcf_service_specific_reason(tc=tc) == "tcf_not_service_specific"
    assert _allowed(tc, 7, vendor=None) == Reason.TCF_NOT_SERVICE_SPECIFIC
    assert special_purposes_allowed(tc=tc, vendor=MEASUREMENT, vendor_id=VENDOR_ID) == (
        Reason.TCF_NOT_SERVICE_SPECIFIC
    )
    assert tcf_special_feature_allowed(tc=tc, vendor=MEASUREMENT, special_feature_id=1) == (
        Reason.TCF_NOT_SERVICE_SPECIFIC
    )


def test_a_service_specific_string_passes_the_scope_check() -> None:
    assert tcf_service_specific_reason(tc=_tc()) is None


def test_a_vendor_the_gvl_does_not_list_is_refused() -> None:
    assert _allowed(_tc(**EVERYTHING), 7, vendor=None) == "tcf_vendor_not_in_gvl"


def test_a_deleted_vendor_declares_nothing_any_more() -> None:
    deleted = _vendor(purposes={1, 7}, deleted_date=CREATED)

    assert _allowed(_tc(**EVERYTHING), 7, deleted) == Reason.TCF_VENDOR_DELETED
    assert Reason.TCF_VENDOR_DELETED == "tcf_vendor_deleted"


def test_the_gvl_entry_must_be_the_vendors_own() -> None:
    with pytest.raises(ValueError, match="vendor 1 passed for vendor 793"):
        _allowed(_tc(), 7, GvlVendor(id=1, name="Someone else", purposes=frozenset({7})))


@pytest.mark.parametrize("purpose_id", [0, 25, -1, True, "7", 7.0])
def test_a_purpose_id_that_cannot_exist_is_a_programming_error(purpose_id: Any) -> None:
    with pytest.raises(ValueError, match="purpose id"):
        _allowed(_tc(), purpose_id)


@pytest.mark.parametrize("vendor_id", [0, 65_536, None])
def test_a_vendor_id_that_cannot_exist_is_a_programming_error(vendor_id: Any) -> None:
    with pytest.raises(ValueError, match="vendor id"):
        tcf_purpose_allowed(tc=_tc(), vendor=None, vendor_id=vendor_id, purpose_id=7)


# --- Special purposes ----------------------------------------------------------------------


SECURITY_ONLY = _vendor(special_purposes={1, 2})


def test_a_special_purpose_only_vendor_is_allowed_once_disclosed() -> None:
    tc = _tc(disclosed_vendors={1, VENDOR_ID})

    assert (
        special_purposes_allowed(
            tc=tc, vendor=SECURITY_ONLY, vendor_id=VENDOR_ID, special_purpose_ids={1, 2}
        )
        is None
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"disclosed_vendors": {1, 2}},
        {"disclosed_vendors": set()},
        {},
        # Without a disclosed-vendors segment, even its LI bit does not show it was disclosed.
        {"vendor_li": {VENDOR_ID}, "vendor_consents": {VENDOR_ID}},
    ],
    ids=["other-vendors", "empty-segment", "no-segment", "no-segment-li-bit"],
)
def test_a_special_purpose_only_vendor_not_disclosed_is_refused(fields: dict[str, Any]) -> None:
    reason = special_purposes_allowed(
        tc=_tc(**fields), vendor=SECURITY_ONLY, vendor_id=VENDOR_ID, special_purpose_ids={1}
    )

    assert reason == Reason.TCF_VENDOR_NOT_DISCLOSED == "tcf_vendor_not_disclosed"


@pytest.mark.parametrize("bit", ["vendor_consents", "vendor_li"])
def test_a_vendor_with_purposes_is_shown_disclosed_by_its_consent_or_li_bit(bit: str) -> None:
    tc = _tc(**{bit: {VENDOR_ID}})

    assert (
        special_purposes_allowed(
            tc=tc, vendor=MEASUREMENT, vendor_id=VENDOR_ID, special_purpose_ids={1}
        )
        is None
    )


def test_a_vendor_with_purposes_but_no_bit_and_not_disclosed_is_refused() -> None:
    tc = _tc(vendor_consents={1}, disclosed_vendors={1})

    assert special_purposes_allowed(tc=tc, vendor=MEASUREMENT, vendor_id=VENDOR_ID) == (
        Reason.TCF_VENDOR_NOT_DISCLOSED
    )


def test_a_special_purpose_the_vendor_does_not_declare_is_refused() -> None:
    tc = _tc(disclosed_vendors={VENDOR_ID})

    reason = special_purposes_allowed(
        tc=tc, vendor=SECURITY_ONLY, vendor_id=VENDOR_ID, special_purpose_ids={3, 1}
    )

    assert reason == Reason.tcf_special_purpose_not_declared(3)
    assert reason == "tcf_special_purpose_3_not_declared"


@pytest.mark.parametrize(
    ("vendor", "reason"),
    [
        (None, "tcf_vendor_not_in_gvl"),
        (_vendor(special_purposes={1}, deleted_date=CREATED), "tcf_vendor_deleted"),
    ],
    ids=["unknown", "deleted"],
)
def test_special_purposes_need_a_listed_vendor(vendor: GvlVendor | None, reason: str) -> None:
    tc = _tc(disclosed_vendors={VENDOR_ID})

    assert special_purposes_allowed(tc=tc, vendor=vendor, vendor_id=VENDOR_ID) == reason


@pytest.mark.parametrize("special_purpose_id", [0, True, "1"])
def test_a_special_purpose_id_that_cannot_exist_is_a_programming_error(
    special_purpose_id: Any,
) -> None:
    for ids in ([special_purpose_id], [1, special_purpose_id]):
        with pytest.raises(ValueError, match="special purpose id"):
            special_purposes_allowed(
                tc=_tc(), vendor=SECURITY_ONLY, vendor_id=VENDOR_ID, special_purpose_ids=ids
            )


# --- Special features ----------------------------------------------------------------------


GEO = _vendor(purposes={1}, special_features={1})


def test_a_special_feature_is_allowed_with_the_users_opt_in() -> None:
    tc = _tc(special_feature_opt_ins={1})

    assert tcf_special_feature_allowed(tc=tc, vendor=GEO, special_feature_id=1) is None
    assert (
        tcf_special_feature_allowed(tc=tc, vendor=GEO, special_feature_id=1, vendor_id=793) is None
    )


def test_a_special_feature_without_opt_in_is_refused() -> None:
    tc = _tc(special_feature_opt_ins={2})

    reason = tcf_special_feature_allowed(tc=tc, vendor=GEO, special_feature_id=1)

    assert reason == Reason.tcf_special_feature_missing(1) == "tcf_special_feature_1_missing"


def test_a_special_feature_the_vendor_does_not_declare_is_refused() -> None:
    tc = _tc(special_feature_opt_ins={1, 2})

    reason = tcf_special_feature_allowed(tc=tc, vendor=GEO, special_feature_id=2)

    assert reason == "tcf_special_feature_2_not_declared"


def test_a_special_feature_needs_a_listed_vendor() -> None:
    tc = _tc(special_feature_opt_ins={1})
    deleted = _vendor(special_features={1}, deleted_date=CREATED)

    assert tcf_special_feature_allowed(tc=tc, vendor=None, special_feature_id=1) == (
        "tcf_vendor_not_in_gvl"
    )
    assert tcf_special_feature_allowed(tc=tc, vendor=deleted, special_feature_id=1) == (
        "tcf_vendor_deleted"
    )


def test_a_special_feature_check_refuses_another_vendors_entry() -> None:
    with pytest.raises(ValueError, match="passed for vendor 1"):
        tcf_special_feature_allowed(tc=_tc(), vendor=GEO, special_feature_id=1, vendor_id=1)


@pytest.mark.parametrize("special_feature_id", [0, 13])
def test_a_special_feature_id_that_cannot_exist_is_a_programming_error(
    special_feature_id: int,
) -> None:
    with pytest.raises(ValueError, match="special feature id"):
        tcf_special_feature_allowed(tc=_tc(), vendor=GEO, special_feature_id=special_feature_id)


# --- On strings written by the IAB's library, with our GVL fixture -------------------------


GVL = parse_gvl((VECTORS_DIR / "gvl.json").read_bytes())
LIBRARY_STRINGS = {
    v["name"]: v["tcString"]
    for v in json.loads((VECTORS_DIR / "tcf_vectors.json").read_text(encoding="utf-8"))["vectors"]
}


@pytest.mark.parametrize(
    ("vector", "vendor_id", "purpose_id", "reason"),
    [
        ("vendor-consents-range-high-ids", 1200, 7, None),
        ("vendor-consents-range-high-ids", 1200, 8, "tcf_purpose_8_li_missing"),
        ("restriction-not-allowed", 793, 7, "tcf_publisher_restriction"),
        ("restriction-not-allowed", 793, 1, None),
        ("restriction-require-consent", 793, 8, None),
        ("restriction-require-consent", 2, 8, None),
        ("restriction-require-li-bridges-gvl-gaps", 1200, 7, None),
        ("restriction-require-li-bridges-gvl-gaps", 793, 7, None),
        ("restrictions-of-every-type", 756, 3, "tcf_publisher_restriction"),
        ("restrictions-of-every-type", 793, 9, None),
        ("restrictions-of-every-type", 756, 2, None),
        ("li-only-vendor-consent-dropped", 10, 7, None),
        ("li-only-vendor-consent-dropped", 10, 10, "tcf_purpose_10_li_missing"),
        ("li-only-vendor-consent-kept-by-require-consent", 10, 7, None),
        ("deleted-vendors-dropped", 7, 1, "tcf_vendor_deleted"),
        ("unknown-vendors-dropped", 13, 1, "tcf_vendor_not_in_gvl"),
        ("global-scope-for-storage", 1, 1, "tcf_not_service_specific"),
        ("measurement-partner", 793, 3, "tcf_purpose_3_not_declared"),
        ("measurement-partner", 793, 10, None),
    ],
)
def test_purpose_decisions_on_library_strings(
    vector: str, vendor_id: int, purpose_id: int, reason: str | None
) -> None:
    tc = decode_tc_string(LIBRARY_STRINGS[vector])

    assert (
        tcf_purpose_allowed(
            tc=tc, vendor=GVL.vendor(vendor_id), vendor_id=vendor_id, purpose_id=purpose_id
        )
        == reason
    )


@pytest.mark.parametrize(
    ("vector", "vendor_id", "reason"),
    [
        ("special-purpose-only-vendors-disclosed", 1201, None),
        ("special-purpose-only-vendors-disclosed", 3, None),
        ("special-purpose-only-vendor-not-disclosed", 1201, "tcf_vendor_not_disclosed"),
        ("measurement-partner", 1201, None),
        ("measurement-partner", 793, None),
        ("vendor-consents-range-high-ids", 1201, "tcf_vendor_not_disclosed"),
    ],
)
def test_special_purpose_decisions_on_library_strings(
    vector: str, vendor_id: int, reason: str | None
) -> None:
    tc = decode_tc_string(LIBRARY_STRINGS[vector])

    assert (
        special_purposes_allowed(
            tc=tc, vendor=GVL.vendor(vendor_id), vendor_id=vendor_id, special_purpose_ids={1}
        )
        == reason
    )


@pytest.mark.parametrize(
    ("vector", "vendor_id", "feature_id", "reason"),
    [
        ("special-features-opted-in", 755, 2, None),
        ("special-feature-1-only", 755, 2, "tcf_special_feature_2_missing"),
        ("special-feature-1-only", 5, 1, None),
        ("special-feature-1-only", 5, 2, "tcf_special_feature_2_not_declared"),
    ],
)
def test_special_feature_decisions_on_library_strings(
    vector: str, vendor_id: int, feature_id: int, reason: str | None
) -> None:
    tc = decode_tc_string(LIBRARY_STRINGS[vector])

    assert (
        tcf_special_feature_allowed(
            tc=tc, vendor=GVL.vendor(vendor_id), special_feature_id=feature_id
        )
        == reason
    )


# --- Reason codes are stored: never rename one ---------------------------------------------


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (Reason.TCF_NOT_SERVICE_SPECIFIC, "tcf_not_service_specific"),
        (Reason.TCF_VENDOR_NOT_IN_GVL, "tcf_vendor_not_in_gvl"),
        (Reason.TCF_VENDOR_DELETED, "tcf_vendor_deleted"),
        (Reason.TCF_VENDOR_LI_MISSING, "tcf_vendor_li_missing"),
        (Reason.TCF_VENDOR_NOT_DISCLOSED, "tcf_vendor_not_disclosed"),
        (Reason.tcf_purpose_li_missing(2), "tcf_purpose_2_li_missing"),
        (Reason.tcf_purpose_li_not_permitted(4), "tcf_purpose_4_li_not_permitted"),
        (Reason.tcf_purpose_not_declared(11), "tcf_purpose_11_not_declared"),
        (Reason.tcf_special_purpose_not_declared(2), "tcf_special_purpose_2_not_declared"),
        (Reason.tcf_special_feature_missing(2), "tcf_special_feature_2_missing"),
        (Reason.tcf_special_feature_not_declared(1), "tcf_special_feature_1_not_declared"),
    ],
)
def test_the_reason_codes_keep_their_values(code: str, value: str) -> None:
    assert code == value


def test_the_tcf_modules_do_not_import_django() -> None:
    # Pure functions, like the rest of gateway.privacy.
    code = (
        "import sys, gateway.privacy.gvl, gateway.privacy.tcf_enforcement; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
