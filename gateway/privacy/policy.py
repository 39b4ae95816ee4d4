"""What one partner may receive, as plain data the privacy filter can evaluate.

Built from the partner's configuration by ``gateway.delivery.policies``; this
module has no Django import so the filter stays a set of pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PartnerPolicy:
    """One partner's consent requirements and, for a feed, what it may receive.

    Frozen and hashable so the filter can cache work per policy (compiled allowlists).
    """

    partner_slug: str
    gvl_vendor_id: int | None
    required_tcf_purposes: frozenset[int]
    require_vendor_consent: bool
    honour_us_privacy_opt_out: bool
    honour_gpc: bool
    honour_coppa: bool
    honour_lmt: bool
    # Dotted field paths the feed may carry; everything else is removed.
    field_allowlist: frozenset[str] = field(default_factory=frozenset)
    # Per-partner HMAC-SHA256 key for user_id, device.ifa and household_id.
    pseudonym_key: bytes = b""
    # --- minimisation of the feed (see partners.models.Feed) ----------------
    # During a key rotation's overlap the previous key still yields a second
    # pseudonym, so the partner can link a person's old and new pseudonyms.
    previous_pseudonym_key: bytes = b""
    ipv4_prefix_bits: int = 24
    ipv6_prefix_bits: int = 56
    geo_decimals: int = 2
    user_agent_level: str = "family"
    # Version of the Global Vendor List snapshot the TCF checks use (recorded on batches).
    gvl_version: int | None = None


@dataclass(frozen=True)
class Decision:
    """Whether an exposure may go to a partner, and if not, the reason code."""

    eligible: bool
    reason: str | None = None

    @classmethod
    def allow(cls) -> Decision:
        return cls(eligible=True)

    @classmethod
    def drop(cls, reason: str) -> Decision:
        return cls(eligible=False, reason=reason)
