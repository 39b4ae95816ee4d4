"""Coarsening of precise geo: latitude and longitude rounded to a feed's decimals.

Two decimals are about 1.1 km of latitude: a neighbourhood, not a street. City
and postal code are not coarsened here: the allowlist keeps them out unless a
feed lists them, and the ``transmit_precise_geo`` activity removes them with
lat/lon (see ``gateway.privacy.transform``).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.privacy.speedups import speedups_load

# The compiled rounder (see speedups.py), or None.
_speedups = speedups_load()

DEFAULT_DECIMALS = 2
# Six decimals are about 11 cm; anything finer is not a coarsening at all.
MAX_DECIMALS = 6
LATITUDE_LIMIT = 90
LONGITUDE_LIMIT = 180


def round_coordinate(value: object, *, decimals: int, limit: float) -> float | None:
    """``value`` rounded to ``decimals`` places, or None when it must be removed.

    None for anything that is not a finite number within ``limit`` (in absolute
    value), booleans included, and for ``decimals`` outside 0 to ``MAX_DECIMALS``:
    an unusable setting removes the coordinate rather than sending it unrounded.
    Rounding is Python's ``round`` on the binary value (ties to even). The sign
    of a coordinate that rounds to zero is dropped: "-0.0" would still tell the
    hemisphere.
    """
    if type(value) is not float and type(value) is not int:
        return None
    if type(decimals) is not int or not 0 <= decimals <= MAX_DECIMALS:
        return None
    # NaN fails both comparisons, infinities the bound.
    if not -limit <= value <= limit:
        return None
    return round(float(value), decimals) + 0.0


def round_latitude(value: object, *, decimals: int = DEFAULT_DECIMALS) -> float | None:
    """A latitude rounded to ``decimals``; None when it is not a valid latitude."""
    return round_coordinate(value, decimals=decimals, limit=LATITUDE_LIMIT)


def round_longitude(value: object, *, decimals: int = DEFAULT_DECIMALS) -> float | None:
    """A longitude rounded to ``decimals``; None when it is not a valid longitude."""
    return round_coordinate(value, decimals=decimals, limit=LONGITUDE_LIMIT)


def coordinate_rounder(*, decimals: int, limit: int) -> Callable[[object], float | None]:
    """``round_coordinate`` with its settings bound: for the filter, once per policy.

    In C where the speedups are built (the same answers, without a Python call
    per coordinate: a build rounds two per event).
    """
    if _speedups is not None and type(decimals) is int and 0 <= decimals <= MAX_DECIMALS:
        compiled: Callable[[object], float | None] = _speedups.CoordinateRounder(decimals, limit)
        return compiled

    def rounded(value: object) -> float | None:
        return round_coordinate(value, decimals=decimals, limit=limit)

    return rounded
