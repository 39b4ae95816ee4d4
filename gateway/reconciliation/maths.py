"""Reconciliation arithmetic, with no Django import so it is trivial to test and reuse.

Status values equal ``Discrepancy.Status`` values (a test keeps them in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

CENT = Decimal("0.01")
# Discrepancy.difference_pct is DECIMAL(9, 2); a partner reporting millions
# against a handful delivered must not overflow the column.
MAX_PCT = Decimal("9999999.99")


class Status(StrEnum):
    WITHIN_TOLERANCE = "within_tolerance"
    EXCEEDS_TOLERANCE = "exceeds_tolerance"
    MISSING_PARTNER_REPORT = "missing_partner_report"
    NO_INTERNAL_DATA = "no_internal_data"


@dataclass(frozen=True)
class Comparison:
    """Partner count against delivered count: absolute and relative gap, and a verdict."""

    difference: int | None
    difference_pct: Decimal | None
    status: Status


def discrepancy(*, partner_value: int | None, delivered: int, tolerance_pct: Decimal) -> Comparison:
    """Compare what the partner counted with what we delivered to it.

    ``difference`` is partner minus delivered; ``difference_pct`` is that
    relative to delivered, rounded half-up to 2 places. The rounded value
    decides the status, so the number an engineer sees and the verdict agree.
    """
    if partner_value is None:
        return Comparison(None, None, Status.MISSING_PARTNER_REPORT)
    difference = partner_value - delivered
    if delivered == 0:
        if partner_value > 0:
            return Comparison(difference, None, Status.NO_INTERNAL_DATA)
        # Both sides saw nothing: agreement, not an undefined ratio.
        return Comparison(0, Decimal("0.00"), Status.WITHIN_TOLERANCE)
    pct = (Decimal(difference) * 100 / Decimal(delivered)).quantize(CENT, rounding=ROUND_HALF_UP)
    pct = max(-MAX_PCT, min(MAX_PCT, pct))
    status = Status.WITHIN_TOLERANCE if abs(pct) <= tolerance_pct else Status.EXCEEDS_TOLERANCE
    return Comparison(difference, pct, status)
