"""A small Global Vendor List for the demo, declaring the demo partners' vendor ids.

Real deployments upload the IAB's vendor-list.json in admin; the demo cannot
fetch it, and without a GVL every TCF event fails closed (tcf_gvl_missing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DEMO_GVL_VERSION = 1

_PURPOSES = {
    1: "Store and/or access information on a device",
    2: "Use limited data to select advertising",
    3: "Create profiles for personalised advertising",
    4: "Use profiles to select personalised advertising",
    5: "Create profiles to personalise content",
    6: "Use profiles to select personalised content",
    7: "Measure advertising performance",
    8: "Measure content performance",
    9: "Understand audiences through statistics or combinations of data",
    10: "Develop and improve services",
    11: "Use limited data to select content",
}
_SPECIAL_PURPOSES = {1: "Ensure security, prevent and detect fraud", 2: "Deliver and present"}
_FEATURES = {1: "Match and combine data from other data sources"}
_SPECIAL_FEATURES = {1: "Use precise geolocation data", 2: "Actively scan device characteristics"}


def _named(items: dict[int, str]) -> dict[str, dict[str, Any]]:
    return {
        str(item_id): {"id": item_id, "name": name, "description": name}
        for item_id, name in items.items()
    }


def demo_gvl_document(vendors: Iterable[tuple[int, str]]) -> dict[str, Any]:
    """A GVL v3 document in which each (id, name) vendor relies on consent for purposes 1-10."""
    return {
        "gvlSpecificationVersion": 3,
        "vendorListVersion": DEMO_GVL_VERSION,
        "tcfPolicyVersion": 5,
        "lastUpdated": "2026-11-01T00:00:00Z",
        "purposes": _named(_PURPOSES),
        "specialPurposes": _named(_SPECIAL_PURPOSES),
        "features": _named(_FEATURES),
        "specialFeatures": _named(_SPECIAL_FEATURES),
        "stacks": {},
        "dataCategories": {},
        "vendors": {
            str(vendor_id): {
                "id": vendor_id,
                "name": name,
                "purposes": list(range(1, 11)),
                "legIntPurposes": [],
                "flexiblePurposes": [],
                "specialPurposes": [1, 2],
                "features": [1],
                "specialFeatures": [1],
                "cookieMaxAgeSeconds": 0,
                "usesCookies": False,
                "usesNonCookieAccess": True,
                "urls": [{"langId": "en", "privacy": "https://example.com/privacy"}],
                "dataRetention": {"stdRetention": 395, "purposes": {}, "specialPurposes": {}},
                "dataDeclaration": [1, 2, 3, 4, 6, 11],
            }
            for vendor_id, name in vendors
        },
    }
