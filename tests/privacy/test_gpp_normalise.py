from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest

from gateway.privacy.gpp import (
    MalformedConsent,
    UnsupportedGppSection,
    UsSection,
    decode_gpp_string,
    us_national_view,
)
from gateway.privacy.gpp import reasons as gpp_reasons

NAMES = {
    **{7: "usnat", 8: "usca", 9: "usva", 10: "usco", 11: "usut", 12: "usct", 13: "usfl"},
    **{14: "usmt", 15: "usor", 16: "ustx", 17: "usde", 18: "usia", 19: "usne", 20: "usnh"},
    **{21: "usnj", 22: "ustn", 23: "usmn", 24: "usmd"},
}
MSPA = {"MspaCoveredTransaction": 1, "MspaOptOutOptionMode": 2, "MspaServiceProviderMode": 0}


def _section(
    section_id: int, *, version: int = 1, gpc: bool | None = None, **fields: object
) -> UsSection:
    return UsSection(
        section_id=section_id,
        name=NAMES[section_id],
        raw="",
        version=version,
        fields=MappingProxyType({**MSPA, **fields}),
        gpc=gpc,
    )


def _categories(count: int) -> tuple[int, ...]:
    # Distinct enough to trace where each state category lands: 1, 2, 0, 1, 2, 0, ...
    return tuple((i + 1) % 3 for i in range(count))


USNAT_V2 = {
    "SharingNotice": 1,
    "SaleOptOutNotice": 1,
    "SharingOptOutNotice": 2,
    "TargetedAdvertisingOptOutNotice": 1,
    "SensitiveDataProcessingOptOutNotice": 0,
    "SensitiveDataLimitUseNotice": 1,
    "SaleOptOut": 2,
    "SharingOptOut": 1,
    "TargetedAdvertisingOptOut": 2,
    "SensitiveDataProcessing": _categories(16),
    "KnownChildSensitiveDataConsents": (1, 2, 0),
    "PersonalDataConsents": 2,
}


# --- usnat -----------------------------------------------------------------------------------


def test_usnat_v2_passes_through_unchanged() -> None:
    view = us_national_view(_section(7, version=2, gpc=True, **USNAT_V2))

    assert (view.section_id, view.section_name, view.section_version) == (7, "usnat", 2)
    assert view.sharing_notice == 1
    assert view.sharing_opt_out_notice == 2
    assert view.sensitive_data_processing_opt_out_notice == 0
    assert view.sale_opt_out == 2
    assert view.sharing_opt_out == 1
    assert view.sensitive_data_processing == _categories(16)
    assert view.known_child_sensitive_data_consents == (1, 2, 0)
    assert view.personal_data_consents == 2
    assert (view.mspa_covered_transaction, view.mspa_opt_out_option_mode) == (1, 2)
    assert view.mspa_service_provider_mode == 0
    assert view.gpc is True


def test_usnat_v1_leaves_the_v2_only_categories_and_age_band_empty() -> None:
    fields = {
        **USNAT_V2,
        "SensitiveDataProcessing": _categories(12),
        "KnownChildSensitiveDataConsents": (2, 1),
    }

    view = us_national_view(_section(7, version=1, **fields))

    assert view.sensitive_data_processing == (*_categories(12), None, None, None, None)
    assert view.known_child_sensitive_data_consents == (2, 1, None)
    assert view.gpc is None


# --- California ------------------------------------------------------------------------------

USCA = {
    "SaleOptOutNotice": 1,
    "SharingOptOutNotice": 2,
    "SensitiveDataLimitUseNotice": 1,
    "SaleOptOut": 2,
    "SharingOptOut": 1,
    # CA 1 ids, 2 log-ins, 3 geolocation, 4 origin/religion/union, 5 messages, 6 genetic,
    # 7 biometric, 8 health, 9 sex life: values chosen so each lands recognisably.
    "SensitiveDataProcessing": (1, 2, 1, 2, 1, 2, 0, 1, 2),
    "KnownChildSensitiveDataConsents": (0, 0),
    "PersonalDataConsents": 1,
}


def test_california_sensitive_categories_move_onto_the_national_ones() -> None:
    view = us_national_view(_section(8, **USCA))

    assert view.sensitive_data_processing == (
        2,  # 1 racial or ethnic origin <- CA 4
        2,  # 2 religious beliefs <- CA 4
        1,  # 3 health <- CA 8
        2,  # 4 sex life or sexual orientation <- CA 9
        None,  # 5 citizenship: no CA category
        2,  # 6 genetic <- CA 6
        0,  # 7 biometric <- CA 7
        1,  # 8 precise geolocation <- CA 3
        1,  # 9 government ids <- CA 1
        2,  # 10 account log-ins <- CA 2
        2,  # 11 union membership <- CA 4
        1,  # 12 message contents <- CA 5
        None,
        None,
        None,
        None,
    )


def test_california_keeps_its_own_fields_and_has_none_for_the_others() -> None:
    view = us_national_view(_section(8, gpc=False, **USCA))

    assert (view.sale_opt_out_notice, view.sharing_opt_out_notice) == (1, 2)
    assert view.sensitive_data_limit_use_notice == 1
    assert (view.sale_opt_out, view.sharing_opt_out) == (2, 1)
    assert view.personal_data_consents == 1
    assert view.sharing_notice is None
    assert view.targeted_advertising_opt_out_notice is None
    assert view.targeted_advertising_opt_out is None
    assert view.sensitive_data_processing_opt_out_notice is None
    assert view.gpc is False


@pytest.mark.parametrize(
    ("state", "national"),
    [
        ((0, 0), (0, 0, None)),
        ((2, 0), (1, 1, None)),
        ((0, 1), (1, 1, None)),
        ((2, 2), (1, 1, None)),
    ],
)
def test_a_californian_child_is_never_normalised_to_consent(
    state: tuple[int, int], national: tuple[int | None, ...]
) -> None:
    view = us_national_view(_section(8, **{**USCA, "KnownChildSensitiveDataConsents": state}))

    assert view.known_child_sensitive_data_consents == national


# --- Virginia, Colorado, Utah, Connecticut ---------------------------------------------------

OPT_OUT_STATE = {
    "SharingNotice": 1,
    "SaleOptOutNotice": 2,
    "TargetedAdvertisingOptOutNotice": 1,
    "SaleOptOut": 1,
    "TargetedAdvertisingOptOut": 2,
}


@pytest.mark.parametrize(("section_id", "count"), [(9, 8), (10, 7), (12, 8)])
def test_states_in_national_order_keep_their_categories_in_place(
    section_id: int, count: int
) -> None:
    children = (0, 0, 0) if section_id == 12 else 0
    view = us_national_view(
        _section(
            section_id,
            **OPT_OUT_STATE,
            SensitiveDataProcessing=_categories(count),
            KnownChildSensitiveDataConsents=children,
        )
    )

    assert view.sensitive_data_processing == (*_categories(count), *(None,) * (16 - count))
    assert (view.sharing_notice, view.sale_opt_out_notice) == (1, 2)
    assert view.targeted_advertising_opt_out_notice == 1
    assert (view.sale_opt_out, view.targeted_advertising_opt_out) == (1, 2)
    # Fields these states do not have are None, never "not applicable".
    assert view.sharing_opt_out_notice is None
    assert view.sharing_opt_out is None
    assert view.sensitive_data_processing_opt_out_notice is None
    assert view.sensitive_data_limit_use_notice is None
    assert view.personal_data_consents is None
    assert view.known_child_sensitive_data_consents == (0, 0, None)


def test_utah_moves_sexual_orientation_citizenship_and_health_into_national_order() -> None:
    view = us_national_view(
        _section(
            11,
            **OPT_OUT_STATE,
            SensitiveDataProcessingOptOutNotice=1,
            # UT: 1 origin, 2 religion, 3 sexual orientation, 4 citizenship, 5 health,
            # 6 genetic, 7 biometric, 8 geolocation.
            SensitiveDataProcessing=(1, 2, 0, 1, 2, 0, 1, 2),
            KnownChildSensitiveDataConsents=0,
        )
    )

    assert view.sensitive_data_processing[:8] == (1, 2, 2, 0, 1, 0, 1, 2)
    assert view.sensitive_data_processing[8:] == (None,) * 8
    assert view.sensitive_data_processing_opt_out_notice == 1


@pytest.mark.parametrize("section_id", [9, 10, 11])
@pytest.mark.parametrize(
    ("state", "national"), [(0, (0, 0, None)), (1, (1, 1, None)), (2, (1, 1, None))]
)
def test_a_single_child_consent_never_becomes_consent(
    section_id: int, state: int, national: tuple[int | None, ...]
) -> None:
    count = {9: 8, 10: 7, 11: 8}[section_id]
    view = us_national_view(
        _section(
            section_id,
            **OPT_OUT_STATE,
            SensitiveDataProcessingOptOutNotice=1,
            SensitiveDataProcessing=(0,) * count,
            KnownChildSensitiveDataConsents=state,
        )
    )

    assert view.known_child_sensitive_data_consents == national


@pytest.mark.parametrize(
    ("state", "national"),
    [
        ((0, 0, 0), (0, 0, None)),
        ((0, 2, 2), (2, 1, None)),
        ((2, 2, 2), (2, 1, None)),
        ((0, 2, 1), (1, 1, None)),
        ((1, 0, 0), (1, 1, None)),
        ((0, 0, 2), (1, 1, None)),
    ],
)
def test_connecticut_lets_only_a_teenager_with_both_consents_count_as_consented(
    state: tuple[int, int, int], national: tuple[int | None, ...]
) -> None:
    view = us_national_view(
        _section(
            12,
            **OPT_OUT_STATE,
            SensitiveDataProcessing=(0,) * 8,
            KnownChildSensitiveDataConsents=state,
        )
    )

    assert view.known_child_sensitive_data_consents == national


# --- Every mapping, from real strings --------------------------------------------------------

VECTORS = json.loads((Path(__file__).parent / "vectors" / "gpp_vectors.json").read_text())


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["vectors"] if set(v["sections"]) & set(NAMES.values()) - {"usmd"}],
    ids=lambda v: v["description"],
)
def test_no_state_value_is_lost_on_the_way_to_the_national_view(vector: dict) -> None:
    for section in decode_gpp_string(vector["gpp"]).sections.values():
        if not isinstance(section, UsSection):
            continue
        view = us_national_view(section)
        state = section["SensitiveDataProcessing"]
        national = [value for value in view.sensitive_data_processing if value is not None]
        assert isinstance(state, tuple)
        # Every state value lands somewhere, and nothing appears that the state lacks.
        assert set(state) == set(national)
        assert view.gpc is section.gpc


def test_a_section_without_a_national_mapping_fails_closed() -> None:
    # usmd (24) and later are not decoded; a section object for one is refused all the same.
    section = _section(24, ProcessingNotice=1, SensitiveDataProcessing=(0,) * 8)

    with pytest.raises(UnsupportedGppSection) as raised:
        us_national_view(section)

    assert isinstance(raised.value, MalformedConsent)
    assert raised.value.reason == gpp_reasons.GPP_SECTION_UNSUPPORTED


# --- The states of 2024 and later (13 to 23) -------------------------------------------------

LATER_STATE = {
    "ProcessingNotice": 1,
    "SaleOptOutNotice": 2,
    "TargetedAdvertisingOptOutNotice": 1,
    "SaleOptOut": 1,
    "TargetedAdvertisingOptOut": 2,
    "AdditionalDataProcessingConsent": 1,
}
# Per section: its categories, where each lands nationally (1-based), and a neutral value
# of its KnownChildSensitiveDataConsents. From the IAB's published specification of each.
LATER_STATES = {
    13: (8, list(range(1, 9)), (0, 0, 0)),
    14: (8, list(range(1, 9)), (0, 0, 0)),
    # Oregon: transgender or nonbinary 16, citizenship 5, national origin 15, victim of a
    # crime 14, genetic 6, biometric 7, precise geolocation 8.
    15: (11, [1, 2, 3, 4, 16, 5, 15, 14, 6, 7, 8], (0, 0, 0)),
    16: (8, list(range(1, 9)), 0),
    17: (9, [*range(1, 9), 16], (0, 0, 0, 0, 0)),
    18: (8, list(range(1, 9)), 0),
    19: (8, list(range(1, 9)), 0),
    20: (8, list(range(1, 9)), (0, 0, 0)),
    # New Jersey: transgender or nonbinary 16, financial account credentials 10.
    21: (10, [*range(1, 9), 16, 10], (0, 0, 0, 0, 0)),
    22: (8, list(range(1, 9)), 0),
    23: (8, list(range(1, 9)), 0),
}


def _later_state(section_id: int, **fields: object) -> UsSection:
    count, _places, children = LATER_STATES[section_id]
    values: dict[str, object] = {
        **LATER_STATE,
        "SensitiveDataProcessing": _categories(count),
        "KnownChildSensitiveDataConsents": children,
    }
    if section_id == 14:  # Montana calls its notice of processing SharingNotice
        values["SharingNotice"] = values.pop("ProcessingNotice")
    if section_id == 18:  # Iowa: an opt-out notice for sensitive data, no additional consent
        values["SensitiveDataOptOutNotice"] = 1
        del values["AdditionalDataProcessingConsent"]
    return _section(section_id, **{**values, **fields})


@pytest.mark.parametrize("section_id", sorted(LATER_STATES))
def test_later_states_move_each_category_onto_the_national_one(section_id: int) -> None:
    count, places, _children = LATER_STATES[section_id]

    view = us_national_view(_later_state(section_id))

    expected: list[int | None] = [None] * 16
    for value, place in zip(_categories(count), places, strict=True):
        expected[place - 1] = value
    assert view.sensitive_data_processing == tuple(expected)


@pytest.mark.parametrize("section_id", sorted(LATER_STATES))
def test_later_states_map_their_notices_opt_outs_and_additional_consent(section_id: int) -> None:
    view = us_national_view(_later_state(section_id, gpc=True))

    assert view.sharing_notice == 1  # ProcessingNotice (Montana: SharingNotice)
    assert (view.sale_opt_out_notice, view.targeted_advertising_opt_out_notice) == (2, 1)
    assert (view.sale_opt_out, view.targeted_advertising_opt_out) == (1, 2)
    # AdditionalDataProcessingConsent is usnat's PersonalDataConsents; Iowa has none.
    assert view.personal_data_consents == (None if section_id == 18 else 1)
    assert view.sensitive_data_processing_opt_out_notice == (1 if section_id == 18 else None)
    # California's and usnat's own fields stay None.
    assert view.sharing_opt_out_notice is None
    assert view.sharing_opt_out is None
    assert view.sensitive_data_limit_use_notice is None
    assert view.gpc is True


@pytest.mark.parametrize(
    ("state", "national"),
    [
        ((0, 0, 0), (0, 0, 0)),
        # Florida: under 13, 13 to 16, 16 to 18 -> national 13 to 16, under 13, 16 to 17.
        ((2, 0, 1), (0, 2, 1)),
        ((0, 2, 0), (2, 0, 0)),
    ],
)
def test_florida_child_consents_are_the_national_age_bands(
    state: tuple[int, int, int], national: tuple[int, int, int]
) -> None:
    view = us_national_view(_later_state(13, KnownChildSensitiveDataConsents=state))

    assert view.known_child_sensitive_data_consents == national


@pytest.mark.parametrize("section_id", [14, 15, 20])
def test_montana_oregon_and_new_hampshire_read_child_consents_as_connecticut(
    section_id: int,
) -> None:
    both = us_national_view(_later_state(section_id, KnownChildSensitiveDataConsents=(0, 2, 2)))
    one = us_national_view(_later_state(section_id, KnownChildSensitiveDataConsents=(0, 2, 1)))

    assert both.known_child_sensitive_data_consents == (2, 1, None)
    assert one.known_child_sensitive_data_consents == (1, 1, None)


@pytest.mark.parametrize("section_id", [17, 21])
@pytest.mark.parametrize(
    ("state", "national"),
    [
        ((0, 0, 0, 0, 0), (0, 0, 0)),
        ((0, 2, 2, 2, 2), (2, 1, 2)),
        ((0, 0, 0, 2, 1), (1, 1, 1)),
        ((1, 0, 0, 0, 0), (1, 1, 1)),
        ((0, 2, 2, 0, 0), (2, 1, 1)),
    ],
)
def test_delaware_and_new_jersey_count_a_band_as_consented_only_with_both_consents(
    section_id: int, state: tuple[int, ...], national: tuple[int, int, int]
) -> None:
    view = us_national_view(_later_state(section_id, KnownChildSensitiveDataConsents=state))

    assert view.known_child_sensitive_data_consents == national


@pytest.mark.parametrize("section_id", [16, 18, 19, 22, 23])
@pytest.mark.parametrize(
    ("state", "national"), [(0, (0, 0, None)), (1, (1, 1, None)), (2, (1, 1, None))]
)
def test_a_single_child_consent_of_a_later_state_never_becomes_consent(
    section_id: int, state: int, national: tuple[int | None, ...]
) -> None:
    view = us_national_view(_later_state(section_id, KnownChildSensitiveDataConsents=state))

    assert view.known_child_sensitive_data_consents == national
