"""Latitude and longitude rounded to a feed's decimals; anything unusable is removed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.privacy.geo import (
    LATITUDE_LIMIT,
    LONGITUDE_LIMIT,
    MAX_DECIMALS,
    coordinate_rounder,
    round_coordinate,
    round_latitude,
    round_longitude,
)
from gateway.privacy.speedups import speedups_load

_speedups = speedups_load()


@pytest.mark.parametrize(
    ("decimals", "expected"),
    [(0, 38.0), (1, 37.8), (2, 37.8), (3, 37.804), (4, 37.8044), (6, 37.80437)],
)
def test_a_latitude_is_rounded_to_the_configured_decimals(decimals: int, expected: float) -> None:
    assert round_latitude(37.80437, decimals=decimals) == expected


def test_two_decimals_is_the_default() -> None:
    assert round_latitude(37.80437) == 37.8
    assert round_longitude(-122.27111) == -122.27


def test_integers_are_accepted_and_come_back_as_floats() -> None:
    assert round_longitude(13, decimals=2) == 13.0
    assert type(round_longitude(13, decimals=2)) is float


def test_a_coordinate_that_rounds_to_zero_loses_its_sign() -> None:
    rounded = round_latitude(-0.001, decimals=2)

    assert rounded == 0.0
    assert math.copysign(1.0, rounded) == 1.0  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [90, -90, 90.0])
def test_the_poles_are_valid_latitudes(value: float) -> None:
    assert round_latitude(value) == float(value)


@pytest.mark.parametrize("value", [90.0001, -91, 1e308, math.inf, -math.inf, math.nan])
def test_a_latitude_out_of_range_is_removed(value: float) -> None:
    assert round_latitude(value) is None


@pytest.mark.parametrize("value", [180, -180.0, 179.999])
def test_longitudes_reach_180(value: float) -> None:
    assert round_longitude(value, decimals=6) == float(value)


def test_a_longitude_out_of_range_is_removed() -> None:
    assert round_longitude(180.5) is None


@pytest.mark.parametrize("value", [None, "37.8", True, False, [37.8], {"v": 1}, 10**400])
def test_a_value_that_is_not_a_coordinate_is_removed(value: object) -> None:
    assert round_latitude(value) is None


@pytest.mark.parametrize("decimals", [-1, MAX_DECIMALS + 1, 2.0, None, True])
def test_an_unusable_decimals_setting_removes_the_coordinate(decimals: object) -> None:
    assert round_coordinate(37.8, decimals=decimals, limit=90) is None  # type: ignore[arg-type]


# --- The rounder the filter uses: in C where the speedups are built ---------------------

_LIMITS = st.sampled_from([LATITUDE_LIMIT, LONGITUDE_LIMIT])


def _near_ties() -> st.SearchStrategy[float]:
    """Values at and one step either side of a half at some decimal: where rounding is hard."""

    def around(half: float) -> st.SearchStrategy[float]:
        return st.sampled_from(
            [half, math.nextafter(half, math.inf), math.nextafter(half, -math.inf)]
        )

    return st.builds(
        lambda whole, decimals: (whole + 0.5) / 10**decimals,
        st.integers(-181 * 10**6, 181 * 10**6),
        st.integers(0, MAX_DECIMALS),
    ).flatmap(around)


def _same(got: float | None, expected: float | None) -> bool:
    if got is None or expected is None:
        return got is expected
    return (
        type(got) is float
        and got == expected
        and math.copysign(1.0, got) == math.copysign(1.0, expected)
    )


@settings(max_examples=3000, deadline=None)
@given(
    value=st.one_of(
        st.floats(),
        st.floats(-200, 200),
        _near_ties(),
        st.integers(),
        st.booleans(),
        st.none(),
        st.text(max_size=5),
    ),
    decimals=st.integers(0, MAX_DECIMALS),
    limit=_LIMITS,
)
def test_the_filters_rounder_answers_as_round_coordinate(
    value: object, decimals: int, limit: int
) -> None:
    rounder = coordinate_rounder(decimals=decimals, limit=limit)

    assert _same(rounder(value), round_coordinate(value, decimals=decimals, limit=limit))


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (0.125, 2, 0.12),  # a true tie (0.125 is exact): to even
        (0.375, 2, 0.38),
        (2.5, 0, 2.0),
        (-2.5, 0, -2.0),
        (0.005, 2, 0.01),  # just above the half in binary
        (-0.049999999999999996, 1, 0.0),  # just below it: and no sign left
        (37.80437, 4, 37.8044),
    ],
)
def test_the_filters_rounder_rounds_the_binary_value_ties_to_even(
    value: float, decimals: int, expected: float
) -> None:
    rounded = coordinate_rounder(decimals=decimals, limit=LONGITUDE_LIMIT)(value)

    assert _same(rounded, expected)


@pytest.mark.skipif(_speedups is None, reason="gateway.privacy._speedups is not built")
def test_with_the_speedups_built_the_filters_rounder_is_the_compiled_one() -> None:
    assert type(coordinate_rounder(decimals=2, limit=LATITUDE_LIMIT)).__name__ == (
        "CoordinateRounder"
    )


def test_an_unusable_setting_gives_a_rounder_that_removes_everything() -> None:
    rounder = coordinate_rounder(decimals=MAX_DECIMALS + 1, limit=LATITUDE_LIMIT)

    assert rounder(37.8) is None
