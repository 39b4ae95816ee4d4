"""IAB Global Privacy Platform (GPP) strings: our own decoder.

A GPP string is sections separated by "~". The first is the header (base64url): Type (6 bits,
always 3), Version (6 bits, 1), then the ids of the sections that follow, as a Fibonacci
range. Each following string is one section, in the order of the ids, made of segments
separated by "." (a core segment, then optional sub-sections such as GPC).

We never alter or re-encode a consent string: ``GppString`` keeps the string and every
section string exactly as received, so feeds forward them untouched.

Decoding is cached per distinct string, failures included: a million events share a few
thousand strings, and a flood of one bad string costs one decode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.privacy.bits import cached_decoder
from gateway.privacy.errors import MalformedConsent
from gateway.privacy.gpp.bits import BASE64URL, BitReader
from gateway.privacy.gpp.errors import GppSidMismatch
from gateway.privacy.gpp.sections import GppSection, UspV1Section, decode_section
from gateway.privacy.usprivacy import UsPrivacy, parse_us_privacy

# Anything longer is not a GPP string but an attack or a bug; real strings, even with a
# full TC string inside, stay well under this.
MAX_GPP_STRING_LENGTH = 10_000
GPP_HEADER_TYPE = 3
GPP_VERSION = 1

_SECTION_ALPHABET = BASE64URL | {"."}


@dataclass(frozen=True)
class GppString:
    """A decoded GPP string.

    ``raw`` and ``raw_sections`` are exactly as received. ``sections`` maps each section's
    name ("usnat", "tcfeuv2", ...) to its decoded form, in the order of ``section_ids``;
    sections we do not decode are there too, as ``OpaqueSection``.
    """

    raw: str
    section_ids: tuple[int, ...]
    raw_sections: tuple[str, ...]
    sections: Mapping[str, GppSection] = field(hash=False)

    def section(self, section_id: int) -> GppSection | None:
        """The section with this id, or None when the string does not carry it."""
        for section in self.sections.values():
            if section.section_id == section_id:
                return section
        return None


def _decode(value: str) -> GppString:
    header, *raw_sections = value.split("~")
    for index, raw in enumerate(raw_sections, start=1):
        # One malformed section makes the whole string untrustworthy, even one the caller
        # may not need: a string damaged in one place may be damaged in others.
        if not raw or "" in raw.split("."):
            raise MalformedConsent(f"GPP section {index} has an empty segment")
        if not _SECTION_ALPHABET.issuperset(raw):
            raise MalformedConsent(f"GPP section {index} has characters outside base64url")
    section_ids = _decode_header(header, max_ids=len(raw_sections))
    if len(section_ids) != len(raw_sections):
        raise MalformedConsent(
            f"GPP header names {len(section_ids)} sections but {len(raw_sections)} follow"
        )
    sections = {}
    for section_id, raw in zip(section_ids, raw_sections, strict=True):
        section = decode_section(section_id, raw)
        sections[section.name] = section
    return GppString(
        raw=value,
        section_ids=section_ids,
        raw_sections=tuple(raw_sections),
        sections=MappingProxyType(sections),
    )


# Decode a GPP string; MalformedConsent if any part of it cannot be trusted.
decode_gpp_string, _decode_or_problem = cached_decoder(
    _decode, what="GPP string", max_length=MAX_GPP_STRING_LENGTH
)


def _decode_header(header: str, *, max_ids: int) -> tuple[int, ...]:
    reader = BitReader(header, what="GPP header")
    header_type = reader.read_int(6, field="Type")
    if header_type != GPP_HEADER_TYPE:
        raise MalformedConsent(f"GPP header type {header_type} is not {GPP_HEADER_TYPE}")
    version = reader.read_int(6, field="Version")
    if version != GPP_VERSION:
        raise MalformedConsent(f"GPP version {version} is not {GPP_VERSION}")
    # One more id than there are sections is enough to know the counts disagree.
    section_ids = reader.read_fibonacci_range(field="SectionIds", max_ids=max_ids + 1)
    reader.finish()
    return section_ids


def sections_applicable(gpp: GppString, gpp_sid: Sequence[int] | None) -> tuple[GppSection, ...]:
    """The sections that apply to a request: those whose id is in ``gpp_sid``.

    Without ``gpp_sid`` every section applies. An id in ``gpp_sid`` that the string does not
    carry raises ``GppSidMismatch`` (reason ``gpp_sid_mismatch``): the request claims a
    signal it does not have, so we cannot know what the user chose.
    """
    if gpp_sid is None:
        return tuple(gpp.sections.values())
    wanted = _section_ids(gpp_sid)
    missing = sorted(wanted - set(gpp.section_ids))
    if missing:
        raise GppSidMismatch(f"gpp_sid names sections the GPP string lacks: {missing}")
    return tuple(section for section in gpp.sections.values() if section.section_id in wanted)


def _section_ids(gpp_sid: object) -> set[int]:
    # A list or tuple of ints; a string, a bare number or a bool is a caller's mistake.
    if not isinstance(gpp_sid, list | tuple) or not all(
        isinstance(sid, int) and not isinstance(sid, bool) for sid in gpp_sid
    ):
        raise MalformedConsent("gpp_sid is not a list of section ids")
    return set(gpp_sid)


def effective_us_privacy(*, gpp: GppString | None, us_privacy: str | None) -> UsPrivacy | None:
    """The US Privacy signal to honour: GPP's uspv1 section wins over the legacy field.

    OpenRTB 2.6 moved US Privacy into GPP, and a CMP that writes both keeps the GPP one
    current; the legacy ``us_privacy`` string is read only when GPP carries no uspv1
    section. A malformed legacy string then raises MalformedConsent, as on its own.
    """
    if gpp is not None:
        section = gpp.sections.get(UspV1Section.name)
        if isinstance(section, UspV1Section):
            return section.us_privacy
    if us_privacy is None:
        return None
    return parse_us_privacy(us_privacy)
