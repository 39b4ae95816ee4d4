"""GET /.well-known/partners/<slug>/jwks.json: public Ed25519 keys, never HMAC secrets."""

from __future__ import annotations

import base64
import gzip
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from partners.models import Feed, Partner, SigningSecret
from partners.services import signing_key_revoke, signing_key_rotate
from tests.partner_api.builders import make_ready_batch, response_body

pytestmark = pytest.mark.django_db

V1A = SigningSecret.Algorithm.ED25519


def _jwks_url(slug: str) -> str:
    return f"/.well-known/partners/{slug}/jwks.json"


def _public_key_from_x(x: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


def test_it_publishes_a_v1a_key_as_an_rfc_8037_jwk_without_authentication(
    partner: Partner,
) -> None:
    issued = signing_key_rotate(partner=partner, algorithm=V1A)

    response = Client().get(_jwks_url(partner.slug))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwk-set+json"
    [jwk] = response.json()["keys"]
    assert jwk["kid"] == issued.key.key_id
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    raw = base64.b64decode(issued.public_key.removeprefix("whpk_"))
    assert base64.urlsafe_b64decode(jwk["x"] + "=") == raw


def test_it_can_be_cached_by_anyone(partner: Partner) -> None:
    response = Client().get(_jwks_url(partner.slug))

    assert "public" in response["Cache-Control"]
    assert "max-age=300" in response["Cache-Control"]


def test_a_client_asking_for_plain_json_gets_the_same_document(partner: Partner) -> None:
    signing_key_rotate(partner=partner, algorithm=V1A)

    response = Client().get(_jwks_url(partner.slug), HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert len(response.json()["keys"]) == 1


def test_a_partner_with_only_hmac_keys_has_an_empty_key_set(partner: Partner) -> None:
    response = Client().get(_jwks_url(partner.slug))

    assert response.status_code == 200
    assert response.json() == {"keys": []}
    # The whsec_ secret is a shared secret: not even its id is published.
    assert partner.signing_secrets.get().key_id not in response.content.decode()


@pytest.mark.parametrize("slug", ["no-such-partner", "bad%20slug"])
def test_an_unknown_partner_is_a_problem_json_404(db: None, slug: str) -> None:
    response = Client().get(_jwks_url(slug))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "partner_not_found"


def test_keys_in_overlap_are_published_and_retired_or_revoked_ones_are_not(
    partner: Partner,
) -> None:
    now = timezone.now()
    retired = signing_key_rotate(partner=partner, algorithm=V1A, now=now - timedelta(days=3))
    overlapping = signing_key_rotate(
        partner=partner, algorithm=V1A, overlap=timedelta(days=2), now=now - timedelta(days=2)
    )
    current = signing_key_rotate(
        partner=partner, algorithm=V1A, overlap=timedelta(hours=1), now=now
    )
    revoked = signing_key_rotate(partner=partner, algorithm=V1A, overlap=timedelta(hours=1))
    signing_key_revoke(key=revoked.key)

    kids = [jwk["kid"] for jwk in Client().get(_jwks_url(partner.slug)).json()["keys"]]

    assert overlapping.key.key_id in kids and current.key.key_id in kids
    assert retired.key.key_id not in kids and revoked.key.key_id not in kids


def test_only_the_requested_partners_keys_are_published(
    partner: Partner, other_partner: Partner
) -> None:
    mine = signing_key_rotate(partner=partner, algorithm=V1A)
    theirs = signing_key_rotate(partner=other_partner, algorithm=V1A)

    kids = [jwk["kid"] for jwk in Client().get(_jwks_url(partner.slug)).json()["keys"]]

    assert kids == [mine.key.key_id]
    assert theirs.key.key_id not in kids


def test_a_download_signature_verifies_with_a_key_from_the_jwks(
    partner: Partner, partner_client: APIClient, pull_feed: Feed
) -> None:
    signing_key_rotate(partner=partner, algorithm=V1A)
    batch = make_ready_batch(feed=pull_feed)
    download = partner_client.get(f"/api/v1/partner/batches/{batch.id}/download")
    body = gzip.decompress(response_body(download))
    content = f"{download['webhook-id']}.{download['webhook-timestamp']}.".encode() + body
    [v1a] = [s for s in download["webhook-signature"].split(" ") if s.startswith("v1a,")]

    [jwk] = Client().get(_jwks_url(partner.slug)).json()["keys"]

    _public_key_from_x(jwk["x"]).verify(base64.b64decode(v1a.removeprefix("v1a,")), content)


# --- A key source plugged in by setting (keys kept in a KMS) --------------------------------

KMS_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "kid": "kms-key-1",
    "use": "sig",
    "alg": "EdDSA",
}
SOURCE = "tests.partner_api.test_jwks.kms_public_keys"
offered: list[object] = []


def kms_public_keys(*, partner: Partner, at) -> object:
    return offered[0]


@pytest.fixture
def kms_source(settings) -> list[object]:
    settings.SIGNING_PUBLIC_KEYS = SOURCE
    offered.clear()
    return offered


def test_a_key_source_named_by_the_setting_publishes_its_keys(
    partner: Partner, kms_source: list[object]
) -> None:
    kms_source.append([KMS_JWK])

    response = Client().get(_jwks_url(partner.slug))

    assert response.status_code == 200
    assert response.json() == {"keys": [KMS_JWK]}


@pytest.mark.parametrize(
    "bad",
    [
        [{**KMS_JWK, "d": "private-part"}],  # a private key: never published
        [{**KMS_JWK, "kty": "oct", "k": "c2VjcmV0"}],  # a shared secret
        [{**KMS_JWK, "crv": "X25519"}],
        [{key: value for key, value in KMS_JWK.items() if key != "kid"}],
        ["not a jwk"],
        {"keys": [KMS_JWK]},  # not a list
    ],
)
def test_a_key_source_offering_anything_but_public_ed25519_keys_publishes_nothing(
    partner: Partner, kms_source: list[object], bad: object, caplog
) -> None:
    kms_source.append(bad)

    response = Client().get(_jwks_url(partner.slug))

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "key_publication_failed"
    body = response.content.decode()
    assert "private-part" not in body and "c2VjcmV0" not in body
    assert "not published" in caplog.text
    assert "private-part" not in caplog.text
