"""What one partner may receive, as plain data the privacy filter can evaluate.

Built from the partner's configuration by ``gateway.delivery.policies``; this
module has no Django import so the filter stays a set of pure functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.privacy.activities import ActivityRuleSpec, PurposeRequirement

T = TypeVar("T")

# US states whose law requires honouring Global Privacy Control; the admin's
# PrivacySettings.gpc_states replaces it (see partners migration 0003).
DEFAULT_GPC_STATES: frozenset[str] = frozenset(
    {"CA", "CO", "CT", "DE", "MD", "MN", "MT", "NE", "NH", "NJ", "OR", "TX"}
)


@dataclass(frozen=True)
class PartnerPolicy:
    """One partner's consent requirements and, for a feed, what it may receive.

    Frozen and hashable so the filter can cache work per policy (compiled
    allowlists, compiled activity rules, decisions per distinct consent signal).
    """

    partner_slug: str
    gvl_vendor_id: int | None
    # Purposes every event needs under TCF, on top of the transmit_event requirement.
    required_tcf_purposes: frozenset[int]
    # Kept for configuration compatibility: under TCF v2.2 the engine always needs
    # the vendor's legal basis (consent or LI, as the GVL declares), see docs/privacy.md.
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
    # --- consent engine (see gateway.privacy.consent) -------------------------
    # Activity controls: every rule of the partner, any activity, any order
    # (the engine sorts them by activity and position).
    activity_rules: tuple[ActivityRuleSpec, ...] = ()
    # TCF legal bases per activity name; an activity not listed uses the default.
    activity_purposes: tuple[tuple[str, PurposeRequirement], ...] = ()
    # "allow" or "deny" per activity name when no rule matches; not listed = allow.
    activity_defaults: tuple[tuple[str, str], ...] = ()
    # States (subdivision codes such as "CA") where GPC is honoured.
    gpc_states: frozenset[str] = DEFAULT_GPC_STATES
    # Regime of events no regime claims: "none", "us_national" or "deny".
    default_regime: str = "none"
    # The parsed Global Vendor List (gateway.privacy.gvl.Gvl) the TCF checks read;
    # None means no GVL is known and TCF events fail closed. Left out of equality
    # and hashing: gvl_version stands for it.
    gvl: Any = field(default=None, compare=False, hash=False, repr=False)


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


def policy_cache(policy: PartnerPolicy, name: str, make: Callable[[], T]) -> T:
    """What ``make()`` gives, made once and kept on ``policy`` under ``name``.

    The policy is frozen for its fields, but its ``__dict__`` can hold a cache
    that is not a field (not compared, not hashed), which changes no answer. It
    lives as long as the policy: one build's, or a worker's next builds' too
    (``gateway.delivery.kept_policies``). A policy without a ``__dict__`` gets
    ``make()`` at every call: slower, the same.
    """
    attributes = getattr(policy, "__dict__", None)
    if attributes is None:
        return make()
    found = attributes.get(name)
    if found is None:
        found = make()
        object.__setattr__(policy, name, found)
    return found
