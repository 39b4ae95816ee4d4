"""A build signs a push batch for its first attempt; only that attempt may send the signatures."""

from __future__ import annotations

import gzip
import io
import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from gateway.delivery import body, signing
from gateway.delivery import first_signature as first_signature_module
from gateway.delivery import parts as parts_module
from gateway.delivery.body import BodyWriter
from gateway.delivery.first_signature import FirstSignature, FirstSigning
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.services import batch_build, batch_send
from gateway.delivery.storage import batch_storage, body_open, body_save
from partners.models import Feed, Partner, SigningSecret
from partners.services import signing_key_revoke, signing_key_rotate, signing_secret_current
from tests.delivery.builders import (
    WINDOW_START,
    batch_body,
    first_signature_verified,
    make_batch,
    make_exposure,
)
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_feed

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"
IN_WINDOW = WINDOW_START + timedelta(seconds=30)


def built(feed: Feed) -> Batch:
    """A batch of ``feed`` built from one exposure, as the dispatcher's build task would."""
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=feed)
    batch_build(batch_id=batch.pk)
    return Batch.objects.select_related("feed").get(pk=batch.pk)


def first_of(batch: Batch) -> FirstSignature:
    first = FirstSignature.from_json(batch.first_signature)
    assert first is not None
    return first


def redate(batch: Batch, *, seconds_ago: int) -> int:
    """Sign the batch's body again as its build would have ``seconds_ago``; the new timestamp."""
    first = first_of(batch)
    timestamp = int(time.time()) - seconds_ago
    secret = signing_secret_current(partner_id=batch.feed.partner_id)
    signature = signing.sign(
        secret=secret, msg_id=str(batch.pk), timestamp=timestamp, payload=batch_body(batch)
    )
    moved = FirstSignature(
        timestamp=timestamp,
        key_ids=first.key_ids,
        signatures=(signature,),
        stored_sha256=first.stored_sha256,
    )
    Batch.objects.filter(pk=batch.pk).update(first_signature=moved.as_json())
    return timestamp


def sent_headers() -> dict[str, str]:
    return dict(responses.calls[-1].request.headers)


def verify_sent(partner: Partner, *secrets: str) -> dict[str, str]:
    """Verify the last request as a partner holding ``secrets`` would (default: the current
    secret), each on its own; its headers."""
    request = responses.calls[-1].request
    headers = dict(request.headers)
    body = gzip.decompress(request.body)
    for secret in secrets or (signing_secret_current(partner_id=partner.pk),):
        Webhook(secret).verify(body, headers, json_parse=False)
    return headers


def test_the_build_signs_the_ndjson_it_stored_dated_when_it_signed(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    before = int(time.time())
    batch = built(push_feed)

    first = first_signature_verified(batch, secret=signing_secret_current(partner_id=partner.pk))
    assert before <= first.timestamp <= int(time.time())
    assert first.key_ids == tuple(
        SigningSecret.objects.filter(partner=partner).values_list("key_id", flat=True)
    )
    with body_open(batch.body_path) as stored:
        assert first.stored_sha256 == first_signature_module.stored_body_sha256(stored)


def test_the_build_signs_as_it_writes_and_never_reads_the_stored_body_back(
    push_feed: Feed, partner: Partner, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With S3 as body storage, reading back would download every body just uploaded.
    def no_reading(name: str, mode: str = "rb"):
        raise AssertionError(f"the build read {name} back")

    monkeypatch.setattr(body, "CHUNK_BYTES", 1024)  # several chunks of NDJSON, from a few rows
    for n in range(40):
        make_exposure(received_at=IN_WINDOW, event_id=f"evt-{n:06d}-" + "x" * 100)
    batch = make_batch(feed=push_feed)

    with monkeypatch.context() as building:
        building.setattr(batch_storage(), "open", no_reading)
        batch_build(batch_id=batch.pk)

    batch = Batch.objects.get(pk=batch.pk)
    first_signature_verified(batch, secret=signing_secret_current(partner_id=partner.pk))


class FailingSigner:
    """A streaming signer (a KMS, say) that fails after reading ``after`` chunks."""

    key_ids = ("kms-1",)

    def __init__(self, after: int) -> None:
        self.after = after

    def sign(self, **_kwargs: object) -> list[str]:
        raise NotImplementedError

    def sign_chunks(self, *, msg_id: str, timestamp: int, chunks: Iterable[bytes]) -> list[str]:
        for n, _chunk in enumerate(chunks, start=1):
            if n == self.after:
                raise ConnectionError("KMS connection lost")
        return ["v1,never"]


@pytest.mark.parametrize("after", [1, 3])
def test_a_signer_failing_half_way_never_blocks_the_writer_and_only_costs_the_head_start(
    push_feed: Feed, caplog, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(body, "CHUNK_BYTES", 1024)
    batch = make_batch(feed=push_feed)
    signing_ = FirstSigning(batch=batch, signer=FailingSigner(after), timestamp=1)
    writer = BodyWriter(tee=signing_.update)
    # Far more chunks than the queues between writer, compression and signer hold.
    for n in range(4000):
        writer.write({"n": n, "pad": "x" * 80})
    written = writer.finish()

    with caplog.at_level(logging.WARNING, logger="gateway.delivery.first_signature"):
        assert signing_.finish(stored_sha256=written.stored_sha256) is None

    assert "ConnectionError" in caplog.text
    written.close()


def test_a_build_that_fails_lets_its_signer_go(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_exposure(received_at=IN_WINDOW)
    batch = make_batch(feed=push_feed)

    def failing_store(**_kwargs: object) -> str:
        raise OSError("storage unavailable")

    monkeypatch.setattr(parts_module, "_body_store", failing_store)
    with pytest.raises(OSError):
        batch_build(batch_id=batch.pk)

    assert not [t for t in threading.enumerate() if t.name == "first-signing" and t.is_alive()]


@responses.activate
def test_the_first_attempt_sends_the_builds_signatures(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    batch = built(push_feed)
    timestamp = redate(batch, seconds_ago=30)
    responses.add(responses.POST, URL, status=200)

    attempt = batch_send(batch_id=batch.pk)

    headers = verify_sent(partner)
    assert headers["webhook-timestamp"] == str(timestamp)
    assert headers["webhook-signature"] == " ".join(
        first_of(Batch.objects.get(pk=batch.pk)).signatures
    )
    assert attempt is not None and attempt.webhook_timestamp == timestamp
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.DELIVERED


@responses.activate
def test_a_retry_signs_afresh_with_its_own_timestamp(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    batch = built(push_feed)
    timestamp = redate(batch, seconds_ago=30)
    responses.add(responses.POST, URL, status=500)
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)
    assert sent_headers()["webhook-timestamp"] == str(timestamp)
    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    retry = batch_send(batch_id=batch.pk)

    headers = verify_sent(partner)
    assert retry is not None and retry.number == 2
    assert int(headers["webhook-timestamp"]) >= timestamp + 30
    assert retry.webhook_timestamp == int(headers["webhook-timestamp"])


@responses.activate
def test_signatures_older_than_the_max_age_are_not_sent(
    push_feed: Feed, partner: Partner, queued: QueuedTasks, settings
) -> None:
    settings.DELIVERY_FIRST_SIGNATURE_MAX_AGE_SECONDS = 60
    batch = built(push_feed)
    timestamp = redate(batch, seconds_ago=61)
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    assert int(verify_sent(partner)["webhook-timestamp"]) >= timestamp + 61


@responses.activate
def test_after_a_rotation_the_first_attempt_signs_with_the_keys_in_use(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    batch = built(push_feed)
    old = signing_secret_current(partner_id=partner.pk)
    new = signing_key_rotate(partner=partner, overlap=timedelta(hours=24)).secret
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    headers = verify_sent(partner, old, new)
    assert len(headers["webhook-signature"].split(" ")) == 2


@responses.activate
def test_a_key_revoked_since_the_build_does_not_sign_the_first_attempt(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    batch = built(push_feed)
    leaked = SigningSecret.objects.get(partner=partner)
    new = signing_key_rotate(partner=partner, overlap=timedelta(hours=24)).secret
    signing_key_revoke(key=leaked)
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    headers = verify_sent(partner, new)
    assert headers["webhook-signature"].count("v1,") == 1


@responses.activate
def test_a_body_changed_since_the_build_is_not_sent(push_feed: Feed, queued: QueuedTasks) -> None:
    batch = built(push_feed)
    # A valid gzip body, but not the one signed (the signature would not cover it).
    body_save(name=batch.body_path, content=io.BytesIO(gzip.compress(b'{"other":1}\n')))

    attempt = batch_send(batch_id=batch.pk)

    assert len(responses.calls) == 0
    assert attempt is not None
    attempt.refresh_from_db()
    assert attempt.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE
    assert "not the one its build signed" in attempt.error
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.FAILED


@responses.activate
def test_a_malformed_first_signature_is_ignored_and_the_attempt_signs(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    batch = built(push_feed)
    Batch.objects.filter(pk=batch.pk).update(first_signature={"timestamp": "soon"})
    responses.add(responses.POST, URL, status=200)

    batch_send(batch_id=batch.pk)

    verify_sent(partner)
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.DELIVERED


def test_feeds_whose_wire_body_is_made_per_attempt_are_not_signed_at_build(
    partner: Partner, queued: QueuedTasks
) -> None:
    public_pem = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    encrypted = make_feed(
        partner=partner,
        encryption=Feed.Encryption.X25519,
        encryption_public_key=public_pem.decode(),
        encryption_key_id="partner-key-1",
    )
    uncompressed = make_feed(partner=partner, gzip=False)
    pulled = make_feed(partner=partner, mode=Feed.Mode.PULL)

    for feed in (encrypted, uncompressed, pulled):
        batch = built(feed)
        assert batch.body_path
        assert batch.first_signature is None, feed


def test_with_a_v1a_key_in_use_the_build_does_not_sign(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    # Ed25519 signs whole messages: signing at build would hold the whole NDJSON.
    signing_key_rotate(partner=partner, algorithm=SigningSecret.Algorithm.ED25519)

    assert built(push_feed).first_signature is None


def test_a_max_age_of_zero_turns_signing_at_build_off(
    push_feed: Feed, queued: QueuedTasks, settings
) -> None:
    settings.DELIVERY_FIRST_SIGNATURE_MAX_AGE_SECONDS = 0

    assert built(push_feed).first_signature is None


def test_a_signer_failing_at_build_leaves_signing_to_the_send(
    push_feed: Feed, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    def unavailable(**_kwargs):
        raise ConnectionError("KMS unreachable")

    monkeypatch.setattr(first_signature_module, "partner_signer", unavailable)

    with caplog.at_level(logging.WARNING, logger="gateway.delivery.first_signature"):
        batch = built(push_feed)

    assert batch.status == Batch.Status.READY
    assert batch.first_signature is None
    assert "ConnectionError" in caplog.text


def test_a_partner_without_a_signing_key_builds_without_a_first_signature(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    SigningSecret.objects.filter(partner=partner).delete()

    batch = built(push_feed)

    assert batch.status == Batch.Status.READY
    assert batch.first_signature is None


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "text",
        {},
        {"timestamp": 1, "key_ids": ["a"], "signatures": [], "stored_sha256": "x"},
        {"timestamp": 1, "key_ids": ["a"], "signatures": ["v1,x", "v1,y"], "stored_sha256": "x"},
        {"timestamp": True, "key_ids": ["a"], "signatures": ["v1,x"], "stored_sha256": "x"},
        {"timestamp": 1, "key_ids": [1], "signatures": ["v1,x"], "stored_sha256": "x"},
        {"timestamp": 1, "key_ids": ["a"], "signatures": ["v1,x"]},
    ],
)
def test_malformed_stored_forms_read_as_none(stored: object) -> None:
    assert FirstSignature.from_json(stored) is None


def test_the_stored_form_reads_back() -> None:
    first = FirstSignature(
        timestamp=1_764_000_000, key_ids=("k1",), signatures=("v1,abc",), stored_sha256="0" * 64
    )

    assert FirstSignature.from_json(first.as_json()) == first
