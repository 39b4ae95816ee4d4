"""IAB US Privacy (CCPA) strings: "1YNN" = version, notice, opt-out of sale, LSPA."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from gateway.privacy.errors import MalformedConsent

__all__ = ["MalformedConsent", "UsPrivacy", "parse_us_privacy"]

US_PRIVACY_VERSION = "1"
_FLAGS = frozenset("YN-")
_NOT_APPLICABLE = "---"


@dataclass(frozen=True)
class UsPrivacy:
    """A parsed US Privacy string; each flag is 'Y', 'N' or '-' (not applicable)."""

    version: int
    notice: str
    opt_out_sale: str
    lspa: str

    @property
    def applies(self) -> bool:
        """False for "1---": the publisher says CCPA does not apply."""
        return (self.notice, self.opt_out_sale, self.lspa) != tuple(_NOT_APPLICABLE)

    @property
    def opted_out_of_sale(self) -> bool:
        return self.opt_out_sale == "Y"


def parse_us_privacy(value: str) -> UsPrivacy:
    """Parse a US Privacy string; raise MalformedConsent unless it is exactly version 1."""
    if not isinstance(value, str) or len(value) != 4:
        raise MalformedConsent("US Privacy string is not exactly four characters")
    result = _parse_or_problem(value)
    if isinstance(result, str):
        raise MalformedConsent(result)
    return result


# Only a few dozen four-character strings exist; caching them skips building a
# dataclass on every event.
@functools.lru_cache(maxsize=1024)
def _parse_or_problem(value: str) -> UsPrivacy | str:
    if value[0] != US_PRIVACY_VERSION:
        return f"US Privacy string version is not {US_PRIVACY_VERSION}"
    if not _FLAGS.issuperset(value[1:]):
        return "US Privacy flags must each be 'Y', 'N' or '-'"
    return UsPrivacy(version=1, notice=value[1], opt_out_sale=value[2], lspa=value[3])
