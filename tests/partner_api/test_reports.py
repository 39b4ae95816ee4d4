"""POST /api/v1/partner/reports: all rows or none, upserted by campaign, date and metric."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.reconciliation.models import PartnerReport
from partners.models import CampaignAssignment, Partner

pytestmark = pytest.mark.django_db

URL = "/api/v1/partner/reports"


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "campaign_id": "cmp-1",
        "date": "2026-11-24",
        "metric": "impressions",
        "value": 1000,
    }
    row.update(overrides)
    return row


def _stored() -> list[tuple[str, str, date, int]]:
    return sorted(
        PartnerReport.objects.values_list("partner__slug", "campaign_id", "date", "value")
    )


def test_a_single_object_is_stored(partner: Partner, partner_client: APIClient) -> None:
    response = partner_client.post(URL, _row(), format="json")
    assert response.status_code == 200
    assert response.json() == {"created": 1, "updated": 0}
    assert _stored() == [("nielsen", "cmp-1", date(2026, 11, 24), 1000)]


def test_an_array_is_stored_row_by_row(partner: Partner, partner_client: APIClient) -> None:
    rows = [_row(), _row(campaign_id="cmp-2"), _row(date="2026-11-23", value=0)]
    response = partner_client.post(URL, rows, format="json")
    assert response.json() == {"created": 3, "updated": 0}
    assert len(_stored()) == 3


def test_posting_the_same_key_again_replaces_the_value(
    partner: Partner, partner_client: APIClient
) -> None:
    partner_client.post(URL, [_row(value=1000)], format="json")
    first = PartnerReport.objects.get()
    response = partner_client.post(
        URL, [_row(value=1200), _row(campaign_id="cmp-2")], format="json"
    )
    assert response.json() == {"created": 1, "updated": 1}
    assert _stored() == [
        ("nielsen", "cmp-1", date(2026, 11, 24), 1200),
        ("nielsen", "cmp-2", date(2026, 11, 24), 1000),
    ]
    replaced = PartnerReport.objects.get(pk=first.pk)
    assert replaced.created_at == first.created_at
    assert replaced.updated_at > first.updated_at


def test_two_partners_reporting_the_same_campaign_do_not_overwrite_each_other(
    partner_client: APIClient, other_client: APIClient
) -> None:
    partner_client.post(URL, _row(value=1), format="json")
    response = other_client.post(URL, _row(value=2), format="json")
    assert response.json() == {"created": 1, "updated": 0}
    assert _stored() == [
        ("comscore", "cmp-1", date(2026, 11, 24), 2),
        ("nielsen", "cmp-1", date(2026, 11, 24), 1),
    ]


def test_one_invalid_row_refuses_the_whole_body_with_per_index_errors(
    partner: Partner, partner_client: APIClient
) -> None:
    rows = [_row(), _row(campaign_id="cmp-2", value=-5), _row(date="tomorrow")]
    response = partner_client.post(URL, rows, format="json")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "value"), (2, "date")]
    assert _stored() == []


def test_a_date_in_the_future_of_the_partners_time_zone_is_refused(
    partner: Partner, partner_client: APIClient
) -> None:
    future = (timezone.now() + timedelta(days=2)).date().isoformat()
    response = partner_client.post(URL, _row(date=future), format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "date_in_future"


def test_a_campaign_not_assigned_to_the_partner_is_422_and_nothing_is_stored(
    partner: Partner, partner_client: APIClient
) -> None:
    # cmp-9 is assigned to the other partner only.
    rows = [_row(), _row(campaign_id="cmp-9")]
    response = partner_client.post(URL, rows, format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "campaign_not_assigned"
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(1, "campaign_not_assigned")]
    assert _stored() == []


def test_a_day_outside_the_assignment_range_counts_as_not_assigned(
    partner: Partner, partner_client: APIClient
) -> None:
    CampaignAssignment.objects.create(
        partner=partner,
        campaign_id="cmp-short",
        starts_on=date(2026, 11, 1),
        ends_on=date(2026, 11, 10),
    )
    ok = partner_client.post(URL, _row(campaign_id="cmp-short", date="2026-11-10"), format="json")
    late = partner_client.post(URL, _row(campaign_id="cmp-short", date="2026-11-11"), format="json")
    assert (ok.status_code, late.status_code) == (200, 422)
    assert late.json()["code"] == "campaign_not_assigned"


def test_naming_ones_own_partner_slug_is_accepted(
    partner: Partner, partner_client: APIClient
) -> None:
    response = partner_client.post(URL, _row(partner="nielsen"), format="json")
    assert response.status_code == 200


def test_naming_another_partner_is_403_and_nothing_is_stored(
    partner: Partner, partner_client: APIClient
) -> None:
    response = partner_client.post(URL, [_row(), _row(partner="comscore")], format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "partner_mismatch"
    assert _stored() == []


def test_more_than_1000_rows_is_refused(partner: Partner, partner_client: APIClient) -> None:
    rows = [_row(campaign_id=f"cmp-{n}") for n in range(1001)]
    response = partner_client.post(URL, rows, format="json")
    assert response.status_code == 413
    assert _stored() == []


def test_1000_rows_are_accepted(partner: Partner, partner_client: APIClient) -> None:
    for n in range(3, 11):
        CampaignAssignment.objects.create(
            partner=partner, campaign_id=f"cmp-{n}", starts_on=date(2026, 1, 1)
        )
    start = date(2026, 1, 1)
    rows = [
        _row(campaign_id=f"cmp-{n % 10 + 1}", date=(start + timedelta(days=n // 10)).isoformat())
        for n in range(1000)
    ]
    response = partner_client.post(URL, rows, format="json")
    assert response.json() == {"created": 1000, "updated": 0}


def test_a_body_that_is_not_json_is_a_400_problem(partner_client: APIClient) -> None:
    response = partner_client.post(URL, "[{", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_body"


def test_a_body_that_is_not_json_content_is_415(partner_client: APIClient) -> None:
    response = partner_client.post(URL, "campaign_id=cmp-1", content_type="text/plain")
    assert response.status_code == 415


def test_reports_cannot_be_read_back_with_get(partner_client: APIClient) -> None:
    assert partner_client.get(URL).status_code == 405
