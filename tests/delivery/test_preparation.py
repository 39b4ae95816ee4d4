"""The body and signatures of a push attempt, prepared on a thread: same request, same failures."""

from __future__ import annotations

import gzip
import io
import os
import threading
import time
import tracemalloc
from contextlib import closing

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from standardwebhooks.webhooks import Webhook

from gateway.delivery import preparation, send_threads, signing
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.preparation import request_prepare
from gateway.delivery.services import batch_send
from gateway.delivery.storage import bodies_delete, body_read, body_save
from gateway.errors import DeliveryError
from partners.models import Feed, Partner, SigningSecret
from partners.services import signing_secret_current
from tests.delivery.builders import make_batch
from tests.delivery.conftest import QueuedTasks
from tests.delivery.loopback import LoopbackServer

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/ingest"
RECORDS = [{"campaign_id": "cmp-1", "event_id": "evt-1"}]  # one: verify() parses JSON


@pytest.fixture
def batch(push_feed: Feed) -> Batch:
    return make_batch(feed=push_feed, status=Batch.Status.READY, records=RECORDS)


def test_the_prepared_request_is_the_stored_body_signed_for_the_attempts_timestamp(
    batch: Batch, partner: Partner
) -> None:
    timestamp = int(time.time())
    threads: list[str] = []
    original = preparation._signed_request

    def noting_thread(**kwargs):
        threads.append(threading.current_thread().name)
        return original(**kwargs)

    preparation._signed_request = noting_thread
    try:
        request = request_prepare(batch=batch, timestamp=timestamp).result()
    finally:
        preparation._signed_request = original

    assert threads and threads[0].startswith("push-send")
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["webhook-id"] == str(batch.pk)
    assert request.headers["webhook-timestamp"] == str(timestamp)
    # A gzip feed's body goes as stored, streamed from storage rather than held.
    assert request.body.made is None
    with request.body.opened() as stored:
        body = gzip.decompress(stored.read())
    assert body.count(b"\n") == len(RECORDS)
    # Verified as a partner would.
    Webhook(signing_secret_current(partner_id=partner.pk)).verify(body, request.headers)


def test_a_request_discarded_before_its_attempt_closes_its_body(
    batch: Batch, opened_bodies: list[io.BufferedReader]
) -> None:
    prepared = request_prepare(batch=batch, timestamp=int(time.time()))
    prepared.result()  # signed: the stored body was read, and is kept open to be sent

    assert [file.closed for file in opened_bodies] == [False]
    prepared.close()  # the claim went to another worker
    assert [file.closed for file in opened_bodies] == [True]


def test_no_signing_key_is_a_permanent_failure_raised_by_the_result(
    batch: Batch, partner: Partner
) -> None:
    SigningSecret.objects.filter(partner=partner).delete()

    prepared = request_prepare(batch=batch, timestamp=int(time.time()))

    with pytest.raises(DeliveryError) as raised:
        prepared.result()
    assert not raised.value.transient
    assert "signing secret" in raised.value.detail


@responses.activate
def test_a_body_gone_from_storage_ends_the_attempt_not_the_worker(
    batch: Batch, queued: QueuedTasks
) -> None:
    responses.add(responses.POST, URL, status=200)
    assert bodies_delete([batch.body_path]) == {batch.body_path}

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None
    attempt.refresh_from_db()
    assert attempt.outcome != DeliveryAttempt.Outcome.SUCCEEDED
    assert "No such file" in attempt.error or "FileNotFoundError" in attempt.error
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize("damage", ["truncated", "crc", "not-gzip"])
@pytest.mark.parametrize("form", ["gzip", "plain", "encrypted"])
def test_a_damaged_body_is_a_permanent_failure_and_is_never_sent(
    push_feed: Feed, queued: QueuedTasks, damage: str, form: str
) -> None:
    push_feed.gzip = form != "plain"
    if form == "encrypted":
        push_feed.encryption = Feed.Encryption.X25519
        push_feed.encryption_public_key = _x25519_public_pem()
    push_feed.save(update_fields=["gzip", "encryption", "encryption_public_key"])
    records = [{"event_id": f"evt-{n}", "campaign_id": "cmp-1"} for n in range(2_000)]
    batch = make_batch(feed=push_feed, status=Batch.Status.READY, records=records)
    stored = body_read(batch.body_path)
    damaged = {
        "truncated": stored[: len(stored) // 2],
        "crc": stored[:-8] + bytes(b ^ 0xFF for b in stored[-8:-4]) + stored[-4:],
        "not-gzip": b"these bytes were never gzip",
    }[damage]
    assert bodies_delete([batch.body_path]) == {batch.body_path}
    batch.body_path = body_save(name=batch.body_path, content=io.BytesIO(damaged))
    batch.save(update_fields=["body_path"])
    responses.add(responses.POST, URL, status=200)

    attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None
    attempt.refresh_from_db()
    batch.refresh_from_db()
    assert attempt.outcome == DeliveryAttempt.Outcome.PERMANENT_FAILURE
    assert "the stored body is damaged" in attempt.error
    assert batch.status == Batch.Status.FAILED
    assert len(responses.calls) == 0


def test_a_forked_process_gets_its_own_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = send_threads.send_executor()
    assert send_threads.send_executor() is parent

    monkeypatch.setattr(send_threads.os, "getpid", lambda: -1)

    child = send_threads.send_executor()
    assert child is not parent
    assert child.submit(lambda: 42).result() == 42


def test_a_gzip_body_is_streamed_from_storage_with_its_size_as_content_length(
    push_feed: Feed, partner: Partner, queued: QueuedTasks
) -> None:
    # Random identifiers: the body stays large once compressed.
    records = [{"event_id": os.urandom(16).hex(), "campaign_id": "cmp-1"} for _ in range(50_000)]
    batch = make_batch(feed=push_feed, status=Batch.Status.READY, records=records)
    stored = body_read(batch.body_path)
    with LoopbackServer(status=200) as partner_server:
        push_feed.endpoint_url = partner_server.url
        push_feed.save(update_fields=["endpoint_url"])

        attempt = batch_send(batch_id=batch.pk)

    assert attempt is not None
    attempt.refresh_from_db()
    assert attempt.outcome == DeliveryAttempt.Outcome.SUCCEEDED
    [received] = partner_server.received
    assert int(received.headers["Content-Length"]) == len(stored) > 500_000
    assert "Transfer-Encoding" not in received.headers
    assert received.body == stored
    body = gzip.decompress(received.body)
    assert body.count(b"\n") == len(records)
    secret = signing_secret_current(partner_id=partner.pk)
    signature = received.headers["webhook-signature"]
    # Verified as a partner would (the reference library parses JSON, not NDJSON).
    assert signature == signing.sign(
        secret=secret,
        msg_id=received.headers["webhook-id"],
        timestamp=int(received.headers["webhook-timestamp"]),
        payload=body,
    )


def _large_batch(feed: Feed) -> Batch:
    """~8 MB of gzip, ~29 MB of NDJSON: random ids do not compress."""
    records = [{"event_id": os.urandom(16).hex(), "campaign_id": "cmp-1"} for _ in range(400_000)]
    return make_batch(feed=feed, status=Batch.Status.READY, records=records)


def _prepared_with_peak(batch: Batch) -> tuple[preparation.SignedRequest, int]:
    """A second preparation of ``batch`` (the first starts the threads) and its peak allocation."""
    timestamp = int(time.time())
    request_prepare(batch=batch, timestamp=timestamp).result().body.close()
    tracemalloc.start()
    try:
        request = request_prepare(batch=batch, timestamp=timestamp).result()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return request, peak


def test_preparing_a_send_holds_neither_the_body_nor_its_ndjson(push_feed: Feed) -> None:
    batch = _large_batch(push_feed)

    request, peak = _prepared_with_peak(batch)

    assert request.body.made is None
    # What ISA-L's reader buffers (2 MiB of gzip, a few 256 KiB pieces of
    # NDJSON), whatever the size of the body.
    assert len(body_read(batch.body_path)) > 7_000_000
    assert peak < 5_000_000


def _x25519_public_pem() -> str:
    public_key = x25519.X25519PrivateKey.generate().public_key()
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def test_preparing_an_encrypted_send_holds_neither_the_body_nor_its_token(
    push_feed: Feed,
) -> None:
    push_feed.encryption = Feed.Encryption.X25519
    push_feed.encryption_public_key = _x25519_public_pem()
    push_feed.save(update_fields=["encryption", "encryption_public_key"])

    request, peak = _prepared_with_peak(_large_batch(push_feed))

    with closing(request.body), request.body.opened() as token:
        # ~10 MB of JWE, written in pieces to a temporary file that went to
        # disk past 1 MiB. In memory: a few pieces of plaintext, ciphertext and
        # base64, and the spool as it moves to disk (whole, it would be 18 MB).
        assert len(token) > 10_000_000
    assert peak < 8_000_000
