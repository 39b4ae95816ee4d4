"""Partner API authentication: bearer API keys, and 401/403 problems when they are wrong."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from partners.models import ApiKey, Partner
from partners.services import api_key_revoke
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/partner/batches"


def _get(authorization: str | None) -> object:
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get(URL)


def test_the_url_of_the_batch_list_is_the_documented_one() -> None:
    assert reverse("partner_api:batch-list") == URL


def test_a_request_without_credentials_gets_401_problem_json_with_a_bearer_challenge() -> None:
    response = _get(None)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "missing_credentials"


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer a b", "Basic dXNlcjpwdw=="])
def test_a_malformed_authorization_header_gets_401(header: str) -> None:
    response = _get(header)
    assert response.status_code == 401
    assert response.json()["code"] == "malformed_credentials"


def test_an_unknown_key_gets_401_invalid_credentials(partner: Partner) -> None:
    real = make_api_key(partner=partner)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for key in (forged, "mgk_000000000000_nothing", "not-a-key"):
        response = _get(f"Bearer {key}")
        assert response.status_code == 401, key
        assert response.json()["code"] == "invalid_credentials"


def test_a_revoked_key_gets_401(partner: Partner) -> None:
    plaintext = make_api_key(partner=partner)
    api_key_revoke(api_key=ApiKey.objects.get(partner=partner))
    response = _get(f"Bearer {plaintext}")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_an_offboarded_partner_gets_403_even_with_a_valid_key(partner: Partner) -> None:
    plaintext = make_api_key(partner=partner)
    partner.status = Partner.Status.OFFBOARDED
    partner.save(update_fields=["status"])
    response = _get(f"Bearer {plaintext}")
    assert response.status_code == 403
    assert response.json()["code"] == "partner_offboarded"


def test_a_valid_key_is_accepted_and_its_last_use_recorded(partner: Partner) -> None:
    plaintext = make_api_key(partner=partner)
    response = _get(f"Bearer {plaintext}")
    assert response.status_code == 200
    assert ApiKey.objects.get(partner=partner).last_used_at is not None


def test_a_paused_partner_can_still_pull_what_was_built(partner: Partner) -> None:
    plaintext = make_api_key(partner=partner)
    partner.status = Partner.Status.PAUSED
    partner.save(update_fields=["status"])
    assert _get(f"Bearer {plaintext}").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/partner/batches/00000000-0000-0000-0000-000000000000"),
        ("get", "/api/v1/partner/batches/00000000-0000-0000-0000-000000000000/download"),
        ("post", "/api/v1/partner/reports"),
    ],
)
def test_every_partner_endpoint_requires_a_key(method: str, path: str) -> None:
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
