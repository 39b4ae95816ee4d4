"""Batch bodies in an S3 bucket (BATCH_STORAGE=s3), on moto's S3 server on 127.0.0.1.

Built, sent to a partner simulator that verifies the signatures, retried,
encrypted, and downloaded by a pull partner, as a body on the file system
is; and each attempt downloads the body from S3 once (it checks, signs or
encrypts it, then sends it from the same download).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
import responses
from botocore.exceptions import EndpointConnectionError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from django.test import override_settings
from rest_framework.test import APIClient

from config.batch_storage import S3_BACKEND, batch_storage_setting
from gateway.delivery import storage as storage_module
from gateway.delivery.models import Batch, DeliveryAttempt
from gateway.delivery.retention import bodies_expire
from gateway.delivery.services import batch_build, batch_send
from gateway.delivery.storage import batch_storage, body_read, body_save
from gateway.simulator.server import PartnerSimulator
from partners.models import Feed, Partner
from partners.services import signing_secret_current
from tests.delivery.builders import WINDOW_START, make_batch, make_exposure
from tests.delivery.conftest import QueuedTasks
from tests.factories import make_api_key, make_feed
from tests.s3 import S3_KEY_ID, S3_REGION, S3_SECRET

pytestmark = pytest.mark.django_db

IN_WINDOW = WINDOW_START + timedelta(seconds=30)
RETENTION_NOW = WINDOW_START + timedelta(days=60)
PREFIX = "gateway-batches"


@pytest.fixture
def s3_bodies(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[list[str]]:
    """Batch storage in ``bucket``, configured as an operator would; yields the names opened."""
    for name, value in {
        "BATCH_STORAGE": "s3",
        "BATCH_STORAGE_S3_BUCKET": bucket,
        "BATCH_STORAGE_S3_PREFIX": PREFIX,
        "BATCH_STORAGE_S3_ENDPOINT_URL": s3_endpoint,
        "BATCH_STORAGE_S3_REGION": S3_REGION,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    from django.conf import settings

    storages = {**settings.STORAGES, "batches": batch_storage_setting(tmp_path)}
    with override_settings(STORAGES=storages):
        storage = batch_storage()
        assert type(storage).__module__ + "." + type(storage).__name__ == S3_BACKEND
        opened: list[str] = []
        open_stored = storage.open

        def counting_open(name: str, mode: str = "rb") -> IO[bytes]:
            # Each S3 file opened for reading downloads the object once.
            opened.append(name)
            return open_stored(name, mode)

        monkeypatch.setattr(storage, "open", counting_open)
        yield opened


def _stored_keys(s3_client: Any, bucket: str) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def _built(feed: Feed, events: int = 3) -> Batch:
    for n in range(events):
        make_exposure(received_at=IN_WINDOW, event_id=f"evt-s3-{n}")
    batch = make_batch(feed=feed)
    built = batch_build(batch_id=batch.pk)
    assert built is not None and built.status == Batch.Status.READY
    return Batch.objects.select_related("feed").get(pk=batch.pk)


def test_a_build_stores_its_body_in_the_bucket_under_the_prefix(
    s3_bodies: list[str], s3_client: Any, bucket: str, partner: Partner, queued: QueuedTasks
) -> None:
    feed = make_feed(partner=partner, name="push", mode=Feed.Mode.PUSH, gzip=True)

    batch = _built(feed)

    assert _stored_keys(s3_client, bucket) == [f"{PREFIX}/{batch.body_path}"]
    stored = s3_client.get_object(Bucket=bucket, Key=f"{PREFIX}/{batch.body_path}")["Body"]
    lines = gzip.decompress(stored.read()).splitlines()
    assert sorted(json.loads(line)["event_id"] for line in lines) == [
        "evt-s3-0",
        "evt-s3-1",
        "evt-s3-2",
    ]
    # The build signed what it wrote; it never downloaded the body back.
    assert s3_bodies == []
    assert batch.first_signature is not None


def test_each_attempt_downloads_the_body_once_and_the_partner_verifies_it(
    s3_bodies: list[str], partner: Partner, queued: QueuedTasks, tmp_path: Path
) -> None:
    secret = signing_secret_current(partner_id=partner.pk)
    # The first attempt (the build's signatures) gets a 500; the retry signs afresh.
    with PartnerSimulator(
        data_dir=tmp_path / "partner", secret=secret, respond=[500]
    ) as partner_end:
        feed = make_feed(
            partner=partner, name="push", mode=Feed.Mode.PUSH, gzip=True,
            endpoint_url=partner_end.url + "/exposures", retry_schedule=[0],
        )  # fmt: skip
        batch = _built(feed)

        batch_send(batch_id=batch.pk)
        assert s3_bodies == [batch.body_path]
        batch_send(batch_id=batch.pk)
        assert s3_bodies == [batch.body_path, batch.body_path]

        stats = partner_end.stats()
    outcomes = list(
        DeliveryAttempt.objects.filter(batch=batch)
        .order_by("number")
        .values_list("outcome", flat=True)
    )
    assert outcomes == [
        DeliveryAttempt.Outcome.TRANSIENT_FAILURE,
        DeliveryAttempt.Outcome.SUCCEEDED,
    ]
    assert [request.outcome for request in stats.requests] == ["planned_failure", "accepted"]
    assert stats.batch_ids == [str(batch.pk)]
    assert stats.event_total == 3


def test_an_encrypted_feed_reads_the_body_once_to_encrypt_it(
    s3_bodies: list[str], partner: Partner, queued: QueuedTasks
) -> None:
    url = "http://127.0.0.1:9/ingest"
    public_pem = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    feed = make_feed(
        partner=partner, name="sealed", mode=Feed.Mode.PUSH, gzip=True, endpoint_url=url,
        encryption=Feed.Encryption.X25519, encryption_public_key=public_pem.decode(),
    )  # fmt: skip
    batch = _built(feed)

    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, url, status=200)
        batch_send(batch_id=batch.pk)
        assert mocked.calls[0].request.headers["Content-Type"] == "application/jose"

    # Inflated to check the gzip CRC, then encrypted: from one download.
    assert s3_bodies == [batch.body_path]


def test_a_pull_partner_downloads_a_body_from_the_bucket(
    s3_bodies: list[str], partner: Partner, queued: QueuedTasks
) -> None:
    feed = make_feed(partner=partner, name="pull", mode=Feed.Mode.PULL, gzip=True)
    batch = _built(feed)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(partner=partner)}")

    response = client.get(f"/api/v1/partner/batches/{batch.pk}/download")

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    body = b"".join(response.streaming_content)
    assert body == body_read(batch.body_path)
    assert len(gzip.decompress(body).splitlines()) == 3


def test_a_bucket_out_of_reach_during_a_send_is_a_transient_failure(
    s3_bodies: list[str], partner: Partner, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9/ingest"
    feed = make_feed(partner=partner, name="push", mode=Feed.Mode.PUSH, endpoint_url=url)
    batch = _built(feed)

    def unreachable(name: str, mode: str = "rb") -> IO[bytes]:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    monkeypatch.setattr(batch_storage(), "open", unreachable)
    with responses.RequestsMock() as mocked:
        attempt = batch_send(batch_id=batch.pk)
        assert len(mocked.calls) == 0  # nothing went out

    assert attempt is not None
    attempt.refresh_from_db()
    assert attempt.outcome == DeliveryAttempt.Outcome.TRANSIENT_FAILURE
    assert "EndpointConnectionError" in attempt.error
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.RETRY_SCHEDULED


def test_a_bucket_out_of_reach_during_a_build_hands_the_batch_back_whole(
    s3_bodies: list[str], partner: Partner, queued: QueuedTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = make_feed(partner=partner, name="push", mode=Feed.Mode.PUSH)
    for n in range(3):
        make_exposure(received_at=IN_WINDOW, event_id=f"evt-s3-{n}")
    batch = make_batch(feed=feed)
    storage = batch_storage()
    save = storage.save

    def unreachable(name: str, content: Any, max_length: int | None = None) -> str:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    monkeypatch.setattr(storage, "save", unreachable)
    with pytest.raises(EndpointConnectionError):
        batch_build(batch_id=batch.pk)
    pending = Batch.objects.get(pk=batch.pk)
    assert pending.status == Batch.Status.PENDING
    assert "EndpointConnectionError" in pending.last_error

    monkeypatch.setattr(storage, "save", save)  # the bucket is back: the next build has it all
    built = batch_build(batch_id=batch.pk)

    assert built is not None and built.status == Batch.Status.READY
    assert built.delivered_count == 3


def test_a_body_stored_again_replaces_the_object_in_one_request(
    s3_bodies: list[str], s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "feed-1/rebuilt.ndjson.gz"
    assert body_save(name=name, content=io.BytesIO(b"first build")) == name

    def no_round_trip(name: str) -> None:
        raise AssertionError("S3 replaces the object itself: no HEAD or DELETE first")

    monkeypatch.setattr(batch_storage(), "exists", no_round_trip)
    monkeypatch.setattr(batch_storage(), "delete", no_round_trip)
    assert body_save(name=name, content=io.BytesIO(b"second build")) == name

    stored = s3_client.get_object(Bucket=bucket, Key=f"{PREFIX}/{name}")["Body"].read()
    assert stored == b"second build"


def _bodies(feed: Feed, count: int) -> list[Batch]:
    batches = []
    for sequence in range(1, count + 1):
        batch = make_batch(
            feed=feed,
            sequence=sequence,
            claim_from=sequence,
            status=Batch.Status.DELIVERED,
            records=[{"n": sequence}],
        )
        Batch.objects.filter(pk=batch.pk).update(built_at=RETENTION_NOW - timedelta(days=40))
        batches.append(batch)
    return batches


def test_retention_deletes_expired_bodies_a_thousand_a_request(
    s3_bodies: list[str],
    s3_client: Any,
    bucket: str,
    partner: Partner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage_module, "S3_DELETE_MAX_KEYS", 2)  # a thousand, in small
    feed = make_feed(partner=partner, name="push", mode=Feed.Mode.PUSH)
    batches = _bodies(feed, 5)
    requests = _delete_requests_counted(monkeypatch)

    assert bodies_expire(now=RETENTION_NOW) == 5

    assert len(requests) == 3
    assert _stored_keys(s3_client, bucket) == []
    assert set(
        Batch.objects.filter(pk__in=[b.pk for b in batches]).values_list("body_path", flat=True)
    ) == {""}


def test_bodies_a_delete_request_failed_for_are_deleted_at_the_next_run(
    s3_bodies: list[str],
    s3_client: Any,
    bucket: str,
    partner: Partner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage_module, "S3_DELETE_MAX_KEYS", 2)
    feed = make_feed(partner=partner, name="push", mode=Feed.Mode.PUSH)
    batches = _bodies(feed, 4)
    requests = _delete_requests_counted(monkeypatch, fail_request=2)

    assert bodies_expire(now=RETENTION_NOW) == 4

    assert len(requests) == 2
    kept = Batch.objects.filter(pk__in=[b.pk for b in batches]).exclude(body_path="")
    # The second request's two bodies are still stored, and their batches still point at them.
    assert sorted(f"{PREFIX}/{batch.body_path}" for batch in kept) == _stored_keys(
        s3_client, bucket
    )
    assert kept.count() == 2

    bodies_expire(now=RETENTION_NOW + timedelta(hours=1))
    assert _stored_keys(s3_client, bucket) == []
    assert not Batch.objects.filter(pk__in=[b.pk for b in batches]).exclude(body_path="").exists()


def _delete_requests_counted(
    monkeypatch: pytest.MonkeyPatch, *, fail_request: int | None = None
) -> list[int]:
    """Count the bucket's DeleteObjects requests (their sizes); make one of them fail."""
    storage = batch_storage()
    bucket = storage.bucket  # type: ignore[attr-defined]
    delete_objects = bucket.delete_objects
    requests: list[int] = []

    def counted(**kwargs: Any) -> Any:
        requests.append(len(kwargs["Delete"]["Objects"]))
        if len(requests) == fail_request:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return delete_objects(**kwargs)

    monkeypatch.setattr(type(storage), "bucket", property(lambda self: _Bucket(counted)))
    return requests


class _Bucket:
    """The storage's bucket as far as a delete goes, with its requests counted."""

    def __init__(self, delete_objects: Any) -> None:
        self.delete_objects = delete_objects
