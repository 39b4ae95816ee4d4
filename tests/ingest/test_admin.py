"""Admin pages for exposures and ingest tokens (gateway.ingest.admin)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from gateway.ingest.models import Exposure, IngestToken
from gateway.ingest.selectors import ingest_token_authenticate
from gateway.ingest.services import exposures_ingest, ingest_token_create
from tests.factories import exposure_payload

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("engineer", "engineer@example.com", "pw-engineer-1")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def exposure() -> Exposure:
    exposures_ingest(records=[exposure_payload(event_id="evt-admin", campaign_id="cmp-9")], now=NOW)
    return Exposure.objects.get(event_id="evt-admin")


# --- Ingest tokens ---------------------------------------------------------------------


def test_adding_a_token_shows_the_plaintext_once_and_stores_only_its_hash(
    staff_client: Client,
) -> None:
    response = staff_client.post(
        reverse("admin:ingest_ingesttoken_add"), {"name": "ad-server-eu"}, follow=True
    )

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    [shown] = [m for m in messages if "mgi_" in m]
    plaintext = shown.split(": ")[1].split()[0]
    token = IngestToken.objects.get()
    assert token.name == "ad-server-eu"
    assert plaintext not in token.token_hash
    assert ingest_token_authenticate(plaintext=plaintext) == token
    # The next page no longer carries it.
    again = staff_client.get(reverse("admin:ingest_ingesttoken_changelist"))
    assert plaintext not in again.content.decode()


def test_the_change_page_does_not_let_anyone_edit_the_hash_or_revocation_time(
    staff_client: Client,
) -> None:
    token, _plaintext = ingest_token_create(name="ad-server")
    url = reverse("admin:ingest_ingesttoken_change", args=[token.pk])

    response = staff_client.post(url, {"name": "renamed", "revoked_at_0": "2026-01-01"})

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.name == "renamed"
    assert token.revoked_at is None
    assert token.token_hash not in staff_client.get(url).content.decode()


def test_the_revoke_action_revokes_the_selected_tokens(staff_client: Client) -> None:
    chosen, _chosen_plaintext = ingest_token_create(name="old")
    kept, _plaintext = ingest_token_create(name="current")

    response = staff_client.post(
        reverse("admin:ingest_ingesttoken_changelist"),
        {"action": "revoke", "_selected_action": [chosen.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Revoked 1 token(s)." in [str(m) for m in response.context["messages"]]
    chosen.refresh_from_db()
    kept.refresh_from_db()
    assert chosen.revoked_at is not None
    assert kept.revoked_at is None


# --- Exposures -------------------------------------------------------------------------


def test_the_exposure_list_renders_with_filters_and_dates(
    staff_client: Client, exposure: Exposure
) -> None:
    response = staff_client.get(
        reverse("admin:ingest_exposure_changelist"), {"event_type__exact": "impression"}
    )

    assert response.status_code == 200
    assert "evt-admin" in response.content.decode()


@pytest.mark.parametrize(("term", "found"), [("evt-admin", True), ("cmp-9", True), ("evt", False)])
def test_exposure_search_matches_whole_event_or_campaign_ids(
    staff_client: Client, exposure: Exposure, term: str, found: bool
) -> None:
    response = staff_client.get(reverse("admin:ingest_exposure_changelist"), {"q": term})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == ([exposure] if found else [])


def test_an_exposure_page_shows_the_payload_pretty_printed(
    staff_client: Client, exposure: Exposure
) -> None:
    response = staff_client.get(reverse("admin:ingest_exposure_change", args=[exposure.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<pre>{\n  &quot;advertiser_id&quot;: &quot;adv-1&quot;," in html
    assert 'name="event_id"' not in html  # read-only: no input fields


def test_exposures_cannot_be_added_changed_or_deleted(
    staff_client: Client, exposure: Exposure
) -> None:
    assert staff_client.get(reverse("admin:ingest_exposure_add")).status_code == 403
    change = staff_client.post(
        reverse("admin:ingest_exposure_change", args=[exposure.pk]), {"event_id": "evt-edited"}
    )
    assert change.status_code == 403
    delete = staff_client.post(
        reverse("admin:ingest_exposure_delete", args=[exposure.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    exposure.refresh_from_db()
    assert exposure.event_id == "evt-admin"
