"""Reconciliation admin: readable, read-only, and one click from a row to its evidence."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html import unescape

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from gateway.reconciliation.models import Discrepancy, PartnerReport
from gateway.reconciliation.services import reconcile_partner
from partners.models import Feed, Partner
from tests.reconciliation.builders import make_batch, make_exposure

pytestmark = pytest.mark.django_db

NOV_24 = date(2026, 11, 24)
CHANGELIST = "admin:reconciliation_discrepancy_changelist"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("eng", "eng@example.com", "pw-eng-1"))
    return client


@pytest.fixture
def discrepancy(partner: Partner, push_feed: Feed) -> Discrepancy:
    make_exposure(occurred_at=datetime(2026, 11, 24, 17, tzinfo=UTC))  # the 24th in New York
    make_exposure(occurred_at=datetime(2026, 11, 25, 3, tzinfo=UTC))  # the 24th, 22:00 locally
    make_exposure(occurred_at=datetime(2026, 11, 25, 6, tzinfo=UTC))  # the 25th
    make_exposure(occurred_at=datetime(2026, 11, 24, 17, tzinfo=UTC), campaign_id="cmp-2")
    # Counted by no impressions row, so shown by no impressions link.
    make_exposure(occurred_at=datetime(2026, 11, 24, 18, tzinfo=UTC), event_type="complete")
    make_batch(
        feed=push_feed,
        window_start=datetime(2026, 11, 24, 17, tzinfo=UTC),
        delivered={"cmp-1|2026-11-24|impression": 2, "cmp-1|2026-11-24|complete": 1},
    )
    PartnerReport.objects.create(
        partner=partner, campaign_id="cmp-1", date=NOV_24, metric="impressions", value=3
    )
    reconcile_partner(partner=partner, days=[NOV_24], now=datetime(2026, 11, 25, tzinfo=UTC))
    return Discrepancy.objects.get(campaign_id="cmp-1")


def _link(html: str, label: str) -> str:
    match = re.search(rf'<a href="([^"]+)">{label}</a>', html)
    assert match, f"no {label} link"
    return unescape(match.group(1))


def test_the_changelist_shows_counts_and_a_coloured_status(
    staff_client: Client, discrepancy: Discrepancy
) -> None:
    response = staff_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Exceeds tolerance" in html
    assert "background:#dc3545" in html
    assert "50.00" in html


def test_filters_and_search_narrow_the_list(staff_client: Client, discrepancy: Discrepancy) -> None:
    url = reverse(CHANGELIST)
    by_status = staff_client.get(url, {"status__exact": "missing_partner_report"})
    assert [r.campaign_id for r in by_status.context["cl"].result_list] == ["cmp-2"]
    by_search = staff_client.get(url, {"q": "cmp-1"})
    assert [r.campaign_id for r in by_search.context["cl"].result_list] == ["cmp-1"]


def test_the_batches_link_opens_the_partners_batches(
    staff_client: Client, partner: Partner, discrepancy: Discrepancy
) -> None:
    html = staff_client.get(reverse(CHANGELIST)).content.decode()
    url = _link(html, "batches")
    assert f"feed__partner__id__exact={partner.pk}" in url
    response = staff_client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1


def test_the_exposures_link_opens_the_campaigns_impressions_of_that_local_day(
    staff_client: Client, discrepancy: Discrepancy
) -> None:
    url = _link(staff_client.get(reverse(CHANGELIST), {"q": "cmp-1"}).content.decode(), "exposures")
    response = staff_client.get(url)
    assert response.status_code == 200
    shown = response.context["cl"].result_list
    assert sorted(e.occurred_at for e in shown) == [
        datetime(2026, 11, 24, 17, tzinfo=UTC),
        datetime(2026, 11, 25, 3, tzinfo=UTC),
    ]


def test_discrepancies_are_read_only_even_for_superusers(
    staff_client: Client, discrepancy: Discrepancy
) -> None:
    change_url = reverse("admin:reconciliation_discrepancy_change", args=[discrepancy.pk])
    assert staff_client.get(reverse("admin:reconciliation_discrepancy_add")).status_code == 403
    assert staff_client.get(change_url).status_code == 200
    assert staff_client.post(change_url, {"partner_value": "1"}).status_code == 403
    delete_url = reverse("admin:reconciliation_discrepancy_delete", args=[discrepancy.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403
    discrepancy.refresh_from_db()
    assert discrepancy.partner_value == 3


def test_a_partner_manager_with_view_permission_can_read_discrepancies(
    discrepancy: Discrepancy,
) -> None:
    manager = User.objects.create_user("manager", password="pw-manager-1", is_staff=True)
    manager.user_permissions.add(
        Permission.objects.get(codename="view_discrepancy"),
        Permission.objects.get(codename="view_partnerreport"),
    )
    client = Client()
    client.force_login(manager)
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(reverse("admin:reconciliation_partnerreport_changelist")).status_code == 200


def test_partner_reports_are_listed_searchable_and_read_only(
    staff_client: Client, discrepancy: Discrepancy
) -> None:
    url = reverse("admin:reconciliation_partnerreport_changelist")
    response = staff_client.get(url, {"q": "cmp-1", "metric__exact": "impressions"})
    assert response.status_code == 200
    assert [r.value for r in response.context["cl"].result_list] == [3]
    assert staff_client.get(reverse("admin:reconciliation_partnerreport_add")).status_code == 403
