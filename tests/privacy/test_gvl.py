from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.privacy.gvl import Gvl, GvlError, GvlVendor, parse_gvl
from tests.work_budget import measure_work

GVL_PATH = Path(__file__).parent / "vectors" / "gvl.json"
GVL_TEXT = GVL_PATH.read_text(encoding="utf-8")
GVL_DATA: dict[str, Any] = json.loads(GVL_TEXT)


def _data_with(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(GVL_DATA)
    change(data)
    return data


# --- A valid list --------------------------------------------------------------------------


def test_it_reads_the_versions_of_the_list() -> None:
    gvl = parse_gvl(GVL_TEXT)

    assert gvl.gvl_specification_version == 3
    assert gvl.vendor_list_version == 120
    assert gvl.tcf_policy_version == 5
    assert gvl.last_updated == datetime(2026, 11, 19, 16, 0, 52, tzinfo=UTC)


def test_it_reads_the_names_of_purposes_and_features() -> None:
    gvl = parse_gvl(GVL_TEXT)

    assert sorted(gvl.purposes) == list(range(1, 12))
    assert gvl.purposes[7] == "Measure advertising performance"
    assert gvl.special_purposes[3] == "Save and communicate privacy choices"
    assert sorted(gvl.features) == [1, 2, 3]
    assert gvl.special_features[1] == "Use precise geolocation data"


def test_it_reads_every_declaration_of_a_vendor() -> None:
    vendor = parse_gvl(GVL_TEXT).vendors[793]

    assert vendor == GvlVendor(
        id=793,
        name="Resonance Audio Measurement",
        purposes=frozenset({1, 7, 9}),
        leg_int_purposes=frozenset({8, 10}),
        flexible_purposes=frozenset({7, 8, 9, 10}),
        special_purposes=frozenset({1, 2}),
        features=frozenset({3}),
        special_features=frozenset(),
    )
    assert vendor.is_deleted is False


def test_a_deleted_vendor_stays_listed_but_is_marked_deleted() -> None:
    gvl = parse_gvl(GVL_TEXT)

    gone = gvl.vendors[7]

    assert gone.is_deleted is True
    assert gone.deleted_date == datetime(2024, 5, 28, tzinfo=UTC)
    assert gvl.vendors[1202].is_deleted is True
    assert [v.id for v in gvl.vendors.values() if v.is_deleted] == [7, 1202]


def test_it_knows_which_vendors_rely_only_on_special_purposes() -> None:
    gvl = parse_gvl(GVL_TEXT)

    only_special = [v.id for v in gvl.vendors.values() if v.relies_only_on_special_purposes]

    assert only_special == [3, 21, 1201]


def test_vendor_looks_up_by_id_and_answers_none_for_an_unknown_one() -> None:
    gvl = parse_gvl(GVL_TEXT)

    assert gvl.vendor(1200) is gvl.vendors[1200]
    assert gvl.vendor(7) is gvl.vendors[7]  # deleted, still there
    assert gvl.vendor(13) is None


@pytest.mark.parametrize(
    "value", [GVL_TEXT, GVL_TEXT.encode(), GVL_DATA], ids=["text", "bytes", "decoded"]
)
def test_it_takes_text_bytes_or_an_already_decoded_object(value: Any) -> None:
    gvl = parse_gvl(value)

    assert sorted(gvl.vendors) == sorted(int(key) for key in GVL_DATA["vendors"])


def test_a_vendor_without_flexible_purposes_has_none() -> None:
    # Older lists leave the key out; the IAB's own library tolerates that too.
    data = _data_with(lambda d: d["vendors"]["1"].pop("flexiblePurposes"))

    assert parse_gvl(data).vendors[1].flexible_purposes == frozenset()


def test_a_null_deleted_date_is_not_deleted() -> None:
    data = _data_with(lambda d: d["vendors"]["1"].update(deletedDate=None))

    assert parse_gvl(data).vendors[1].is_deleted is False


def test_a_list_is_compared_and_hashed_by_identity() -> None:
    # So it can key a cache; two parses are two lists.
    first, second = parse_gvl(GVL_TEXT), parse_gvl(GVL_TEXT)

    assert first != second
    assert len({first, first, second}) == 2
    assert isinstance(first, Gvl)


def test_a_list_of_real_size_parses_in_linear_work() -> None:
    vendor = GVL_DATA["vendors"]["793"]
    big = copy.deepcopy(GVL_DATA)
    big["vendors"] = {str(i): {**vendor, "id": i} for i in range(1, 1_501)}
    text = json.dumps(big)

    # Counted, not timed (bench/ is for time): a few hundred lines per vendor,
    # so nothing in parsing grows with the square of the list.
    measured = measure_work(lambda: parse_gvl(text), max_lines=400 * 1_500)

    assert measured.result is not None
    assert len(measured.result.vendors) == 1_500
    assert measured.work.peak_bytes < 50_000_000


# --- What makes a list invalid --------------------------------------------------------------


def _set(path: list[str], value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: list[str]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(["gvlSpecificationVersion"], 2), "gvlSpecificationVersion 2 is not 3"),
        (_set(["vendorListVersion"], "120"), r"GVL\.vendorListVersion is not an integer"),
        (_set(["vendorListVersion"], True), r"GVL\.vendorListVersion is not an integer"),
        (_set(["vendorListVersion"], 0), r"GVL\.vendorListVersion is not an integer of at least 1"),
        (_set(["tcfPolicyVersion"], 5.0), r"GVL\.tcfPolicyVersion is not an integer"),
        (_delete(["lastUpdated"]), "GVL has no lastUpdated"),
        (_set(["lastUpdated"], "yesterday"), r"GVL\.lastUpdated is not an ISO 8601"),
        (_set(["lastUpdated"], "2026-11-19T16:00:52"), r"GVL\.lastUpdated has no time zone"),
        (_set(["lastUpdated"], 1_763_568_052), r"GVL\.lastUpdated is not a string"),
        (_delete(["vendors"]), "GVL has no vendors"),
        (_set(["vendors"], []), r"GVL\.vendors is not an object"),
        (_set(["purposes"], None), r"GVL\.purposes is not an object"),
        (_set(["purposes", "7", "id"], 8), r"GVL\.purposes\['7'\] holds id 8"),
        (_delete(["specialFeatures", "1", "name"]), r"GVL\.specialFeatures\['1'\] has no name"),
        (_set(["vendors", "793", "id"], 794), r"GVL\.vendors\['793'\] holds id 794"),
        (_set(["vendors", "793", "id"], "793"), r"GVL\.vendors\['793'\]\.id is not an integer"),
        (_set(["vendors", "793"], "Resonance"), r"GVL\.vendors\['793'\] is not an object"),
        (_set(["vendors", "793", "name"], None), r"GVL\.vendors\['793'\]\.name is not a string"),
        (_delete(["vendors", "793", "legIntPurposes"]), r"\['793'\] has no legIntPurposes"),
        (_set(["vendors", "793", "purposes"], 7), r"\['793'\]\.purposes is not a list"),
        (_set(["vendors", "793", "purposes"], [1, "7"]), r"\.purposes\[1\] is not a positive"),
        (_set(["vendors", "793", "purposes"], [0]), r"\.purposes\[0\] is not a positive"),
        (_set(["vendors", "793", "features"], [True]), r"\.features\[0\] is not a positive"),
        (_set(["vendors", "793", "purposes"], [1, 7.5]), r"\.purposes\[1\] is not a positive"),
        (_set(["vendors", "793", "purposes"], [1, 12]), r"\.purposes names purposes \[12\]"),
        (
            _set(["vendors", "793", "flexiblePurposes"], [7, 24]),
            r"\.flexiblePurposes names purposes \[24\]",
        ),
        (
            _set(["vendors", "793", "specialFeatures"], [3]),
            r"\.specialFeatures names specialFeatures \[3\]",
        ),
        (
            _set(["vendors", "793", "specialPurposes"], [4]),
            r"\.specialPurposes names specialPurposes \[4\]",
        ),
        (_set(["vendors", "7", "deletedDate"], "soon"), r"\['7'\]\.deletedDate is not an ISO"),
        (_set(["vendors", "7", "deletedDate"], True), r"\['7'\]\.deletedDate is not a string"),
    ],
)
def test_an_invalid_list_is_refused_with_what_is_wrong_and_where(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(GvlError, match=message):
        parse_gvl(_data_with(change))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        ("[]", "GVL is not an object"),
        ("null", "GVL is not an object"),
        ('{"vendorListVersion": NaN}', "NaN is not a JSON number"),
        ('{"vendors": {}, "vendors": {}}', "repeats the key 'vendors'"),
        ("[" * 100_000, "not valid JSON"),
    ],
    ids=["empty", "cut", "not-utf8", "list", "null", "nan", "repeated-key", "deep"],
)
def test_text_that_is_not_a_gvl_object_is_refused(text: str | bytes, message: str) -> None:
    with pytest.raises(GvlError, match=message):
        parse_gvl(text)


def test_a_vendor_declared_twice_in_the_text_is_refused() -> None:
    one = json.dumps(GVL_DATA["vendors"]["793"])
    text = GVL_TEXT.replace('"vendors": {', f'"vendors": {{"793": {one},', 1)

    with pytest.raises(GvlError, match="repeats the key '793'"):
        parse_gvl(text)


def test_gvl_error_is_a_value_error() -> None:
    assert issubclass(GvlError, ValueError)
