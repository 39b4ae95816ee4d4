"""GPP sections: what each decoded section holds, and the decoder of each section id.

- 2 ``tcfeuv2``: the TC string, decoded by our TCF decoder (``gateway.privacy.tcf``).
- 6 ``uspv1``: the four-character US Privacy string (``gateway.privacy.usprivacy``).
- 7 ``usnat`` (versions 1 and 2) and the state sections 8 to 23: a core segment of two-bit
  fields, optionally followed by a GPC sub-section, read from the field tables below.
- Anything else stays an ``OpaqueSection``: kept as received, never guessed at, so a caller
  that needs it can fail closed.

Field names are the IAB's (as in the GPP specification and the IAB's JavaScript library),
so a vector from that library compares field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from gateway.privacy.errors import MalformedConsent
from gateway.privacy.gpp.bits import BitReader
from gateway.privacy.tcf import TCString, decode_tc_string
from gateway.privacy.usprivacy import UsPrivacy, parse_us_privacy

FieldValue = int | tuple[int, ...]

# Names of the ids in the IAB's section registry, for sections we keep opaque too.
SECTION_NAMES: Mapping[int, str] = MappingProxyType(
    {
        1: "tcfeuv1",
        2: "tcfeuv2",
        5: "tcfcav1",
        6: "uspv1",
        7: "usnat",
        8: "usca",
        9: "usva",
        10: "usco",
        11: "usut",
        12: "usct",
        13: "usfl",
        14: "usmt",
        15: "usor",
        16: "ustx",
        17: "usde",
        18: "usia",
        19: "usne",
        20: "usnh",
        21: "usnj",
        22: "ustn",
        23: "usmn",
        24: "usmd",
        25: "usin",
        26: "usky",
        27: "usri",
    }
)


def section_name(section_id: int) -> str:
    """The registry name of a section id, or ``sid<id>`` for an id the registry lacks."""
    return SECTION_NAMES.get(section_id, f"sid{section_id}")


# --- Decoded sections ----------------------------------------------------------------------


@dataclass(frozen=True)
class TcfEuV2Section:
    """Section 2: the TC string exactly as carried, and its decoded core segment."""

    section_id: ClassVar[int] = 2
    name: ClassVar[str] = "tcfeuv2"

    raw: str
    tc_string: TCString


@dataclass(frozen=True)
class UspV1Section:
    """Section 6: the legacy US Privacy string ("1YNN") carried inside GPP."""

    section_id: ClassVar[int] = 6
    name: ClassVar[str] = "uspv1"

    raw: str
    us_privacy: UsPrivacy


@dataclass(frozen=True)
class UsSection:
    """A US section (usnat or a state): its version, its core fields and its GPC signal.

    ``fields`` maps each IAB field name to an int, or a tuple for the list fields
    (SensitiveDataProcessing, and KnownChildSensitiveDataConsents where the state lists
    several). Values are as encoded: 0 is "not applicable", 1 and 2 keep the meaning the
    section's specification gives them. ``gpc`` is None when the string has no GPC
    sub-section, which is not the same as GPC false.
    """

    section_id: int
    name: str
    raw: str
    version: int
    fields: Mapping[str, FieldValue] = field(hash=False)
    gpc: bool | None

    def __getitem__(self, field_name: str) -> FieldValue:
        return self.fields[field_name]


@dataclass(frozen=True)
class OpaqueSection:
    """A section we do not decode, kept exactly as received."""

    section_id: int
    name: str
    raw: str


GppSection = TcfEuV2Section | UspV1Section | UsSection | OpaqueSection


# --- US section layouts --------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """One core-segment field: a two-bit integer, or ``count`` of them in a row."""

    name: str
    count: int | None = None
    allowed: frozenset[int] = frozenset({0, 1, 2})

    def read(self, reader: BitReader, *, what: str) -> FieldValue:
        if self.count is None:
            return self._checked(reader.read_int(2, field=self.name), what=what)
        return tuple(
            self._checked(reader.read_int(2, field=self.name), what=what) for _ in range(self.count)
        )

    def _checked(self, value: int, *, what: str) -> int:
        # 3 is undefined for every two-bit field, and MspaCoveredTransaction has no 0:
        # a value the specification does not define is not a signal we can act on.
        if value not in self.allowed:
            raise MalformedConsent(f"{what} {self.name} has the undefined value {value}")
        return value


@dataclass(frozen=True)
class UsSectionLayout:
    """The core-segment fields of each version of a US section, and whether it has GPC."""

    section_id: int
    versions: Mapping[int, tuple[_Field, ...]]
    has_gpc: bool

    @property
    def name(self) -> str:
        return section_name(self.section_id)


def _fields(*names: str | _Field) -> tuple[_Field, ...]:
    return tuple(name if isinstance(name, _Field) else _Field(name) for name in names)


def _sensitive(count: int) -> _Field:
    return _Field("SensitiveDataProcessing", count)


def _children(count: int | None) -> _Field:
    return _Field("KnownChildSensitiveDataConsents", count)


_MSPA = (
    # "1 Yes, 2 No": the one field where 0 is not a defined value.
    _Field("MspaCoveredTransaction", allowed=frozenset({1, 2})),
    _Field("MspaOptOutOptionMode"),
    _Field("MspaServiceProviderMode"),
)

_USNAT_NOTICES_AND_OPT_OUTS = (
    "SharingNotice",
    "SaleOptOutNotice",
    "SharingOptOutNotice",
    "TargetedAdvertisingOptOutNotice",
    "SensitiveDataProcessingOptOutNotice",
    "SensitiveDataLimitUseNotice",
    "SaleOptOut",
    "SharingOptOut",
    "TargetedAdvertisingOptOut",
)

# The five-field opening shared by most states: a notice of processing (Virginia's
# generation calls it SharingNotice, later states ProcessingNotice), the sale and
# targeted-advertising opt-out notices, then the two opt-outs.
_STATE_OPENING = (
    "SaleOptOutNotice",
    "TargetedAdvertisingOptOutNotice",
    "SaleOptOut",
    "TargetedAdvertisingOptOut",
)


def _state(
    notice: str, sensitive: int, children: int | None, *, additional: bool = True
) -> tuple[_Field, ...]:
    tail = ("AdditionalDataProcessingConsent",) if additional else ()
    return _fields(notice, *_STATE_OPENING, _sensitive(sensitive), _children(children), *tail)


US_SECTION_LAYOUTS: Mapping[int, UsSectionLayout] = MappingProxyType(
    {
        layout.section_id: layout
        for layout in (
            # usnat version 2 (August 2024) grew SensitiveDataProcessing from 12 to 16
            # categories and KnownChildSensitiveDataConsents from 2 to 3; both versions
            # are in use, and the Version field says which layout follows.
            UsSectionLayout(
                7,
                {
                    1: _fields(
                        *_USNAT_NOTICES_AND_OPT_OUTS,
                        _sensitive(12),
                        _children(2),
                        "PersonalDataConsents",
                        *_MSPA,
                    ),
                    2: _fields(
                        *_USNAT_NOTICES_AND_OPT_OUTS,
                        _sensitive(16),
                        _children(3),
                        "PersonalDataConsents",
                        *_MSPA,
                    ),
                },
                has_gpc=True,
            ),
            UsSectionLayout(
                8,
                {
                    1: _fields(
                        "SaleOptOutNotice",
                        "SharingOptOutNotice",
                        "SensitiveDataLimitUseNotice",
                        "SaleOptOut",
                        "SharingOptOut",
                        _sensitive(9),
                        _children(2),
                        "PersonalDataConsents",
                        *_MSPA,
                    )
                },
                has_gpc=True,
            ),
            UsSectionLayout(
                9, {1: _state("SharingNotice", 8, None, additional=False) + _MSPA}, has_gpc=False
            ),
            UsSectionLayout(
                10, {1: _state("SharingNotice", 7, None, additional=False) + _MSPA}, has_gpc=True
            ),
            UsSectionLayout(
                11,
                {
                    1: _fields(
                        "SharingNotice",
                        "SaleOptOutNotice",
                        "TargetedAdvertisingOptOutNotice",
                        "SensitiveDataProcessingOptOutNotice",
                        "SaleOptOut",
                        "TargetedAdvertisingOptOut",
                        _sensitive(8),
                        _children(None),
                        *_MSPA,
                    )
                },
                has_gpc=False,
            ),
            UsSectionLayout(
                12, {1: _state("SharingNotice", 8, 3, additional=False) + _MSPA}, has_gpc=True
            ),
            # The states of 2024 and later, from the IAB's published specifications
            # (checked against the IAB library's vectors). Sections 24 to 27 (usmd,
            # usin, usky, usri) are not decoded: they stay opaque, and fail closed.
            UsSectionLayout(13, {1: _state("ProcessingNotice", 8, 3) + _MSPA}, has_gpc=False),
            UsSectionLayout(14, {1: _state("SharingNotice", 8, 3) + _MSPA}, has_gpc=True),
            UsSectionLayout(15, {1: _state("ProcessingNotice", 11, 3) + _MSPA}, has_gpc=True),
            UsSectionLayout(16, {1: _state("ProcessingNotice", 8, None) + _MSPA}, has_gpc=True),
            UsSectionLayout(17, {1: _state("ProcessingNotice", 9, 5) + _MSPA}, has_gpc=True),
            UsSectionLayout(
                18,
                {
                    1: _fields(
                        "ProcessingNotice",
                        "SaleOptOutNotice",
                        "TargetedAdvertisingOptOutNotice",
                        "SensitiveDataOptOutNotice",
                        "SaleOptOut",
                        "TargetedAdvertisingOptOut",
                        _sensitive(8),
                        _children(None),
                        *_MSPA,
                    )
                },
                has_gpc=True,
            ),
            UsSectionLayout(19, {1: _state("ProcessingNotice", 8, None) + _MSPA}, has_gpc=True),
            UsSectionLayout(20, {1: _state("ProcessingNotice", 8, 3) + _MSPA}, has_gpc=True),
            UsSectionLayout(21, {1: _state("ProcessingNotice", 10, 5) + _MSPA}, has_gpc=True),
            UsSectionLayout(22, {1: _state("ProcessingNotice", 8, None) + _MSPA}, has_gpc=True),
            UsSectionLayout(23, {1: _state("ProcessingNotice", 8, None) + _MSPA}, has_gpc=True),
        )
    }
)

# SubsectionType of the GPC sub-section ("0 Core, 1 GPC").
_GPC_SUBSECTION_TYPE = 1


# --- Section decoders ----------------------------------------------------------------------


def decode_section(section_id: int, raw: str) -> GppSection:
    """Decode one section string; unknown ids come back as an ``OpaqueSection``."""
    decoder = _DECODERS.get(section_id)
    if decoder is not None:
        return decoder(raw)
    layout = US_SECTION_LAYOUTS.get(section_id)
    if layout is not None:
        return decode_us_section(layout, raw)
    return OpaqueSection(section_id=section_id, name=section_name(section_id), raw=raw)


def _decode_tcfeuv2(raw: str) -> TcfEuV2Section:
    try:
        return TcfEuV2Section(raw=raw, tc_string=decode_tc_string(raw))
    except MalformedConsent as exc:
        raise MalformedConsent(f"GPP tcfeuv2 section: {exc}") from exc


def _decode_uspv1(raw: str) -> UspV1Section:
    try:
        return UspV1Section(raw=raw, us_privacy=parse_us_privacy(raw))
    except MalformedConsent as exc:
        raise MalformedConsent(f"GPP uspv1 section: {exc}") from exc


_DECODERS: Mapping[int, Callable[[str], GppSection]] = MappingProxyType(
    {TcfEuV2Section.section_id: _decode_tcfeuv2, UspV1Section.section_id: _decode_uspv1}
)


def decode_us_section(layout: UsSectionLayout, raw: str) -> UsSection:
    """A US section: the core segment, then at most one sub-section, the GPC one."""
    segments = raw.split(".")
    if len(segments) > (2 if layout.has_gpc else 1):
        raise MalformedConsent(f"GPP {layout.name} section has sub-sections it cannot have")
    what = f"GPP {layout.name} core segment"
    reader = BitReader(segments[0], what=what)
    version = reader.read_int(6, field="Version")
    fields = layout.versions.get(version)
    if fields is None:
        raise MalformedConsent(f"GPP {layout.name} section version {version} is not supported")
    values = {spec.name: spec.read(reader, what=what) for spec in fields}
    reader.finish()
    return UsSection(
        section_id=layout.section_id,
        name=layout.name,
        raw=raw,
        version=version,
        fields=MappingProxyType(values),
        gpc=_decode_gpc(segments[1], name=layout.name) if len(segments) == 2 else None,
    )


def _decode_gpc(encoded: str, *, name: str) -> bool:
    reader = BitReader(encoded, what=f"GPP {name} GPC sub-section")
    subsection_type = reader.read_int(2, field="SubsectionType")
    if subsection_type != _GPC_SUBSECTION_TYPE:
        # Only GPC sub-sections exist; another type is a layout we cannot read.
        raise MalformedConsent(f"GPP {name} sub-section type {subsection_type} is not GPC")
    gpc = reader.read_bool(field="Gpc")
    reader.finish()
    return gpc
