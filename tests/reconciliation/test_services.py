"""reconcile_partner and reconcile_all: discrepancy rows computed, upserted and pruned."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from gateway.reconciliation.models import Discrepancy, PartnerReport
from gateway.reconciliation.services import (
    ReconciliationFailed,
    reconcile_all,
    reconcile_partner,
    reconcile_partners,
)
from partners.models import Feed, Partner
from tests.factories import make_partner
from tests.reconciliation.builders import make_batch, make_exposure

pytestmark = pytest.mark.django_db

NOV_23, NOV_24 = date(2026, 11, 23), date(2026, 11, 24)
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
NOON_24 = datetime(2026, 11, 24, 17, tzinfo=UTC)  # 12:00 in New York


def _report(
    partner: Partner, value: int, *, campaign_id: str = "cmp-1", day: date = NOV_24
) -> None:
    PartnerReport.objects.update_or_create(
        partner=partner,
        campaign_id=campaign_id,
        date=day,
        metric="impressions",
        defaults={"value": value},
    )


def _rows() -> dict[tuple[str, date], Discrepancy]:
    return {(row.campaign_id, row.date): row for row in Discrepancy.objects.all()}


def test_a_campaign_day_gets_all_its_counts_and_a_verdict(
    partner: Partner, push_feed: Feed
) -> None:
    for _ in range(4):
        make_exposure(occurred_at=NOON_24)
    make_exposure(occurred_at=NOON_24, consent={"gdpr": 1})  # no TC string: not eligible
    make_batch(feed=push_feed, window_start=NOON_24, delivered={"cmp-1|2026-11-24|impression": 4})
    _report(partner, 5)

    rows = reconcile_partner(partner=partner, days=[NOV_24], now=NOW)

    assert [(r.campaign_id, r.date) for r in rows] == [("cmp-1", NOV_24)]
    row = Discrepancy.objects.get()
    assert (
        row.partner_value,
        row.internal_total,
        row.internal_eligible,
        row.internal_delivered,
        row.difference,
        row.difference_pct,
        row.tolerance_pct,
        row.status,
        row.computed_at,
    ) == (5, 5, 4, 4, 1, Decimal("25.00"), Decimal("5.00"), "exceeds_tolerance", NOW)


def test_an_impressions_row_counts_no_starts_quartiles_completes_or_clicks(
    partner: Partner, push_feed: Feed
) -> None:
    funnel = ("impression", "start", "first_quartile", "midpoint", "third_quartile", "complete")
    for event_type in (*funnel, "click"):
        make_exposure(occurred_at=NOON_24, event_type=event_type)
    make_exposure(occurred_at=NOON_24, campaign_id="cmp-2", event_type="complete")
    make_batch(
        feed=push_feed,
        window_start=NOON_24,
        delivered={f"cmp-1|2026-11-24|{event_type}": 1 for event_type in (*funnel, "click")},
    )
    _report(partner, 1)

    reconcile_partner(partner=partner, days=[NOV_24], now=NOW)

    # cmp-2 had no impression: no row at all rather than a row of its completes.
    row = Discrepancy.objects.get()
    assert (row.campaign_id, row.metric) == ("cmp-1", "impressions")
    assert (row.internal_total, row.internal_eligible, row.internal_delivered) == (1, 1, 1)
    assert (row.difference, row.status) == (0, "within_tolerance")


def test_rows_exist_for_exposures_without_a_report_and_reports_without_exposures(
    partner: Partner,
) -> None:
    make_exposure(occurred_at=NOON_24)
    _report(partner, 30, campaign_id="cmp-2", day=NOV_23)
    reconcile_partner(partner=partner, days=[NOV_23, NOV_24], now=NOW)
    rows = _rows()
    assert set(rows) == {("cmp-1", NOV_24), ("cmp-2", NOV_23)}
    assert rows[("cmp-1", NOV_24)].status == Discrepancy.Status.MISSING_PARTNER_REPORT
    assert rows[("cmp-1", NOV_24)].partner_value is None
    assert rows[("cmp-2", NOV_23)].status == Discrepancy.Status.NO_INTERNAL_DATA
    assert rows[("cmp-2", NOV_23)].internal_total == 0


def test_days_not_asked_for_are_left_alone(partner: Partner) -> None:
    make_exposure(occurred_at=NOON_24)
    make_exposure(occurred_at=NOON_24 - timedelta(days=1))
    reconcile_partner(partner=partner, days=[NOV_23], now=NOW)
    assert set(_rows()) == {("cmp-1", NOV_23)}


def test_running_again_updates_the_same_rows(partner: Partner, push_feed: Feed) -> None:
    make_exposure(occurred_at=NOON_24)
    make_batch(feed=push_feed, window_start=NOON_24, delivered={"cmp-1|2026-11-24|impression": 100})
    _report(partner, 50)
    reconcile_partner(partner=partner, days=[NOV_24], now=NOW)
    first_pk = Discrepancy.objects.get().pk

    _report(partner, 102)
    later = NOW + timedelta(minutes=15)
    reconcile_partner(partner=partner, days=[NOV_24], now=later)

    row = Discrepancy.objects.get()
    assert row.pk == first_pk
    assert (row.partner_value, row.difference, row.status, row.computed_at) == (
        102,
        2,
        "within_tolerance",
        later,
    )


def test_a_row_whose_data_is_gone_is_deleted_on_the_next_run(partner: Partner) -> None:
    _report(partner, 10)
    _report(partner, 10, campaign_id="cmp-2")
    reconcile_partner(partner=partner, days=[NOV_24], now=NOW)
    PartnerReport.objects.filter(campaign_id="cmp-2").delete()
    reconcile_partner(partner=partner, days=[NOV_24], now=NOW + timedelta(minutes=1))
    assert set(_rows()) == {("cmp-1", NOV_24)}


def test_another_partners_rows_are_never_touched(partner: Partner) -> None:
    other = make_partner(slug="comscore")
    _report(other, 10)
    reconcile_partner(partner=other, days=[NOV_24], now=NOW)
    reconcile_partner(partner=partner, days=[NOV_24], now=NOW)
    assert Discrepancy.objects.get().partner == other


def test_no_days_is_nothing_to_do(partner: Partner) -> None:
    assert reconcile_partner(partner=partner, days=[], now=NOW) == []


@override_settings(RECONCILIATION_LOOKBACK_DAYS=2)
def test_reconcile_all_covers_active_partners_over_the_lookback_days(partner: Partner) -> None:
    paused = make_partner(slug="paused", status=Partner.Status.PAUSED)
    _report(paused, 1)
    make_exposure(occurred_at=NOON_24)  # the 24th: yesterday in New York, inside 2 days
    make_exposure(occurred_at=NOON_24 - timedelta(days=1))  # the 23rd: outside
    rows = reconcile_all(now=NOW)
    assert [(r.partner.slug, r.campaign_id, r.date) for r in rows] == [("nielsen", "cmp-1", NOV_24)]


def test_one_failing_partner_does_not_stop_the_others(
    partner: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = make_partner(slug="broken")
    _report(partner, 1)
    _report(broken, 1)
    real = reconcile_partner

    def flaky(*, partner: Partner, **kwargs: object) -> list[Discrepancy]:
        if partner.slug == "broken":
            raise RuntimeError("boom")
        return real(partner=partner, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("gateway.reconciliation.services.reconcile_partner", flaky)
    with pytest.raises(ReconciliationFailed, match="broken"):
        reconcile_partners(partners=[broken, partner], now=NOW, day_count=2)
    assert [r.partner.slug for r in Discrepancy.objects.all()] == ["nielsen"]
