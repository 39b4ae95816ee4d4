"""Every admin page a partner manager or engineer opens renders, with data present."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from partners.models import ApiKey, Partner
from tests.factories import make_feed, make_partner

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("manager", "manager@example.com", "pw-manager-1")
    client = Client()
    client.force_login(user)
    return client


def _model_admin_urls() -> list[tuple[str, str]]:
    return [
        (model._meta.app_label, model._meta.model_name)
        for model in admin.site._registry
        if model._meta.app_label not in {"auth"}
    ]


@pytest.mark.parametrize(("app_label", "model_name"), _model_admin_urls())
def test_changelist_and_add_pages_render(staff_client: Client, app_label: str, model_name: str):
    partner = make_partner(slug="nielsen-test")
    make_feed(partner=partner)
    response = staff_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert response.status_code == 200
    add = staff_client.get(reverse(f"admin:{app_label}_{model_name}_add"))
    assert add.status_code in {200, 403}


def test_adding_a_partner_shows_its_signing_secret_once(staff_client: Client) -> None:
    response = staff_client.post(
        reverse("admin:partners_partner_add"),
        {
            "slug": "acme",
            "name": "Acme",
            "reporting_time_zone": "Europe/Paris",
            "status": "active",
            "reconciliation_tolerance_pct": "10",
            **{
                f"{prefix}-{field}": value
                for prefix in (
                    "consent_rule",
                    "activity_rules",
                    "feeds",
                    "campaign_assignments",
                    "api_keys",
                    "signing_secrets",
                )
                for field, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))
            },
        },
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("whsec_" in m for m in messages), messages
    partner = Partner.objects.get(slug="acme")
    assert partner.consent_rule.required_tcf_purposes == [1, 7]
    # The secret is shown, not stored: the stored row holds ciphertext only.
    secret = next(m for m in messages if "whsec_" in m).split(": ")[1].split()[0]
    assert secret not in partner.signing_secrets.get().secret_encrypted


def test_adding_an_api_key_in_admin_shows_the_plaintext_once(staff_client: Client) -> None:
    partner = make_partner()
    response = staff_client.post(
        reverse("admin:partners_apikey_add"),
        {"partner": partner.pk, "name": "reporting"},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("mgk_" in m for m in messages), messages
    key = ApiKey.objects.get(partner=partner, name="reporting")
    assert len(key.key_hash) == 64
