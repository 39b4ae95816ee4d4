"""Policies with a Global Vendor List and activity rules, for the consent engine's tests."""

from __future__ import annotations

from typing import Any

from gateway.privacy.activities import ActivityRuleSpec
from gateway.privacy.gvl import Gvl, parse_gvl
from gateway.privacy.policy import PartnerPolicy

from . import builders
from .builders import VENDOR_ID

GVL_VERSION = 150


def gvl_document(*, vendor_id: int = VENDOR_ID, **vendor_overrides: Any) -> dict[str, Any]:
    """A small GVL: purposes 1-11, special purposes 1-3, features 1-3, special features 1-2.

    The one vendor (``VENDOR_ID`` unless given) declares purposes 1-10 under consent
    and special feature 1; ``vendor_overrides`` replace its declarations.
    """

    def named(count: int) -> dict[str, dict[str, Any]]:
        return {str(i): {"id": i, "name": f"item {i}"} for i in range(1, count + 1)}

    vendor: dict[str, Any] = {
        "id": vendor_id,
        "name": "Measurer",
        "purposes": list(range(1, 11)),
        "legIntPurposes": [],
        "flexiblePurposes": [],
        "specialPurposes": [1],
        "features": [],
        "specialFeatures": [1],
    }
    vendor.update(vendor_overrides)
    return {
        "gvlSpecificationVersion": 3,
        "vendorListVersion": GVL_VERSION,
        "tcfPolicyVersion": 5,
        "lastUpdated": "2026-03-01T00:00:00Z",
        "purposes": named(11),
        "specialPurposes": named(3),
        "features": named(3),
        "specialFeatures": named(2),
        "vendors": {str(vendor_id): vendor},
    }


GVL: Gvl = parse_gvl(gvl_document())


def policy(**overrides: Any) -> PartnerPolicy:
    """``builders.policy`` with the test GVL (``gvl=None`` removes it)."""
    overrides.setdefault("gvl", GVL)
    overrides.setdefault("gvl_version", GVL_VERSION if overrides["gvl"] is not None else None)
    return builders.policy(**overrides)


def rule(activity: str, effect: str, position: int = 1, **conditions: Any) -> ActivityRuleSpec:
    """An activity rule; list conditions may be given as any iterable."""
    for name in ("regimes", "gpp_sections", "countries", "regions"):
        if name in conditions:
            conditions[name] = frozenset(conditions[name])
    return ActivityRuleSpec(activity=activity, position=position, effect=effect, **conditions)
