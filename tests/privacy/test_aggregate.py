"""Aggregate-only feeds: rows per cell, distinct users, suppression under the threshold."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from gateway.privacy.aggregate import (
    DEFAULT_MIN_USERS,
    Aggregation,
    aggregate,
    aggregate_dimensions_problems,
    user_key,
)

from .builders import RAW_HOUSEHOLD_ID, RAW_USER_ID

DIMENSIONS = ["campaign_id", "geo.country"]


def event(n: int, *, campaign: str = "cmp-1", country: str = "US", **fields: Any) -> dict:
    """A raw event of user ``n`` (its record is the event itself in these tests)."""
    record: dict[str, Any] = {
        "campaign_id": campaign,
        "geo": {"country": country},
        "user_id": f"user-{n}",
        "device": {"ifa": f"ifa-{n}", "lmt": False},
        "household_id": f"hh-{n}",
    }
    record.update(fields)
    return record


def run(events: list[dict], *, dimensions=DIMENSIONS, min_users: int = 2, **options: Any):
    return aggregate(
        ((e, e) for e in events), dimensions=dimensions, min_users=min_users, **options
    )


# --- Grouping ------------------------------------------------------------------------------


def test_rows_count_events_and_distinct_users_per_cell() -> None:
    events = [event(1), event(1), event(2), event(3, country="DE"), event(4, country="DE")]

    result = run(events)

    assert result.rows == (
        {"campaign_id": "cmp-1", "geo.country": "DE", "events": 2, "users": 2},
        {"campaign_id": "cmp-1", "geo.country": "US", "events": 3, "users": 2},
    )
    assert result.suppressed_cells == 0
    assert result.events == 5


def test_rows_come_in_dimension_value_order_whatever_the_input_order() -> None:
    events = [event(n, campaign=c) for n in range(2) for c in ("cmp-b", "cmp-a", "cmp-c")]

    forward = run(events, dimensions=["campaign_id"])
    backward = run(list(reversed(events)), dimensions=["campaign_id"])

    assert [row["campaign_id"] for row in forward.rows] == ["cmp-a", "cmp-b", "cmp-c"]
    assert forward.rows == backward.rows


def test_a_missing_or_non_scalar_value_groups_as_null() -> None:
    events = [
        event(1, geo={}),
        event(2, geo={"country": {"nested": "US"}}),
        event(3, geo="not an object"),
    ]

    result = run(events, dimensions=["geo.country"])

    assert result.rows == ({"geo.country": None, "events": 3, "users": 3},)


def test_values_of_different_types_never_share_a_cell() -> None:
    events = [event(n, flag=value) for n in range(2) for value in (True, 1, 1.0, "1", None)]

    result = run(events, dimensions=["flag"])

    assert [row["flag"] for row in result.rows] == [None, True, 1, 1.0, "1"]
    assert [type(row["flag"]) for row in result.rows] == [
        type(None), bool, int, float, str
    ]  # fmt: skip


def test_no_dimensions_give_one_row_of_totals() -> None:
    result = run([event(1), event(2), event(2)], dimensions=[])

    assert result.rows == ({"events": 3, "users": 2},)


def test_nothing_to_aggregate_gives_no_rows() -> None:
    result = run([])

    assert result.rows == ()
    assert result.suppressed_cells == 0


def test_no_identifier_ever_reaches_a_row() -> None:
    events = [event(1, user_id=RAW_USER_ID, household_id=RAW_HOUSEHOLD_ID) for _ in range(3)]
    events += [event(n) for n in range(2, 5)]

    text = json.dumps(run(events).rows)

    for raw in (RAW_USER_ID, RAW_HOUSEHOLD_ID, "user-2", "ifa-2", "hh-2"):
        assert raw not in text


# --- Distinct users ------------------------------------------------------------------------


def test_users_are_counted_by_user_id_then_ifa_then_household() -> None:
    assert user_key({"user_id": "u", "device": {"ifa": "d"}, "household_id": "h"}) == "u:u"
    assert user_key({"device": {"ifa": "d"}, "household_id": "h"}) == "d:d"
    assert user_key({"user_id": "", "household_id": "h"}) == "h:h"
    assert user_key({"user_id": 5, "device": "x"}) is None


def test_a_device_that_limits_ad_tracking_is_not_counted_by_its_ifa() -> None:
    limited = {"device": {"ifa": "d", "lmt": True}, "household_id": "h"}

    assert user_key(limited) == "h:h"
    assert user_key(limited, honour_lmt=False) == "d:d"


def test_identifiers_of_denied_activities_do_not_count_users() -> None:
    raw = {"user_id": "u", "device": {"ifa": "d"}, "household_id": "h"}

    assert user_key(raw, denied_activities=frozenset({"transmit_user_ids"})) == "d:d"
    assert user_key(raw, denied_activities=frozenset({"transmit_device_ids"})) == "u:u"
    both = frozenset({"transmit_user_ids", "transmit_device_ids"})
    assert user_key(raw, denied_activities=both) is None


def test_events_without_a_usable_identifier_count_as_events_not_users() -> None:
    anonymous = [{"campaign_id": "cmp-1", "geo": {"country": "US"}} for _ in range(10)]

    result = run([*anonymous, event(1), event(2)])

    assert result.rows == ({"campaign_id": "cmp-1", "geo.country": "US", "events": 12, "users": 2},)


def test_the_same_person_counts_once_however_many_events() -> None:
    result = run([event(7) for _ in range(100)] + [event(8)])

    assert result.rows[0]["users"] == 2
    assert result.rows[0]["events"] == 101


def test_user_ids_and_ifas_are_different_namespaces() -> None:
    # "abc" as a user id and "abc" as an ifa are not known to be one person.
    events = [{"user_id": "abc"}, {"device": {"ifa": "abc"}}]

    assert run(events, dimensions=[]).rows[0]["users"] == 2


# --- Suppression ---------------------------------------------------------------------------


def test_the_default_threshold_is_50_distinct_users() -> None:
    assert DEFAULT_MIN_USERS == 50


@pytest.mark.parametrize(("users", "kept"), [(49, False), (50, True), (51, True)])
def test_a_cell_needs_the_threshold_of_distinct_users(users: int, kept: bool) -> None:
    # Many events of few users are not enough: the threshold counts people.
    events = [event(n) for n in range(users) for _ in range(3)]

    result = run(events, min_users=50)

    assert len(result.rows) == (1 if kept else 0)
    assert result.suppressed_cells == (0 if kept else 1)
    assert result.suppressed_events == (0 if kept else users * 3)


def test_suppressed_cells_are_counted_and_left_out() -> None:
    big = [event(n, country="US") for n in range(5)]
    small = [event(n, country=country) for n, country in enumerate(["DE", "DE", "FR", "IT"])]

    result = run(big + small, min_users=3)

    assert [row["geo.country"] for row in result.rows] == ["US"]
    assert result.suppressed_cells == 3
    assert result.events == 5
    assert result.suppressed_events == 4


@pytest.mark.parametrize("min_users", [0, -5])
def test_a_threshold_below_one_still_needs_one_identified_user(min_users: int) -> None:
    anonymous = [{"campaign_id": "cmp-1", "geo": {"country": "US"}}]

    result = run(anonymous, min_users=min_users)

    assert result.rows == ()
    assert result.suppressed_cells == 1


def test_tags_are_counted_only_for_delivered_cells() -> None:
    aggregation = Aggregation(dimensions=["geo.country"], min_users=2)
    for n in range(2):
        aggregation.add(event(n, country="US"), event=event(n), tag="cmp-1|2026-11-24|impression")
    aggregation.add(event(9, country="DE"), event=event(9), tag="cmp-1|2026-11-24|impression")
    aggregation.add(event(1, country="US"), event=event(1), tag="cmp-1|2026-11-24|click")

    result = aggregation.finish()

    assert result.events_by_tag == {"cmp-1|2026-11-24|click": 1, "cmp-1|2026-11-24|impression": 2}


def test_the_hashes_of_two_aggregations_differ() -> None:
    # A fresh key per aggregation: nothing about a user outlives one batch build.
    one, two = Aggregation(dimensions=[]), Aggregation(dimensions=[])

    assert one._hash("u:user-1") != two._hash("u:user-1")


# --- Dimension validation ------------------------------------------------------------------


ALLOWLIST = ["campaign_id", "event_type", "geo", "user_id", "device.ifa", "ip", "event_id"]


def test_allowlisted_fields_are_valid_dimensions() -> None:
    dimensions = ["campaign_id", "event_type", "geo.country", "geo.region", "ip"]

    assert aggregate_dimensions_problems(dimensions, ALLOWLIST) == []


def test_an_empty_list_is_valid() -> None:
    assert aggregate_dimensions_problems([], ALLOWLIST) == []


def test_a_field_outside_the_allowlist_is_refused() -> None:
    assert aggregate_dimensions_problems(["device.os"], ALLOWLIST) == [
        "'device.os' is not in the feed's field allowlist."
    ]


@pytest.mark.parametrize(
    "dimension",
    [
        "user_id",
        "household_id",
        "device.ifa",
        "device",
        "event_id",
        "consent.tcf",
        "consent",
        "user_id_previous",
    ],
)
def test_identifiers_are_refused_even_when_allowlisted(dimension: str) -> None:
    [problem] = aggregate_dimensions_problems([dimension], [*ALLOWLIST, "consent", "device"])

    assert "identifies a person or an event" in problem


def test_an_object_is_refused() -> None:
    assert aggregate_dimensions_problems(["geo"], ALLOWLIST) == [
        "'geo' is an object: name one of its fields, e.g. geo.country."
    ]


@pytest.mark.parametrize("dimension", ["", "geo.", ".geo", "geo..country", 5, None])
def test_a_dimension_that_is_not_a_path_is_refused(dimension: object) -> None:
    [problem] = aggregate_dimensions_problems([dimension], ALLOWLIST)

    assert "is not a dotted field path" in problem


def test_a_duplicate_is_refused() -> None:
    assert aggregate_dimensions_problems(["campaign_id", "campaign_id"], ALLOWLIST) == [
        "'campaign_id' is listed twice."
    ]


@pytest.mark.parametrize("dimension", ["events", "users"])
def test_the_count_column_names_are_refused(dimension: str) -> None:
    [problem] = aggregate_dimensions_problems([dimension], [dimension])

    assert "count column" in problem


@pytest.mark.parametrize("dimensions", ["campaign_id", {"campaign_id": 1}, None])
def test_dimensions_that_are_not_a_list_are_refused(dimensions: object) -> None:
    assert aggregate_dimensions_problems(dimensions, ALLOWLIST) == [
        "Must be a list of dotted field paths."
    ]


@pytest.mark.parametrize("allowlist", [None, "campaign_id", {"campaign_id": True}])
def test_a_malformed_allowlist_allows_no_dimension(allowlist: object) -> None:
    problems = aggregate_dimensions_problems(["campaign_id"], allowlist)  # type: ignore[arg-type]

    assert problems == ["'campaign_id' is not in the feed's field allowlist."]


def test_a_field_of_an_always_denied_activity_is_refused() -> None:
    problems = aggregate_dimensions_problems(
        ["geo.city", "geo.country"], ALLOWLIST, denied_activities={"transmit_precise_geo"}
    )

    assert problems == ["'geo.city' is removed by a denied activity."]


def test_every_problem_is_reported_at_once() -> None:
    problems = aggregate_dimensions_problems(["user_id", "device.os", "geo"], ALLOWLIST)

    assert len(problems) == 3


def test_the_minimisation_modules_import_no_django() -> None:
    code = (
        "import sys, gateway.privacy.aggregate, gateway.privacy.geo, gateway.privacy.network, "
        "gateway.privacy.pseudonyms, gateway.privacy.transform, gateway.privacy.useragent; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
