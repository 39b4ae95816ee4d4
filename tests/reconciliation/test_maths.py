"""The reconciliation arithmetic: difference, percentage and status."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.reconciliation.maths import MAX_PCT, Comparison, Status, discrepancy
from gateway.reconciliation.models import Discrepancy

TEN = Decimal("10")


def test_statuses_are_the_values_of_the_discrepancy_model() -> None:
    assert {s.value for s in Status} == set(Discrepancy.Status.values)


def test_no_partner_report_is_missing_with_no_difference() -> None:
    assert discrepancy(partner_value=None, delivered=100, tolerance_pct=TEN) == Comparison(
        None, None, Status.MISSING_PARTNER_REPORT
    )


def test_a_missing_report_stays_missing_even_when_nothing_was_delivered() -> None:
    result = discrepancy(partner_value=None, delivered=0, tolerance_pct=TEN)
    assert result.status == Status.MISSING_PARTNER_REPORT


def test_partner_counts_with_nothing_delivered_is_no_internal_data() -> None:
    assert discrepancy(partner_value=7, delivered=0, tolerance_pct=TEN) == Comparison(
        7, None, Status.NO_INTERNAL_DATA
    )


def test_zero_reported_against_zero_delivered_agrees() -> None:
    assert discrepancy(partner_value=0, delivered=0, tolerance_pct=TEN) == Comparison(
        0, Decimal("0.00"), Status.WITHIN_TOLERANCE
    )


def test_zero_reported_against_deliveries_is_minus_100_percent() -> None:
    assert discrepancy(partner_value=0, delivered=50, tolerance_pct=TEN) == Comparison(
        -50, Decimal("-100.00"), Status.EXCEEDS_TOLERANCE
    )


@pytest.mark.parametrize(
    ("partner_value", "delivered", "difference", "pct", "status"),
    [
        (100, 100, 0, "0.00", Status.WITHIN_TOLERANCE),
        (110, 100, 10, "10.00", Status.WITHIN_TOLERANCE),  # exactly at tolerance
        (90, 100, -10, "-10.00", Status.WITHIN_TOLERANCE),
        (111, 100, 11, "11.00", Status.EXCEEDS_TOLERANCE),
        (89, 100, -11, "-11.00", Status.EXCEEDS_TOLERANCE),
        (1, 3, -2, "-66.67", Status.EXCEEDS_TOLERANCE),
        (2, 3, -1, "-33.33", Status.EXCEEDS_TOLERANCE),
    ],
)
def test_difference_is_partner_minus_delivered_relative_to_delivered(
    partner_value: int, delivered: int, difference: int, pct: str, status: Status
) -> None:
    result = discrepancy(partner_value=partner_value, delivered=delivered, tolerance_pct=TEN)
    assert result == Comparison(difference, Decimal(pct), status)


def test_the_rounded_percentage_decides_the_status() -> None:
    # 10.004 % rounds to 10.00, the number the admin shows, so it is within 10 %.
    result = discrepancy(partner_value=110_004, delivered=100_000, tolerance_pct=TEN)
    assert result.difference_pct == Decimal("10.00")
    assert result.status == Status.WITHIN_TOLERANCE


def test_percentages_round_half_up_to_two_places() -> None:
    result = discrepancy(partner_value=200_001, delivered=200_000, tolerance_pct=TEN)
    assert result.difference_pct == Decimal("0.00")
    result = discrepancy(partner_value=20_001, delivered=1_600_000, tolerance_pct=TEN)
    # (20001 - 1600000) / 1600000 = -98.7499375 %
    assert result.difference_pct == Decimal("-98.75")


def test_a_zero_tolerance_accepts_only_exact_agreement() -> None:
    assert discrepancy(partner_value=5, delivered=5, tolerance_pct=Decimal(0)).status == (
        Status.WITHIN_TOLERANCE
    )
    assert discrepancy(partner_value=1001, delivered=1000, tolerance_pct=Decimal(0)).status == (
        Status.EXCEEDS_TOLERANCE
    )


def test_a_huge_percentage_is_capped_to_fit_the_column() -> None:
    result = discrepancy(partner_value=10**12, delivered=1, tolerance_pct=TEN)
    assert result.difference == 10**12 - 1
    assert result.difference_pct == MAX_PCT
    assert result.status == Status.EXCEEDS_TOLERANCE
