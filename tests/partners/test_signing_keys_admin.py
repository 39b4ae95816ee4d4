"""Signing keys in the admin: rotate, choose the scheme, see ids and states, secrets shown once."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from partners.models import Partner, SigningSecret
from partners.secrets import decrypt
from tests.factories import make_partner

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("keys", "keys@example.com", "pw-keys-1")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def partner() -> Partner:
    return make_partner(slug="nielsen")


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_rotate_action_shows_the_new_secret_once_and_keeps_the_old_key_signing(
    staff_client: Client, partner: Partner
) -> None:
    [old] = partner.signing_secrets.all()

    response = staff_client.post(
        reverse("admin:partners_partner_changelist"),
        {"action": "rotate_signing_keys", "_selected_action": [partner.pk]},
        follow=True,
    )

    [message] = [m for m in _messages(response) if "whsec_" in m]
    shown = message.split(": ")[1].split()[0]
    new = partner.signing_secrets.exclude(pk=old.pk).get()
    assert decrypt(new.secret_encrypted) == shown and shown not in new.secret_encrypted
    assert new.key_id in message
    old.refresh_from_db()
    assert old.retires_at is not None and old.revoked_at is None


def test_adding_a_v1a_key_shows_the_public_key_and_the_jwks_url_never_the_private_key(
    staff_client: Client, partner: Partner
) -> None:
    response = staff_client.post(
        reverse("admin:partners_signingsecret_add"),
        {"partner": partner.pk, "algorithm": "v1a", "overlap_hours": ""},
        follow=True,
    )

    key = partner.signing_secrets.get(algorithm="v1a")
    [message] = [m for m in _messages(response) if "whpk_" in m]
    assert key.key_id in message
    assert key.public_key in message
    assert "/.well-known/partners/nielsen/jwks.json" in message
    assert "whsk_" not in " ".join(_messages(response))
    # Adding a v1a key leaves the v1 key signing: the partner chose both schemes.
    assert partner.signing_secrets.get(algorithm="v1").retires_at is None


def test_adding_a_key_with_no_overlap_retires_the_old_one_at_once(
    staff_client: Client, partner: Partner
) -> None:
    [old] = partner.signing_secrets.all()

    staff_client.post(
        reverse("admin:partners_signingsecret_add"),
        {"partner": partner.pk, "algorithm": "v1", "overlap_hours": "0"},
        follow=True,
    )

    old.refresh_from_db()
    new = partner.signing_secrets.exclude(pk=old.pk).get()
    assert old.retires_at == new.activates_at


def test_the_key_list_shows_ids_algorithms_and_states(
    staff_client: Client, partner: Partner
) -> None:
    staff_client.post(
        reverse("admin:partners_signingsecret_add"),
        {"partner": partner.pk, "algorithm": "v1", "overlap_hours": "2"},
    )

    page = staff_client.get(reverse("admin:partners_signingsecret_changelist")).content.decode()

    for key in SigningSecret.objects.filter(partner=partner):
        assert key.key_id in page
    assert "Overlap (still signing until it retires)" in page
    assert "Active" in page
    assert "v1: HMAC-SHA256" in page


def test_the_partner_page_lists_its_keys_with_their_state(
    staff_client: Client, partner: Partner
) -> None:
    [key] = partner.signing_secrets.all()

    page = staff_client.get(reverse("admin:partners_partner_change", args=[partner.pk]))

    assert page.status_code == 200
    assert key.key_id in page.content.decode()
    assert "Active" in page.content.decode()


def test_the_revoke_action_stops_a_key_at_once(staff_client: Client, partner: Partner) -> None:
    [key] = partner.signing_secrets.all()

    staff_client.post(
        reverse("admin:partners_signingsecret_changelist"),
        {"action": "revoke_now", "_selected_action": [key.pk]},
    )

    key.refresh_from_db()
    assert key.revoked_at is not None
