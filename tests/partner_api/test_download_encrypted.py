"""Downloads of an encrypted pull feed: the JWE text, signed as sent, decrypting to the body."""

from __future__ import annotations

import gzip

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from gateway.delivery.encryption import JOSE_CONTENT_TYPE, decrypt_body
from gateway.delivery.models import Batch
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.factories import make_feed
from tests.partner_api.builders import make_ready_batch, ndjson, response_body

pytestmark = pytest.mark.django_db

RECORDS = [{"event_id": "evt-1", "campaign_id": "cmp-1"}]


@pytest.fixture
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def encrypted_feed(partner: Partner, private_key: rsa.RSAPrivateKey) -> Feed:
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return make_feed(
        partner=partner,
        name="encrypted",
        mode=Feed.Mode.PULL,
        encryption=Feed.Encryption.RSA_OAEP_256,
        encryption_public_key=public_pem.decode(),
    )


def test_an_encrypted_feed_downloads_as_jwe_signed_as_sent(
    partner: Partner, partner_client: APIClient, encrypted_feed: Feed, private_key
) -> None:
    batch = make_ready_batch(feed=encrypted_feed, records=RECORDS)

    response = partner_client.get(f"/api/v1/partner/batches/{batch.id}/download")

    assert response.status_code == 200
    assert response["Content-Type"] == JOSE_CONTENT_TYPE
    assert not response.has_header("Content-Encoding")
    token = response_body(response)
    assert int(response["Content-Length"]) == len(token)
    secret = signing_secret_current(partner_id=partner.pk)
    headers = {name: response[name] for name in ("webhook-id", "webhook-timestamp")}
    headers["webhook-signature"] = response["webhook-signature"]
    Webhook(secret).verify(token.decode(), headers, json_parse=False)
    assert gzip.decompress(decrypt_body(token, private_key)) == ndjson(RECORDS)


def test_the_listing_says_an_encrypted_download_is_jose(
    partner_client: APIClient, encrypted_feed: Feed
) -> None:
    make_ready_batch(feed=encrypted_feed, records=RECORDS)

    (item,) = partner_client.get("/api/v1/partner/batches").json()["results"]

    assert (item["content_type"], item["content_encoding"]) == (JOSE_CONTENT_TYPE, "identity")


def test_a_key_that_cannot_encrypt_is_a_problem_not_a_clear_text_download(
    partner_client: APIClient, encrypted_feed: Feed
) -> None:
    batch = make_ready_batch(feed=encrypted_feed, records=RECORDS)
    Feed.objects.filter(pk=encrypted_feed.pk).update(encryption_public_key="not a key")

    response = partner_client.get(f"/api/v1/partner/batches/{batch.id}/download")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "encryption_failed"
    assert Batch.objects.get(pk=batch.pk).first_downloaded_at is None
