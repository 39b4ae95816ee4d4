"""Normalisation of US GPP sections onto the US national (usnat version 2) field set.

One evaluator (``denials.gpp_us_denials``) then handles every US section. The mapping follows
the normalisation Prebid documents for its US compliance modules ("Prebid US Compliance",
the basis of Prebid Server's "US Gen" privacy module), re-derived here from the IAB section
specifications:

- A field the state's section does not have is None, not 0. 0 is a statement ("not
  applicable": the business does not do this), None says the state's string is silent.
  The evaluator needs the difference: "consent given while its notice was not applicable"
  is suspicious only when the notice field exists.
- Sensitive data categories are moved, by index, onto the national category that covers
  the same data; a state category covering several national ones is copied to each.
- Known-child consents are mapped conservatively: a state that does not separate the
  national age bands (13 to 16, under 13) never yields a positive consent.

National sensitive data categories (usnat version 2, 1-based): 1 racial or ethnic origin,
2 religious or philosophical beliefs, 3 health, 4 sex life or sexual orientation,
5 citizenship or immigration status, 6 genetic data, 7 biometric data, 8 precise
geolocation, 9 SSN / driver's licence / state id / passport number, 10 account log-in or
card number with its credentials, 11 union membership, 12 contents of mail, email and
texts, 13 consumer health data, 14 status as a victim of crime, 15 national origin,
16 status as transgender or nonbinary. National known-child consents: 1 ages 13 to 16,
2 under 13, 3 ages 16 to 17.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway.privacy.gpp.errors import UnsupportedGppSection
from gateway.privacy.gpp.sections import FieldValue, UsSection

NATIONAL_SENSITIVE_CATEGORIES = 16
NATIONAL_CHILD_CONSENTS = 3

Values = tuple[int | None, ...]


@dataclass(frozen=True)
class UsNationalView:
    """A US section's signals in national terms. None: the section has no such field.

    ``sensitive_data_processing`` has the 16 national categories and
    ``known_child_sensitive_data_consents`` the 3 national age bands, index 0 first.
    """

    section_id: int
    section_name: str
    section_version: int
    sharing_notice: int | None
    sale_opt_out_notice: int | None
    sharing_opt_out_notice: int | None
    targeted_advertising_opt_out_notice: int | None
    sensitive_data_processing_opt_out_notice: int | None
    sensitive_data_limit_use_notice: int | None
    sale_opt_out: int | None
    sharing_opt_out: int | None
    targeted_advertising_opt_out: int | None
    sensitive_data_processing: Values
    known_child_sensitive_data_consents: Values
    personal_data_consents: int | None
    mspa_covered_transaction: int | None
    mspa_opt_out_option_mode: int | None
    mspa_service_provider_mode: int | None
    gpc: bool | None


# Each scalar field of the view, and the name it has in the usnat section.
_NATIONAL_SCALARS: Mapping[str, str] = MappingProxyType(
    {
        "sharing_notice": "SharingNotice",
        "sale_opt_out_notice": "SaleOptOutNotice",
        "sharing_opt_out_notice": "SharingOptOutNotice",
        "targeted_advertising_opt_out_notice": "TargetedAdvertisingOptOutNotice",
        "sensitive_data_processing_opt_out_notice": "SensitiveDataProcessingOptOutNotice",
        "sensitive_data_limit_use_notice": "SensitiveDataLimitUseNotice",
        "sale_opt_out": "SaleOptOut",
        "sharing_opt_out": "SharingOptOut",
        "targeted_advertising_opt_out": "TargetedAdvertisingOptOut",
        "personal_data_consents": "PersonalDataConsents",
        "mspa_covered_transaction": "MspaCoveredTransaction",
        "mspa_opt_out_option_mode": "MspaOptOutOptionMode",
        "mspa_service_provider_mode": "MspaServiceProviderMode",
    }
)


@dataclass(frozen=True)
class _Normaliser:
    """How one section maps onto the view.

    ``scalars``: view field -> the section's field name (absent view fields are None).
    ``sensitive``: the section's category (1-based) -> the national categories it fills.
    ``children``: the section's KnownChildSensitiveDataConsents -> the 3 national values.
    """

    scalars: Mapping[str, str]
    sensitive: Mapping[int, tuple[int, ...]]
    children: Callable[[FieldValue], Values]


def us_national_view(section: UsSection) -> UsNationalView:
    """Map a decoded US section onto the national field set.

    Raises ``UnsupportedGppSection`` (a MalformedConsent) for a section without a mapping
    (a section id this module does not know), so a caller fails closed rather than reading
    it wrongly.
    """
    normaliser = _normaliser(section)
    # Each field's value is the type its view declares (the section's decoder makes sure).
    scalars: dict[str, Any] = {
        view_field: section.fields.get(source) for view_field, source in normaliser.scalars.items()
    }
    return UsNationalView(
        section_id=section.section_id,
        section_name=section.name,
        section_version=section.version,
        **{view_field: scalars.get(view_field) for view_field in _NATIONAL_SCALARS},
        sensitive_data_processing=_sensitive(section, normaliser.sensitive),
        known_child_sensitive_data_consents=normaliser.children(
            section.fields["KnownChildSensitiveDataConsents"]
        ),
        gpc=section.gpc,
    )


def _normaliser(section: UsSection) -> _Normaliser:
    if section.section_id == _USNAT:
        # usnat is the national field set itself; version 1 lacks categories 13-16 and the
        # 16-17 age band, which stay None.
        count = len(_as_tuple(section.fields["SensitiveDataProcessing"]))
        return _Normaliser(
            scalars=_identity(*_NATIONAL_SCALARS),
            sensitive={index: (index,) for index in range(1, count + 1)},
            children=_children_as_they_are,
        )
    normaliser = _STATE_NORMALISERS.get(section.section_id)
    if normaliser is None:
        raise UnsupportedGppSection(
            f"GPP {section.name} section has no mapping onto the US national fields"
        )
    return normaliser


def _sensitive(section: UsSection, moves: Mapping[int, tuple[int, ...]]) -> Values:
    national: list[int | None] = [None] * NATIONAL_SENSITIVE_CATEGORIES
    categories = _as_tuple(section.fields["SensitiveDataProcessing"])
    for index, value in enumerate(categories, start=1):
        for target in moves[index]:
            national[target - 1] = _strictest(national[target - 1], value)
    return tuple(national)


# 1 (opted out / no consent) outranks 2 (did not opt out / consent), which outranks 0 (not
# applicable): when two of a state's categories land on one national category, the
# stricter value survives.
_STRICTNESS = {0: 0, 2: 1, 1: 2}


def _strictest(current: int | None, value: int) -> int:
    if current is None or _STRICTNESS[value] >= _STRICTNESS[current]:
        return value
    return current


def _as_tuple(value: FieldValue) -> tuple[int, ...]:
    """A list field as a tuple; a state's single value as a tuple of one."""
    return value if isinstance(value, tuple) else (value,)


def _identity(*view_fields: str) -> Mapping[str, str]:
    return MappingProxyType(
        {view_field: _NATIONAL_SCALARS[view_field] for view_field in view_fields}
    )


def _children_as_they_are(consents: FieldValue) -> Values:
    values = _as_tuple(consents)
    return (*values, *(None,) * (NATIONAL_CHILD_CONSENTS - len(values)))


def _children_without_age_bands(consents: FieldValue) -> Values:
    """States that do not split the national bands 13-16 and under 13 (CA, VA, CO, UT).

    Any known child (value 1 or 2) becomes "no consent" in both bands: we cannot tell which
    band the child is in, and consent from a child under 13 is never accepted. All zeros
    means "not a known child". These states say nothing about ages 16-17 (None).
    """
    if all(value == 0 for value in _as_tuple(consents)):
        return (0, 0, None)
    return (1, 1, None)


def _children_connecticut(consents: FieldValue) -> Values:
    """usct: (1) sensitive data of a known child under 13, (2) sale and (3) targeted
    advertising of the personal data of consumers aged 13 to 16.

    Only when both 13-16 consents are given does the 13-16 band count as consented; the
    under-13 band is "no consent" whenever any child signal is present (as Prebid does: a
    child's presence is never read as consent for the younger band).
    """
    values = _as_tuple(consents)
    if all(value == 0 for value in values):
        return (0, 0, None)
    if values[1:] == (2, 2):
        return (2, 1, None)
    return (1, 1, None)


def _children_by_age(consents: FieldValue) -> Values:
    """usfl: (1) a known child under 13, (2) ages 13 to 16, (3) ages 16 to 18: the national
    bands themselves, in another order (national: 13 to 16, under 13, 16 to 17)."""
    under_13, from_13_to_16, from_16_to_18 = _as_tuple(consents)
    return (from_13_to_16, under_13, from_16_to_18)


def _children_with_sale_and_advertising(consents: FieldValue) -> Values:
    """usde and usnj: Connecticut's three (known child; sale and targeted advertising of
    ages 13 to 16), then sale and targeted advertising of ages 16 to 18 (usde) or 16 to 17
    (usnj). As there, a band counts as consented only with both its consents, and the
    under-13 band is "no consent" whenever any child signal is present."""
    values = _as_tuple(consents)
    if all(value == 0 for value in values):
        return (0, 0, 0)
    from_13_to_16 = 2 if values[1:3] == (2, 2) else 1
    from_16 = 2 if values[3:5] == (2, 2) else 1
    return (from_13_to_16, 1, from_16)


def _same_categories(count: int) -> Mapping[int, tuple[int, ...]]:
    return MappingProxyType({index: (index,) for index in range(1, count + 1)})


_USNAT = 7

# Virginia, Colorado and Connecticut: a notice of processing / sharing with third parties,
# the sale and targeted-advertising opt-out notices and opt-outs. They have no "sharing"
# opt-out (that is California's term for cross-context behavioural advertising), no
# sensitive-data notices (sensitive data needs opt-in consent, so their 2 means "consent")
# and no PersonalDataConsents: those stay None.
_VA_CO_CT_SCALARS = _identity(
    "sharing_notice",
    "sale_opt_out_notice",
    "targeted_advertising_opt_out_notice",
    "sale_opt_out",
    "targeted_advertising_opt_out",
    "mspa_covered_transaction",
    "mspa_opt_out_option_mode",
    "mspa_service_provider_mode",
)

# The states of 2024 and later (sections 13 to 23) follow Virginia's pattern: a notice of
# processing (ProcessingNotice; Montana calls it SharingNotice), the sale and
# targeted-advertising notices and opt-outs, sensitive data by opt-in consent (Iowa's are
# opt-outs with their own notice), and AdditionalDataProcessingConsent: consent to
# processing beyond the disclosed purposes, usnat's PersonalDataConsents (as Prebid maps it).
_LATER_STATE_FIELDS = MappingProxyType(
    {**_VA_CO_CT_SCALARS, "personal_data_consents": "AdditionalDataProcessingConsent"}
)


def _later_state(
    *,
    sensitive: Mapping[int, tuple[int, ...]],
    children: Callable[[FieldValue], Values],
    notice: str = "ProcessingNotice",
) -> _Normaliser:
    return _Normaliser(
        scalars=MappingProxyType({**_LATER_STATE_FIELDS, "sharing_notice": notice}),
        sensitive=sensitive,
        children=children,
    )


_STATE_NORMALISERS: Mapping[int, _Normaliser] = MappingProxyType(
    {
        # California (usca). It has no SharingNotice nor targeted-advertising fields: CPRA's
        # "sharing" is its word for cross-context behavioural advertising, signalled by
        # SharingOptOutNotice / SharingOptOut, which map to their national namesakes and
        # which the evaluator checks. Its sensitive data choices are opt-outs of "limit use"
        # (so SensitiveDataLimitUseNotice is the notice they hang on); there is no
        # SensitiveDataProcessingOptOutNotice.
        8: _Normaliser(
            scalars=_identity(
                "sale_opt_out_notice",
                "sharing_opt_out_notice",
                "sensitive_data_limit_use_notice",
                "sale_opt_out",
                "sharing_opt_out",
                "personal_data_consents",
                "mspa_covered_transaction",
                "mspa_opt_out_option_mode",
                "mspa_service_provider_mode",
            ),
            # CA categories: 1 SSN / licence / passport -> 9; 2 account log-in and card
            # credentials -> 10; 3 precise geolocation -> 8; 4 racial or ethnic origin,
            # religious or philosophical beliefs or union membership -> 1, 2 and 11 (one CA
            # category covers three national ones); 5 mail, email and text contents -> 12;
            # 6 genetic -> 6; 7 biometric -> 7; 8 health -> 3; 9 sex life or sexual
            # orientation -> 4. National 5 (citizenship) and 13-16 have no CA counterpart.
            sensitive=MappingProxyType(
                {
                    1: (9,),
                    2: (10,),
                    3: (8,),
                    4: (1, 2, 11),
                    5: (12,),
                    6: (6,),
                    7: (7,),
                    8: (3,),
                    9: (4,),
                }
            ),
            # CA's two child consents are about selling or sharing the data of consumers
            # under 16 and under 13, with no sensitive-data distinction: no band is trusted.
            children=_children_without_age_bands,
        ),
        # Virginia (usva): categories 1-8 are national 1-8 in the same order (origin,
        # religion, health, sexual orientation, citizenship, genetic, biometric, precise
        # geolocation). Its single child consent covers a known child (under 13).
        9: _Normaliser(
            scalars=_VA_CO_CT_SCALARS,
            sensitive=_same_categories(8),
            children=_children_without_age_bands,
        ),
        # Colorado (usco): categories 1-7 are national 1-7; Colorado's law has no precise
        # geolocation category.
        10: _Normaliser(
            scalars=_VA_CO_CT_SCALARS,
            sensitive=_same_categories(7),
            children=_children_without_age_bands,
        ),
        # Utah (usut): Utah follows its statute's order, 1 origin, 2 religion, 3 sexual
        # orientation, 4 citizenship, 5 health, then 6 genetic, 7 biometric, 8 geolocation.
        # Utah makes sensitive data an opt-out with a notice, so its section has
        # SensitiveDataProcessingOptOutNotice, and 2 means "did not opt out".
        11: _Normaliser(
            scalars=MappingProxyType(
                {**_VA_CO_CT_SCALARS, **_identity("sensitive_data_processing_opt_out_notice")}
            ),
            sensitive=MappingProxyType(
                {1: (1,), 2: (2,), 3: (4,), 4: (5,), 5: (3,), 6: (6,), 7: (7,), 8: (8,)}
            ),
            children=_children_without_age_bands,
        ),
        # Connecticut (usct): categories 1-8 are national 1-8; its three child consents
        # separate under 13 from 13-16, see _children_connecticut.
        12: _Normaliser(
            scalars=_VA_CO_CT_SCALARS,
            sensitive=_same_categories(8),
            children=_children_connecticut,
        ),
        # Categories 1-8 of Florida, Montana, Texas, Iowa, Nebraska, New Hampshire,
        # Tennessee and Minnesota are national 1-8 in the same order (origin, religion,
        # health, sex life or sexual orientation, citizenship, genetic, biometric, precise
        # geolocation). Florida (13) splits its child consents by age band; Montana (14) and
        # New Hampshire (20) have Connecticut's three; Texas (16), Iowa (18), Nebraska
        # (19), Tennessee (22) and Minnesota (23) a single one without an age.
        13: _later_state(sensitive=_same_categories(8), children=_children_by_age),
        14: _later_state(
            sensitive=_same_categories(8), children=_children_connecticut, notice="SharingNotice"
        ),
        # Oregon (15): 1 origin, 2 religion, 3 health, 4 sexual orientation, 5 transgender or
        # nonbinary -> 16, 6 citizenship -> 5, 7 national origin -> 15, 8 victim of a crime
        # -> 14, 9 genetic -> 6, 10 biometric -> 7, 11 precise geolocation -> 8.
        15: _later_state(
            sensitive=MappingProxyType(
                {
                    1: (1,),
                    2: (2,),
                    3: (3,),
                    4: (4,),
                    5: (16,),
                    6: (5,),
                    7: (15,),
                    8: (14,),
                    9: (6,),
                    10: (7,),
                    11: (8,),
                }
            ),
            children=_children_connecticut,
        ),
        16: _later_state(sensitive=_same_categories(8), children=_children_without_age_bands),
        # Delaware (17): national 1-8, then 9 transgender or nonbinary -> 16 (the order of
        # the published specification; its public-comment draft had that category fifth).
        17: _later_state(
            sensitive=MappingProxyType({**_same_categories(8), 9: (16,)}),
            children=_children_with_sale_and_advertising,
        ),
        # Iowa (18): sensitive data is an opt-out (1 opted out, 2 did not opt out, as in
        # Utah) with its own notice, and there is no AdditionalDataProcessingConsent.
        18: _Normaliser(
            scalars=MappingProxyType(
                {
                    **_LATER_STATE_FIELDS,
                    "sharing_notice": "ProcessingNotice",
                    "sensitive_data_processing_opt_out_notice": "SensitiveDataOptOutNotice",
                }
            ),
            sensitive=_same_categories(8),
            children=_children_without_age_bands,
        ),
        19: _later_state(sensitive=_same_categories(8), children=_children_without_age_bands),
        20: _later_state(sensitive=_same_categories(8), children=_children_connecticut),
        # New Jersey (21): national 1-8, 9 transgender or nonbinary -> 16, 10 financial
        # account information with its security code or password -> 10.
        21: _later_state(
            sensitive=MappingProxyType({**_same_categories(8), 9: (16,), 10: (10,)}),
            children=_children_with_sale_and_advertising,
        ),
        22: _later_state(sensitive=_same_categories(8), children=_children_without_age_bands),
        23: _later_state(sensitive=_same_categories(8), children=_children_without_age_bands),
    }
)
