from __future__ import annotations

import dataclasses

import pytest

from gateway.privacy.gpp import UsNationalView, decode_gpp_string, gpp_us_denials, us_national_view
from gateway.privacy.gpp import reasons as r

# Every notice given, nothing opted out, no sensitive data, no known child: allowed.
CLEAR = UsNationalView(
    section_id=7,
    section_name="usnat",
    section_version=2,
    sharing_notice=1,
    sale_opt_out_notice=1,
    sharing_opt_out_notice=1,
    targeted_advertising_opt_out_notice=1,
    sensitive_data_processing_opt_out_notice=1,
    sensitive_data_limit_use_notice=1,
    sale_opt_out=2,
    sharing_opt_out=2,
    targeted_advertising_opt_out=2,
    sensitive_data_processing=(0,) * 16,
    known_child_sensitive_data_consents=(0, 0, 0),
    personal_data_consents=0,
    mspa_covered_transaction=1,
    mspa_opt_out_option_mode=1,
    mspa_service_provider_mode=2,
    gpc=False,
)

# A Virginia-shaped view: the fields Virginia lacks are None.
VIRGINIA = dataclasses.replace(
    CLEAR,
    section_id=9,
    section_name="usva",
    section_version=1,
    sharing_opt_out_notice=None,
    sharing_opt_out=None,
    sensitive_data_processing_opt_out_notice=None,
    sensitive_data_limit_use_notice=None,
    sensitive_data_processing=(0,) * 8 + (None,) * 8,
    known_child_sensitive_data_consents=(0, 0, None),
    personal_data_consents=None,
    gpc=None,
)


def _with_category(view: UsNationalView, category: int, value: int) -> UsNationalView:
    categories = list(view.sensitive_data_processing)
    categories[category - 1] = value
    return dataclasses.replace(view, sensitive_data_processing=tuple(categories))


def test_a_clear_view_allows_everything() -> None:
    assert gpp_us_denials(CLEAR, gpc_flag=None) == []
    assert gpp_us_denials(CLEAR, gpc_flag=False) == []
    assert gpp_us_denials(VIRGINIA, gpc_flag=None) == []


def test_all_zero_means_not_applicable_and_allows() -> None:
    nothing_applies = dataclasses.replace(
        CLEAR,
        sharing_notice=0,
        sale_opt_out_notice=0,
        sharing_opt_out_notice=0,
        targeted_advertising_opt_out_notice=0,
        sensitive_data_processing_opt_out_notice=0,
        sensitive_data_limit_use_notice=0,
        sale_opt_out=0,
        sharing_opt_out=0,
        targeted_advertising_opt_out=0,
        mspa_opt_out_option_mode=0,
        mspa_service_provider_mode=0,
    )

    assert gpp_us_denials(nothing_applies, gpc_flag=None) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mspa_service_provider_mode": 1}, r.GPP_SERVICE_PROVIDER_MODE),
        ({"gpc": True}, r.GPP_GPC),
        ({"sale_opt_out": 1}, r.GPP_SALE_OPT_OUT),
        ({"sharing_opt_out": 1}, r.GPP_SHARING_OPT_OUT),
        ({"targeted_advertising_opt_out": 1}, r.GPP_TARGETED_ADVERTISING_OPT_OUT),
        ({"sharing_notice": 2}, r.GPP_NOTICE_NOT_GIVEN),
        ({"sale_opt_out_notice": 2}, r.GPP_NOTICE_NOT_GIVEN),
        ({"sharing_opt_out_notice": 2}, r.GPP_NOTICE_NOT_GIVEN),
        ({"targeted_advertising_opt_out_notice": 2}, r.GPP_NOTICE_NOT_GIVEN),
        ({"sensitive_data_processing_opt_out_notice": 2}, r.GPP_NOTICE_NOT_GIVEN),
        ({"sensitive_data_limit_use_notice": 2}, r.GPP_NOTICE_NOT_GIVEN),
        ({"sale_opt_out_notice": 0}, r.GPP_NOTICE_NOT_GIVEN),
        ({"sharing_opt_out_notice": 0}, r.GPP_NOTICE_NOT_GIVEN),
        ({"targeted_advertising_opt_out_notice": 0}, r.GPP_NOTICE_NOT_GIVEN),
        ({"known_child_sensitive_data_consents": (1, 0, 0)}, r.GPP_KNOWN_CHILD_WITHOUT_CONSENT),
        ({"known_child_sensitive_data_consents": (0, 2, 0)}, r.GPP_KNOWN_CHILD_WITHOUT_CONSENT),
        ({"known_child_sensitive_data_consents": (0, 0, 2)}, r.GPP_KNOWN_CHILD_WITHOUT_CONSENT),
        ({"personal_data_consents": 1}, r.GPP_PERSONAL_DATA_NO_CONSENT),
        ({"personal_data_consents": 2}, r.GPP_PERSONAL_DATA_NO_CONSENT),
    ],
)
def test_each_signal_denies_with_its_own_reason(change: dict[str, object], reason: str) -> None:
    assert gpp_us_denials(dataclasses.replace(CLEAR, **change), gpc_flag=None) == [reason]


def test_the_event_gpc_flag_denies_even_when_the_string_has_no_gpc() -> None:
    assert gpp_us_denials(CLEAR, gpc_flag=True) == [r.GPP_GPC]
    assert gpp_us_denials(VIRGINIA, gpc_flag=True) == [r.GPP_GPC]


def test_a_gpc_sub_section_set_denies_even_when_the_event_flag_is_false() -> None:
    assert gpp_us_denials(dataclasses.replace(CLEAR, gpc=True), gpc_flag=False) == [r.GPP_GPC]


@pytest.mark.parametrize("category", range(1, 17))
def test_any_sensitive_category_without_consent_denies(category: int) -> None:
    view = _with_category(CLEAR, category, 1)

    assert gpp_us_denials(view, gpc_flag=None) == [r.GPP_SENSITIVE_DATA_WITHOUT_CONSENT]


@pytest.mark.parametrize("category", [1, 2, 3, 4, 5, 8, 11, 13, 14, 15, 16])
def test_sensitive_consent_with_its_notices_given_allows(category: int) -> None:
    assert gpp_us_denials(_with_category(CLEAR, category, 2), gpc_flag=None) == []


@pytest.mark.parametrize("category", [6, 7, 9, 10, 12])
def test_data_that_never_belongs_in_ad_data_denies_even_with_consent(category: int) -> None:
    view = _with_category(CLEAR, category, 2)

    assert gpp_us_denials(view, gpc_flag=None) == [r.GPP_SENSITIVE_DATA_WITHOUT_CONSENT]


@pytest.mark.parametrize(
    "notices",
    [
        {"sensitive_data_processing_opt_out_notice": 0},
        {"sensitive_data_limit_use_notice": 0},
        {"sensitive_data_processing_opt_out_notice": 0, "sensitive_data_limit_use_notice": 0},
    ],
)
def test_sensitive_consent_where_its_notice_is_not_applicable_denies(
    notices: dict[str, int],
) -> None:
    view = dataclasses.replace(_with_category(CLEAR, 1, 2), **notices)

    assert gpp_us_denials(view, gpc_flag=None) == [r.GPP_SENSITIVE_DATA_WITHOUT_CONSENT]


def test_sensitive_notices_not_applicable_without_sensitive_data_allow() -> None:
    view = dataclasses.replace(
        CLEAR, sensitive_data_processing_opt_out_notice=0, sensitive_data_limit_use_notice=0
    )

    assert gpp_us_denials(view, gpc_flag=None) == []


def test_a_consent_state_without_sensitive_notices_can_consent() -> None:
    # Virginia records opt-in consent directly; it has no sensitive-data notice fields.
    assert gpp_us_denials(_with_category(VIRGINIA, 3, 2), gpc_flag=None) == []
    assert gpp_us_denials(_with_category(VIRGINIA, 3, 1), gpc_flag=None) == [
        r.GPP_SENSITIVE_DATA_WITHOUT_CONSENT
    ]


def test_fields_a_section_lacks_never_deny() -> None:
    view = dataclasses.replace(
        VIRGINIA, sale_opt_out_notice=None, sale_opt_out=None, sharing_notice=None
    )

    assert gpp_us_denials(view, gpc_flag=None) == []


def test_several_signals_give_every_reason_in_a_stable_order() -> None:
    view = dataclasses.replace(
        _with_category(CLEAR, 4, 1),
        mspa_service_provider_mode=1,
        gpc=True,
        sale_opt_out=1,
        sharing_opt_out=1,
        targeted_advertising_opt_out=1,
        sharing_notice=2,
        known_child_sensitive_data_consents=(1, 1, 0),
        personal_data_consents=2,
    )

    assert gpp_us_denials(view, gpc_flag=None) == [
        r.GPP_SERVICE_PROVIDER_MODE,
        r.GPP_GPC,
        r.GPP_SALE_OPT_OUT,
        r.GPP_SHARING_OPT_OUT,
        r.GPP_TARGETED_ADVERTISING_OPT_OUT,
        r.GPP_NOTICE_NOT_GIVEN,
        r.GPP_SENSITIVE_DATA_WITHOUT_CONSENT,
        r.GPP_KNOWN_CHILD_WITHOUT_CONSENT,
        r.GPP_PERSONAL_DATA_NO_CONSENT,
    ]


def test_reason_codes_are_stable_strings() -> None:
    assert r.ALL == (
        "gpp_service_provider_mode",
        "gpp_gpc",
        "gpp_sale_opt_out",
        "gpp_sharing_opt_out",
        "gpp_targeted_advertising_opt_out",
        "gpp_notice_not_given",
        "gpp_sensitive_data_without_consent",
        "gpp_known_child_without_consent",
        "gpp_personal_data_no_consent",
        "gpp_sid_mismatch",
        "gpp_section_unsupported",
    )


# --- End to end, from strings the IAB library wrote ------------------------------------------


@pytest.mark.parametrize(
    ("gpp", "expected"),
    [
        # usnat v2: notices given, nothing opted out, GPC sub-section false.
        ("DBABLA~CVVqAAAAAABY.QA", []),
        # usnat v2: every opt-out set, GPC true.
        (
            "DBABLA~CVVVAAAAAABA.YA",
            [
                r.GPP_GPC,
                r.GPP_SALE_OPT_OUT,
                r.GPP_SHARING_OPT_OUT,
                r.GPP_TARGETED_ADVERTISING_OPT_OUT,
            ],
        ),
        # usnat v2: every notice "not provided".
        ("DBABLA~CqqAAAAAAACA", [r.GPP_NOTICE_NOT_GIVEN]),
        # usnat v2 in Service Provider Mode.
        ("DBABLA~CAAAAAAAAABk.QA", [r.GPP_SERVICE_PROVIDER_MODE]),
        # usca: sale and sharing opted out, GPC true.
        ("DBABBg~BVUAAABA.YA", [r.GPP_GPC, r.GPP_SALE_OPT_OUT, r.GPP_SHARING_OPT_OUT]),
        # usva: defaults (nothing applies).
        ("DBABRg~BAAAABA", []),
        # usct: 13-16 consents given, targeted advertising opted out, GPC true.
        (
            "DBABVg~BVmGGCkA.YA",
            [
                r.GPP_GPC,
                r.GPP_TARGETED_ADVERTISING_OPT_OUT,
                r.GPP_SENSITIVE_DATA_WITHOUT_CONSENT,
                r.GPP_KNOWN_CHILD_WITHOUT_CONSENT,
            ],
        ),
        # usfl: targeted advertising opted out, sensitive data without consent, a known
        # child, additional processing refused; Florida has no GPC sub-section.
        (
            "DBABAw~BVlhhoVA",
            [
                r.GPP_TARGETED_ADVERTISING_OPT_OUT,
                r.GPP_SENSITIVE_DATA_WITHOUT_CONSENT,
                r.GPP_KNOWN_CHILD_WITHOUT_CONSENT,
                r.GPP_PERSONAL_DATA_NO_CONSENT,
            ],
        ),
        # usor, usde, usia, usmn: defaults (nothing applies).
        ("DBABIw~BAAAAAABAA", []),
        ("DBABUw~BAAAAAABAA", []),
        ("DBABCw~BAAAAAQA", []),
        ("DBABIYA~BAAAAAQA", []),
    ],
)
def test_strings_from_the_iab_library_get_the_expected_reasons(
    gpp: str, expected: list[str]
) -> None:
    (section,) = decode_gpp_string(gpp).sections.values()

    assert gpp_us_denials(us_national_view(section), gpc_flag=None) == expected  # type: ignore[arg-type]
