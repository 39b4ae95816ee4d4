"""Latitude and longitude rounded to a feed's decimals; anything unusable is removed."""

from __future__ import annotations

import math

import pytest

from gateway.privacy.geo import MAX_DECIMALS, round_coordinate, round_latitude, round_longitude


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
