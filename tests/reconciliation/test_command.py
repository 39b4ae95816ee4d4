"""manage.py reconcile: options, and a table an engineer can read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from gateway.reconciliation.models import Discrepancy, PartnerReport
from partners.models import Feed, Partner
from tests.factories import make_partner
from tests.reconciliation.builders import make_batch, make_exposure

pytestmark = pytest.mark.django_db

NOON_24 = datetime(2026, 11, 24, 17, tzinfo=UTC)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue()


def test_it_prints_one_table_row_per_campaign_day(partner: Partner, push_feed: Feed) -> None:
    for _ in range(3):
        make_exposure(occurred_at=NOON_24)
    make_batch(feed=push_feed, window_start=NOON_24, delivered={"cmp-1|2026-11-24|impression": 3})
    PartnerReport.objects.create(
        partner=partner, campaign_id="cmp-1", date=date(2026, 11, 24), metric="impressions", value=4
    )
    PartnerReport.objects.create(
        partner=partner, campaign_id="cmp-2", date=date(2026, 11, 24), metric="impressions", value=9
    )

    output = _run("--partner", "nielsen", "--date", "2026-11-24")

    lines = output.splitlines()
    assert lines[0].split() == [
        "Partner", "Campaign", "Date", "Partner", "value", "Total", "Eligible", "Delivered",
        "Difference", "Diff", "%", "Status",
    ]  # fmt: skip
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == [
        "nielsen", "cmp-1", "2026-11-24", "4", "3", "3", "3", "1", "33.33", "exceeds_tolerance"
    ]  # fmt: skip
    assert lines[3].split() == [
        "nielsen", "cmp-2", "2026-11-24", "9", "0", "0", "0", "9", "-", "no_internal_data"
    ]  # fmt: skip
    assert "2 rows, 2 not within tolerance." in output
    assert Discrepancy.objects.count() == 2


def test_columns_line_up(partner: Partner) -> None:
    make_exposure(occurred_at=NOON_24, campaign_id="cmp-2")
    output = _run("--date", "2026-11-24")
    header, _rule, row = output.splitlines()[:3]
    assert header.index("Status") == row.index("missing_partner_report")
    # Numbers are right-aligned under their heading.
    assert row[: header.index("Eligible") + len("Eligible")].endswith(" 1")


def test_days_counts_back_from_date(partner: Partner) -> None:
    for back in range(4):
        make_exposure(occurred_at=NOON_24 - timedelta(days=back))
    output = _run("--partner", "nielsen", "--date", "2026-11-24", "--days", "3")
    assert "2026-11-21" not in output
    assert all(f"2026-11-{d}" in output for d in (22, 23, 24))


@override_settings(RECONCILIATION_LOOKBACK_DAYS=2)
def test_without_options_it_covers_active_partners_over_the_lookback(partner: Partner) -> None:
    today_noon = timezone.now().replace(hour=17, minute=0, second=0, microsecond=0)
    make_exposure(occurred_at=today_noon - timedelta(days=1))
    make_exposure(occurred_at=today_noon - timedelta(days=5))
    output = _run()
    assert "1 rows" in output


def test_it_says_so_when_there_is_nothing_to_reconcile(partner: Partner) -> None:
    assert "Nothing to reconcile" in _run("--date", "2026-11-24")


def test_a_named_partner_is_reconciled_whatever_its_status(db: None) -> None:
    paused = make_partner(slug="paused", status=Partner.Status.PAUSED)
    PartnerReport.objects.create(
        partner=paused, campaign_id="cmp-1", date=date(2026, 11, 24), metric="impressions", value=1
    )
    assert "paused" in _run("--partner", "paused", "--date", "2026-11-24")
    assert "Nothing to reconcile" in _run("--date", "2026-11-24")


def test_an_unknown_partner_is_an_error(db: None) -> None:
    with pytest.raises(CommandError, match="nobody"):
        _run("--partner", "nobody")


@pytest.mark.parametrize("args", [["--days", "0"], ["--days", "x"], ["--date", "24/11/2026"]])
def test_bad_options_are_errors(db: None, args: list[str]) -> None:
    with pytest.raises(CommandError):
        _run(*args)
