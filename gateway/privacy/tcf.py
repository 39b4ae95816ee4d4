"""IAB TCF v2 (policy versions 4 and 5: TCF v2.2 and v2.3) TC strings: our own decoder and encoder.

A TC string is base64url (no padding) over a sequence of big-endian bit fields,
in segments separated by ".". The core segment comes first; the optional
segments follow in any order, each opening with a 3-bit SegmentType:

- 1, disclosed vendors: the vendors the CMP showed the user;
- 2, allowed vendors: the legacy out-of-band allowlist of a globally scoped string;
- 3, publisher TC: the publisher's own purposes and its custom purposes.

An unknown or repeated segment type makes the whole string malformed. The
decoder only reads: whether the signals allow anything (IsServiceSpecific,
legal bases, restrictions, disclosure) is ``gateway.privacy.tcf_enforcement``'s
question.

Decoding is cached per distinct string: a million events share a few thousand.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum

from gateway.privacy.bits import BASE64URL, Base64urlBitReader, cached_decoder
from gateway.privacy.errors import MalformedConsent

__all__ = [
    "MalformedConsent",
    "PublisherRestriction",
    "PublisherTC",
    "RestrictionType",
    "SegmentType",
    "TCString",
    "VendorEncoding",
    "decode_tc_string",
    "encode_tc_string",
]

# Anything longer is not a TC string but an attack or a bug; real strings with
# thousands of vendors stay well under this.
MAX_TC_STRING_LENGTH = 10_000
# Range entries let 10 000 characters name ~74 million (restriction, vendor)
# pairs; expanded, that is gigabytes. Real strings name a few thousand ids in
# all; four full sections of every vendor id (4 x 65 535) still fit.
MAX_DECODED_IDS = 1 << 18
TCF_VERSION = 2
# TcfPolicyVersion 4 is TCF v2.2; 5 is v2.3, with the same bit layout.
DEFAULT_POLICY_VERSION = 4
MAX_VENDOR_ID = (1 << 16) - 1
NUM_PURPOSES = 24
NUM_SPECIAL_FEATURES = 12

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECISECOND = timedelta(milliseconds=100)

# One shared int object per vendor id in use today (the GVL is near 1 500): the
# ~2 000 decoded strings a worker caches then hold references, not their own
# copies. Larger ids still work, as fresh ints.
_SHARED_IDS = tuple(range(4096))


class VendorEncoding(StrEnum):
    """How the encoder writes a vendor section; the decoder reads both."""

    BITFIELD = "bitfield"
    RANGE = "range"


class RestrictionType(IntEnum):
    """What a publisher restriction does to a purpose for the listed vendors."""

    NOT_ALLOWED = 0
    REQUIRE_CONSENT = 1
    REQUIRE_LEGITIMATE_INTEREST = 2


class SegmentType(IntEnum):
    """The 3-bit type that opens every segment after the core one."""

    DISCLOSED_VENDORS = 1
    ALLOWED_VENDORS = 2
    PUBLISHER_TC = 3


_SEGMENT_NAMES = {
    SegmentType.DISCLOSED_VENDORS: "DisclosedVendors",
    SegmentType.ALLOWED_VENDORS: "AllowedVendors",
    SegmentType.PUBLISHER_TC: "PublisherTC",
}


@dataclass(frozen=True)
class PublisherRestriction:
    """A publisher's restriction of one purpose for a set of vendors."""

    purpose_id: int
    restriction_type: RestrictionType
    vendor_ids: frozenset[int]


@dataclass(frozen=True)
class PublisherTC:
    """The publisher TC segment: the publisher's own legal bases, for itself, not for vendors.

    Custom purposes are the publisher's, numbered 1..``num_custom_purposes``.
    """

    purpose_consents: frozenset[int] = frozenset()
    purpose_li: frozenset[int] = frozenset()
    num_custom_purposes: int = 0
    custom_purpose_consents: frozenset[int] = frozenset()
    custom_purpose_li: frozenset[int] = frozenset()


_NO_RESTRICTION_TYPES: frozenset[RestrictionType] = frozenset()


@dataclass(frozen=True)
class TCString:
    """A decoded TC string: the core segment, then each optional segment or None if absent."""

    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    policy_version: int
    # False (a globally scoped string) is decoded, not rejected: enforcement decides.
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_opt_ins: frozenset[int]
    purpose_consents: frozenset[int]
    purpose_li: frozenset[int]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: frozenset[int]
    vendor_li: frozenset[int]
    publisher_restrictions: tuple[PublisherRestriction, ...] = ()
    # None when the segment is absent, which is not the same as an empty segment.
    disclosed_vendors: frozenset[int] | None = None
    allowed_vendors: frozenset[int] | None = None
    publisher_tc: PublisherTC | None = None

    def restricts(self, *, purpose_id: int, vendor_id: int, restriction: RestrictionType) -> bool:
        """Whether a publisher restriction of this type covers the purpose for the vendor."""
        return any(
            r.purpose_id == purpose_id
            and r.restriction_type == restriction
            and vendor_id in r.vendor_ids
            for r in self.publisher_restrictions
        )

    def restriction_types(self, *, purpose_id: int, vendor_id: int) -> frozenset[RestrictionType]:
        """Every restriction type the publisher set on the purpose for the vendor (usually none)."""
        if not self.publisher_restrictions:
            return _NO_RESTRICTION_TYPES
        return frozenset(
            r.restriction_type
            for r in self.publisher_restrictions
            if r.purpose_id == purpose_id and vendor_id in r.vendor_ids
        )


# --- Decoding -----------------------------------------------------------------------------


def _decode(value: str) -> TCString:
    segments = value.split(".")
    for segment in segments:
        if not segment:
            raise MalformedConsent("TC string has an empty segment")
        if not BASE64URL.issuperset(segment):
            raise MalformedConsent("TC string has characters outside base64url")
    budget = _IdBudget(MAX_DECODED_IDS)
    core = _read_core(_BitReader(segments[0], budget))
    disclosed_vendors: frozenset[int] | None = None
    allowed_vendors: frozenset[int] | None = None
    publisher_tc: PublisherTC | None = None
    seen: set[SegmentType] = set()
    for segment in segments[1:]:
        reader = _BitReader(segment, budget)
        code = reader.read_int(3, field="SegmentType")
        if code not in SegmentType._value2member_map_:
            raise MalformedConsent(f"TC string has a segment of unknown type {code}")
        segment_type = SegmentType(code)
        if segment_type in seen:
            raise MalformedConsent(f"TC string has more than one {_SEGMENT_NAMES[segment_type]}")
        seen.add(segment_type)
        section = _SEGMENT_NAMES[segment_type]
        if segment_type is SegmentType.DISCLOSED_VENDORS:
            disclosed_vendors = _read_vendor_section(reader, section=section)
        elif segment_type is SegmentType.ALLOWED_VENDORS:
            allowed_vendors = _read_vendor_section(reader, section=section)
        else:
            publisher_tc = _read_publisher_tc(reader)
    if not seen:
        return core
    return replace(
        core,
        disclosed_vendors=disclosed_vendors,
        allowed_vendors=allowed_vendors,
        publisher_tc=publisher_tc,
    )


# Decode a TC string; MalformedConsent if any part of it cannot be trusted.
decode_tc_string, _decode_or_problem = cached_decoder(
    _decode, what="TC string", max_length=MAX_TC_STRING_LENGTH
)


def _read_core(reader: _BitReader) -> TCString:
    version = reader.read_int(6, field="Version")
    if version != TCF_VERSION:
        raise MalformedConsent(f"TC string version {version} is not {TCF_VERSION}")
    # Keyword order is bit order: each call reads the next field.
    return TCString(
        version=version,
        created=reader.read_time(field="Created"),
        last_updated=reader.read_time(field="LastUpdated"),
        cmp_id=reader.read_int(12, field="CmpId"),
        cmp_version=reader.read_int(12, field="CmpVersion"),
        consent_screen=reader.read_int(6, field="ConsentScreen"),
        consent_language=reader.read_letters(field="ConsentLanguage"),
        vendor_list_version=reader.read_int(12, field="VendorListVersion"),
        policy_version=reader.read_int(6, field="TcfPolicyVersion"),
        is_service_specific=reader.read_bool(field="IsServiceSpecific"),
        use_non_standard_texts=reader.read_bool(field="UseNonStandardTexts"),
        special_feature_opt_ins=reader.read_id_bitfield(
            NUM_SPECIAL_FEATURES, field="SpecialFeatureOptIns"
        ),
        purpose_consents=reader.read_id_bitfield(NUM_PURPOSES, field="PurposesConsent"),
        purpose_li=reader.read_id_bitfield(NUM_PURPOSES, field="PurposesLITransparency"),
        purpose_one_treatment=reader.read_bool(field="PurposeOneTreatment"),
        publisher_cc=reader.read_letters(field="PublisherCC"),
        vendor_consents=_read_vendor_section(reader, section="vendor consent"),
        vendor_li=_read_vendor_section(reader, section="vendor legitimate interest"),
        publisher_restrictions=_read_publisher_restrictions(reader),
    )


class _IdBudget:
    """How many more vendor ids one string may expand to; shared by all its segments.

    Only vendor ids count: purpose and feature bitfields are a few bits wide.
    """

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def spend(self, count: int) -> None:
        self.remaining -= count
        if self.remaining < 0:
            raise MalformedConsent(f"TC string names more than {MAX_DECODED_IDS} vendor ids")


class _BitReader(Base64urlBitReader):
    """Reads TC string fields, counting expanded vendor ids against the string's budget."""

    def __init__(self, segment: str, budget: _IdBudget) -> None:
        super().__init__(segment, what="TC string")
        self._budget = budget

    def spend(self, count: int) -> None:
        """Count vendor ids (vendor sections, restrictions) against the string's budget."""
        self._budget.spend(count)

    def read_time(self, *, field: str) -> datetime:
        # Integer arithmetic: a float division could land a microsecond off.
        return _EPOCH + self.read_int(36, field=field) * _DECISECOND

    def read_letters(self, *, field: str) -> str:
        """Two letters of six bits each, 0 = 'A' ... 25 = 'Z'."""
        letters = []
        for _ in range(2):
            code = self.read_int(6, field=field)
            if code > 25:
                raise MalformedConsent(f"TC string {field} is not two letters A-Z")
            letters.append(chr(ord("A") + code))
        return "".join(letters)

    def read_id_bitfield(self, width: int, *, field: str) -> frozenset[int]:
        """Ids 1..width whose bit is set; the first bit is id 1."""
        bits = self.read_bits(width, field=field)
        ids = []
        index = bits.find("1")
        while index != -1:
            id_ = index + 1
            ids.append(_SHARED_IDS[id_] if id_ < len(_SHARED_IDS) else id_)
            index = bits.find("1", id_)
        return frozenset(ids)

    def read_id_ranges(self, *, max_id: int, field: str) -> frozenset[int]:
        """NumEntries 12, then entries of IsARange 1, StartOrOnlyId 16, [EndId 16]."""
        ranges = []
        # Formatted once: a section can hold thousands of entries.
        is_range_field = f"{field} IsARange"
        start_field = f"{field} StartOrOnlyVendorId"
        end_field = f"{field} EndVendorId"
        for _ in range(self.read_int(12, field=f"{field} NumEntries")):
            is_range = self.read_bool(field=is_range_field)
            start = self.read_int(16, field=start_field)
            end = self.read_int(16, field=end_field) if is_range else start
            if start == 0:
                raise MalformedConsent(f"TC string {field} names vendor id 0")
            if end < start:
                raise MalformedConsent(f"TC string {field} has a range that ends before it starts")
            if end > max_id:
                raise MalformedConsent(f"TC string {field} names a vendor above its MaxVendorId")
            ranges.append((start, end))
        merged = _merged(ranges)
        # Counted before expanding, so an absurd string costs nothing to refuse.
        self.spend(sum(end - start + 1 for start, end in merged))
        ids: set[int] = set()
        for start, end in merged:
            if end < len(_SHARED_IDS):
                ids.update(_SHARED_IDS[start : end + 1])
            else:
                ids.update(range(start, end + 1))
        return frozenset(ids)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Disjoint, sorted ranges covering the same ids.

    Up to ~1 800 overlapping full-width ranges fit in 10 000 characters;
    expanding each one separately would take seconds.
    """
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _read_vendor_section(reader: _BitReader, *, section: str) -> frozenset[int]:
    """MaxVendorId 16, IsRangeEncoding 1, then a bitfield or range entries."""
    max_id = reader.read_int(16, field=f"{section} MaxVendorId")
    if reader.read_bool(field=f"{section} IsRangeEncoding"):
        return reader.read_id_ranges(max_id=max_id, field=section)
    ids = reader.read_id_bitfield(max_id, field=f"{section} bitfield")
    reader.spend(len(ids))
    return ids


def _read_publisher_restrictions(reader: _BitReader) -> tuple[PublisherRestriction, ...]:
    restrictions = []
    for _ in range(reader.read_int(12, field="NumPubRestrictions")):
        purpose_id = reader.read_int(6, field="restriction PurposeId")
        code = reader.read_int(2, field="restriction RestrictionType")
        if purpose_id == 0 or purpose_id > NUM_PURPOSES:
            raise MalformedConsent("TC string restricts a purpose that does not exist")
        if code not in RestrictionType._value2member_map_:
            raise MalformedConsent("TC string has a reserved publisher restriction type")
        vendor_ids = reader.read_id_ranges(max_id=MAX_VENDOR_ID, field="restriction")
        restrictions.append(
            PublisherRestriction(
                purpose_id=purpose_id,
                restriction_type=RestrictionType(code),
                vendor_ids=vendor_ids,
            )
        )
    return tuple(restrictions)


def _read_publisher_tc(reader: _BitReader) -> PublisherTC:
    purpose_consents = reader.read_id_bitfield(NUM_PURPOSES, field="PubPurposesConsent")
    purpose_li = reader.read_id_bitfield(NUM_PURPOSES, field="PubPurposesLITransparency")
    num_custom = reader.read_int(6, field="NumCustomPurposes")
    return PublisherTC(
        purpose_consents=purpose_consents,
        purpose_li=purpose_li,
        num_custom_purposes=num_custom,
        custom_purpose_consents=reader.read_id_bitfield(num_custom, field="CustomPurposesConsent"),
        custom_purpose_li=reader.read_id_bitfield(num_custom, field="CustomPurposesLITransparency"),
    )


# --- Encoding -----------------------------------------------------------------------------


def encode_tc_string(
    *,
    purpose_consents: Iterable[int] = (),
    purpose_li: Iterable[int] = (),
    vendor_consents: Iterable[int] = (),
    vendor_li: Iterable[int] = (),
    special_feature_opt_ins: Iterable[int] = (),
    vendor_encoding: VendorEncoding | str = VendorEncoding.BITFIELD,
    publisher_restrictions: Iterable[PublisherRestriction] = (),
    created: datetime | None = None,
    last_updated: datetime | None = None,
    cmp_id: int = 1,
    cmp_version: int = 1,
    consent_screen: int = 1,
    consent_language: str = "EN",
    vendor_list_version: int = 1,
    policy_version: int = DEFAULT_POLICY_VERSION,
    is_service_specific: bool = True,
    use_non_standard_texts: bool = False,
    purpose_one_treatment: bool = False,
    publisher_cc: str = "AA",
    disclosed_vendors: Iterable[int] | None = None,
    allowed_vendors: Iterable[int] | None = None,
    publisher_tc: PublisherTC | None = None,
) -> str:
    """A TC string for demo data and tests; raises ValueError on bad arguments.

    Also raises ValueError when the string would exceed ``MAX_TC_STRING_LENGTH``
    (a bitfield reaching a vendor id near 65 535 does; range encoding fits) or
    name more than ``MAX_DECODED_IDS`` vendor ids: never a string our decoder refuses.

    ``vendor_encoding`` picks bitfield or range encoding for every vendor section
    (consent, legitimate interest, disclosed and allowed vendors); publisher
    restrictions are always ranges. ``disclosed_vendors``, ``allowed_vendors``
    and ``publisher_tc`` add their segment, in that order, when not None.
    ``created`` defaults to now and ``last_updated`` to ``created``.
    """
    encoding = VendorEncoding(vendor_encoding)
    created = created or datetime.now(tz=UTC)
    writer = _BitWriter()
    writer.write_int(TCF_VERSION, 6)
    writer.write_time(created)
    writer.write_time(last_updated or created)
    writer.write_int(cmp_id, 12)
    writer.write_int(cmp_version, 12)
    writer.write_int(consent_screen, 6)
    writer.write_letters(consent_language)
    writer.write_int(vendor_list_version, 12)
    writer.write_int(policy_version, 6)
    writer.write_bool(is_service_specific)
    writer.write_bool(use_non_standard_texts)
    writer.write_id_bitfield(special_feature_opt_ins, width=NUM_SPECIAL_FEATURES)
    writer.write_id_bitfield(purpose_consents, width=NUM_PURPOSES)
    writer.write_id_bitfield(purpose_li, width=NUM_PURPOSES)
    writer.write_bool(purpose_one_treatment)
    writer.write_letters(publisher_cc)
    _write_vendor_section(writer, vendor_consents, encoding=encoding)
    _write_vendor_section(writer, vendor_li, encoding=encoding)
    _write_publisher_restrictions(writer, tuple(publisher_restrictions))
    writers = [writer]
    for segment_type, vendors in (
        (SegmentType.DISCLOSED_VENDORS, disclosed_vendors),
        (SegmentType.ALLOWED_VENDORS, allowed_vendors),
    ):
        if vendors is not None:
            writers.append(_BitWriter(segment_type=segment_type))
            _write_vendor_section(writers[-1], vendors, encoding=encoding)
    if publisher_tc is not None:
        writers.append(_BitWriter(segment_type=SegmentType.PUBLISHER_TC))
        _write_publisher_tc(writers[-1], publisher_tc)
    if sum(w.ids_written for w in writers) > MAX_DECODED_IDS:
        raise ValueError(f"TC string names more than {MAX_DECODED_IDS} vendor ids")
    encoded = ".".join(w.to_base64url() for w in writers)
    if len(encoded) > MAX_TC_STRING_LENGTH:
        # Never hand out a string our own decoder would refuse.
        raise ValueError(f"TC string longer than {MAX_TC_STRING_LENGTH} characters")
    return encoded


class _BitWriter:
    """Appends big-endian unsigned fields and renders them as unpadded base64url."""

    def __init__(self, *, segment_type: SegmentType | None = None) -> None:
        self._chunks: list[str] = []
        # The vendor ids the decoder will expand, for MAX_DECODED_IDS.
        self.ids_written = 0
        if segment_type is not None:
            self.write_int(segment_type.value, 3)

    def write_int(self, value: int, width: int) -> None:
        if isinstance(value, bool) or not 0 <= value < (1 << width):
            raise ValueError(f"{value!r} does not fit in {width} bits")
        self._chunks.append(format(value, f"0{width}b"))

    def write_bool(self, value: bool) -> None:
        self._chunks.append("1" if value else "0")

    def write_time(self, value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("TC string times must be timezone-aware")
        # Integer arithmetic: timestamp() * 10 can round 0.1 s down through float error.
        self.write_int((value - _EPOCH) // _DECISECOND, 36)

    def write_letters(self, value: str) -> None:
        if len(value) != 2 or not ("A" <= value[0] <= "Z" and "A" <= value[1] <= "Z"):
            raise ValueError(f"{value!r} is not two upper-case letters")
        for letter in value:
            self.write_int(ord(letter) - ord("A"), 6)

    def write_id_bitfield(self, ids: Iterable[int], *, width: int) -> None:
        bits = ["0"] * width
        for id_ in _valid_ids(ids, max_id=width):
            bits[id_ - 1] = "1"
        self._chunks.append("".join(bits))

    def write_id_ranges(self, ids: Iterable[int]) -> None:
        valid = _valid_ids(ids, max_id=MAX_VENDOR_ID)
        ranges = _ranges_of(sorted(valid))
        self.write_int(len(ranges), 12)
        for start, end in ranges:
            self.write_bool(start != end)
            self.write_int(start, 16)
            if start != end:
                self.write_int(end, 16)
        self.ids_written += len(valid)

    def to_base64url(self) -> str:
        bits = "".join(self._chunks)
        # TC strings are byte strings: pad with zero bits to a whole byte.
        bits += "0" * (-len(bits) % 8)
        raw = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _valid_ids(ids: Iterable[int], *, max_id: int) -> set[int]:
    valid = set()
    for id_ in ids:
        if isinstance(id_, bool) or not isinstance(id_, int) or not 1 <= id_ <= max_id:
            raise ValueError(f"{id_!r} is not an id between 1 and {max_id}")
        valid.add(id_)
    return valid


def _ranges_of(sorted_ids: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of ids, as (start, end) pairs."""
    ranges: list[tuple[int, int]] = []
    for id_ in sorted_ids:
        if ranges and ranges[-1][1] == id_ - 1:
            ranges[-1] = (ranges[-1][0], id_)
        else:
            ranges.append((id_, id_))
    return ranges


def _write_vendor_section(
    writer: _BitWriter, ids: Iterable[int], *, encoding: VendorEncoding
) -> None:
    valid = _valid_ids(ids, max_id=MAX_VENDOR_ID)
    writer.write_int(max(valid, default=0), 16)
    writer.write_bool(encoding is VendorEncoding.RANGE)
    if encoding is VendorEncoding.RANGE:
        writer.write_id_ranges(valid)
    else:
        writer.write_id_bitfield(valid, width=max(valid, default=0))
        writer.ids_written += len(valid)


def _write_publisher_restrictions(
    writer: _BitWriter, restrictions: tuple[PublisherRestriction, ...]
) -> None:
    writer.write_int(len(restrictions), 12)
    for restriction in restrictions:
        if not 1 <= restriction.purpose_id <= NUM_PURPOSES:
            raise ValueError(f"{restriction.purpose_id!r} is not a TCF purpose id")
        writer.write_int(restriction.purpose_id, 6)
        writer.write_int(RestrictionType(restriction.restriction_type).value, 2)
        writer.write_id_ranges(restriction.vendor_ids)


def _write_publisher_tc(writer: _BitWriter, publisher_tc: PublisherTC) -> None:
    num_custom = publisher_tc.num_custom_purposes
    writer.write_id_bitfield(publisher_tc.purpose_consents, width=NUM_PURPOSES)
    writer.write_id_bitfield(publisher_tc.purpose_li, width=NUM_PURPOSES)
    writer.write_int(num_custom, 6)
    writer.write_id_bitfield(publisher_tc.custom_purpose_consents, width=num_custom)
    writer.write_id_bitfield(publisher_tc.custom_purpose_li, width=num_custom)
