"""Encrypted push feeds: the body travels as JWE, and the signature covers that text as sent."""

from __future__ import annotations

import gzip

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from standardwebhooks.webhooks import Webhook

from gateway.delivery.encryption import JOSE_CONTENT_TYPE, decrypt_body
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_send
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_shared_store")]

URL = "http://127.0.0.1:9/ingest"
RECORDS = [{"campaign_id": "cmp-1", "event_id": "evt-1"}]


@pytest.fixture
def private_key() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


@pytest.fixture
def encrypted_feed(partner: Partner, private_key: x25519.X25519PrivateKey) -> Feed:
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return make_feed(
        partner=partner,
        endpoint_url=URL,
        encryption=Feed.Encryption.X25519,
        encryption_public_key=public_pem.decode(),
        encryption_key_id="partner-key-1",
    )


@responses.activate
def test_the_body_is_jwe_signed_as_sent_and_decrypts_to_the_gzip_body(
    encrypted_feed: Feed, private_key, queued: QueuedTasks
):
    responses.add(responses.POST, URL, status=200)
    batch = make_batch(feed=encrypted_feed, status=Batch.Status.READY, records=RECORDS)

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None and attempt.outcome == DeliveryAttempt.Outcome.SUCCEEDED
    request = responses.calls[0].request
    assert request.headers["Content-Type"] == JOSE_CONTENT_TYPE
    assert "Content-Encoding" not in request.headers
    token = request.body
    assert token.isascii() and token.count(b".") == 4
    # The reference library verifies the ciphertext before anything is decrypted.
    secret = signing_secret_current(partner_id=encrypted_feed.partner_id)
    Webhook(secret).verify(token.decode(), dict(request.headers), json_parse=False)
    plaintext = gzip.decompress(decrypt_body(token, private_key))
    assert plaintext == b'{"campaign_id":"cmp-1","event_id":"evt-1"}\n'


@responses.activate
def test_a_key_that_cannot_encrypt_fails_the_batch_rather_than_send_plaintext(
    partner: Partner, queued: QueuedTasks
):
    feed = make_feed(
        partner=partner,
        endpoint_url=URL,
        encryption=Feed.Encryption.X25519,
        encryption_public_key="-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
    )
    batch = make_batch(feed=feed, status=Batch.Status.READY, records=RECORDS)

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None
    assert attempt.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE
    assert "encrypt" in attempt.error
    assert len(responses.calls) == 0
