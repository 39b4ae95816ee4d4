"""The IAB Global Vendor List (GVL specification version 3: TCF v2.2 and v2.3) as plain data.

``parse_gvl`` turns the JSON of ``vendor-list.json`` into a frozen ``Gvl``: the
list's versions and, per vendor, what it declares (purposes under consent, under
legitimate interest, flexible purposes, special purposes, features and special
features). Texts, URLs, retention and data categories are not kept: enforcement
needs none of them.

The list is checked strictly, because every consent decision trusts it: any
value of the wrong type, an id that does not match its key, a reference to a
purpose the list does not define or a repeated key raises ``GvlError`` naming
the path of the first problem. Deleted vendors (``deletedDate`` set) stay in
``vendors`` so they can be shown, but declare nothing: see ``GvlVendor.is_deleted``.

Pure: no file or network access; the caller fetches, stores and refreshes the list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["GVL_SPECIFICATION_VERSION", "Gvl", "GvlError", "GvlVendor", "parse_gvl"]

GVL_SPECIFICATION_VERSION = 3

# The vendor's keys that hold declarations, and the GVL section each one refers to.
_DECLARATIONS = {
    "purposes": "purposes",
    "legIntPurposes": "purposes",
    "flexiblePurposes": "purposes",
    "specialPurposes": "specialPurposes",
    "features": "features",
    "specialFeatures": "specialFeatures",
}
# Optional in older lists and tolerated by the IAB's own library; absent means none.
_OPTIONAL_DECLARATIONS = frozenset({"flexiblePurposes"})


class GvlError(ValueError):
    """A vendor list that cannot be trusted; the message says what is wrong and where."""


@dataclass(frozen=True)
class GvlVendor:
    """One vendor's declarations in the GVL; ids are the TCF's purpose and feature ids."""

    id: int
    name: str
    purposes: frozenset[int] = frozenset()
    leg_int_purposes: frozenset[int] = frozenset()
    flexible_purposes: frozenset[int] = frozenset()
    special_purposes: frozenset[int] = frozenset()
    features: frozenset[int] = frozenset()
    special_features: frozenset[int] = frozenset()
    deleted_date: datetime | None = None

    @property
    def is_deleted(self) -> bool:
        """A deleted vendor's declarations no longer count: it may process nothing."""
        return self.deleted_date is not None

    @property
    def relies_only_on_special_purposes(self) -> bool:
        """No purpose under any legal basis: only the disclosed-vendors segment can cover it."""
        return not (self.purposes or self.leg_int_purposes or self.flexible_purposes)


@dataclass(frozen=True, eq=False)
class Gvl:
    """A parsed vendor list. Compared and hashed by identity: one object per list version."""

    gvl_specification_version: int
    vendor_list_version: int
    tcf_policy_version: int
    last_updated: datetime
    # id -> name, for each section the vendors' declarations refer to.
    purposes: dict[int, str]
    special_purposes: dict[int, str]
    features: dict[int, str]
    special_features: dict[int, str]
    vendors: dict[int, GvlVendor]

    def vendor(self, vendor_id: int) -> GvlVendor | None:
        """The vendor with this id, deleted or not; None if the list never had it."""
        return self.vendors.get(vendor_id)


def parse_gvl(value: str | bytes | Mapping[str, Any]) -> Gvl:
    """Parse a GVL from its JSON text (or the already decoded object); raise GvlError if invalid."""
    data = _load(value) if isinstance(value, str | bytes) else value
    top = _object(data, path="GVL")
    spec_version = _integer(top, "gvlSpecificationVersion", path="GVL", minimum=1)
    if spec_version != GVL_SPECIFICATION_VERSION:
        raise GvlError(
            f"GVL gvlSpecificationVersion {spec_version} is not {GVL_SPECIFICATION_VERSION}"
        )
    sections = {
        key: _named_items(top, key)
        for key in ("purposes", "specialPurposes", "features", "specialFeatures")
    }
    vendors_path = "GVL.vendors"
    vendors = {}
    for key, raw in _object(_required(top, "vendors", path="GVL"), path=vendors_path).items():
        vendor = _vendor(raw, path=f"{vendors_path}[{key!r}]", sections=sections)
        _check_key(key, vendor.id, path=vendors_path)
        vendors[vendor.id] = vendor
    return Gvl(
        gvl_specification_version=spec_version,
        vendor_list_version=_integer(top, "vendorListVersion", path="GVL", minimum=1),
        tcf_policy_version=_integer(top, "tcfPolicyVersion", path="GVL", minimum=1),
        last_updated=_timestamp(_required(top, "lastUpdated", path="GVL"), path="GVL.lastUpdated"),
        purposes=sections["purposes"],
        special_purposes=sections["specialPurposes"],
        features=sections["features"],
        special_features=sections["specialFeatures"],
        vendors=vendors,
    )


def _load(text: str | bytes) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constant)
    except GvlError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise GvlError(f"GVL is not valid JSON: {exc}") from None


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would keep the last of two equal keys; a list that says two
    # things about one vendor is not one to guess about.
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise GvlError(f"GVL repeats the key {key!r} in one object")
        result[key] = item
    return result


def _no_constant(name: str) -> Any:
    raise GvlError(f"GVL is not valid JSON: {name} is not a JSON number")


def _vendor(raw: Any, *, path: str, sections: dict[str, dict[int, str]]) -> GvlVendor:
    fields = _object(raw, path=path)
    declared: dict[str, frozenset[int]] = {}
    for key, section in _DECLARATIONS.items():
        if key in _OPTIONAL_DECLARATIONS and fields.get(key) is None:
            declared[key] = frozenset()
            continue
        ids = _id_list(_required(fields, key, path=path), path=f"{path}.{key}")
        unknown = sorted(ids - sections[section].keys())
        if unknown:
            raise GvlError(f"{path}.{key} names {section} {unknown} the GVL does not define")
        declared[key] = ids
    deleted = fields.get("deletedDate")
    return GvlVendor(
        id=_integer(fields, "id", path=path, minimum=1),
        name=_text(fields, "name", path=path),
        purposes=declared["purposes"],
        leg_int_purposes=declared["legIntPurposes"],
        flexible_purposes=declared["flexiblePurposes"],
        special_purposes=declared["specialPurposes"],
        features=declared["features"],
        special_features=declared["specialFeatures"],
        deleted_date=None if deleted is None else _timestamp(deleted, path=f"{path}.deletedDate"),
    )


def _named_items(top: Mapping[str, Any], key: str) -> dict[int, str]:
    """A section such as ``purposes``: ``{"1": {"id": 1, "name": ...}, ...}`` as id -> name."""
    path = f"GVL.{key}"
    items = {}
    for item_key, raw in _object(_required(top, key, path="GVL"), path=path).items():
        item_path = f"{path}[{item_key!r}]"
        fields = _object(raw, path=item_path)
        item_id = _integer(fields, "id", path=item_path, minimum=1)
        _check_key(item_key, item_id, path=path)
        items[item_id] = _text(fields, "name", path=item_path)
    return items


def _check_key(key: str, item_id: int, *, path: str) -> None:
    if key != str(item_id):
        raise GvlError(f"{path}[{key!r}] holds id {item_id}")


def _required(fields: Mapping[str, Any], key: str, *, path: str) -> Any:
    if key not in fields:
        raise GvlError(f"{path} has no {key}")
    return fields[key]


def _object(value: Any, *, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise GvlError(f"{path} is not an object")
    return value


def _integer(fields: Mapping[str, Any], key: str, *, path: str, minimum: int) -> int:
    value = _required(fields, key, path=path)
    if type(value) is not int or value < minimum:
        raise GvlError(f"{path}.{key} is not an integer of at least {minimum}: {value!r}")
    return value


def _text(fields: Mapping[str, Any], key: str, *, path: str) -> str:
    value = _required(fields, key, path=path)
    if not isinstance(value, str):
        raise GvlError(f"{path}.{key} is not a string")
    return value


def _id_list(value: Any, *, path: str) -> frozenset[int]:
    if not isinstance(value, list):
        raise GvlError(f"{path} is not a list")
    for index, item in enumerate(value):
        if type(item) is not int or item < 1:
            raise GvlError(f"{path}[{index}] is not a positive integer: {item!r}")
    return frozenset(value)


def _timestamp(value: Any, *, path: str) -> datetime:
    if not isinstance(value, str):
        raise GvlError(f"{path} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise GvlError(f"{path} is not an ISO 8601 date and time: {value!r}") from None
    if parsed.tzinfo is None:
        raise GvlError(f"{path} has no time zone: {value!r}")
    return parsed
