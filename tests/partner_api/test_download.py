"""GET /api/v1/partner/batches/<id>/download: the body, as gzip or plain, signed and hashed."""

from __future__ import annotations

import gzip
import hashlib
import io
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.delivery.models import Batch
from gateway.delivery.storage import body_read, body_save
from partners.models import Feed, Partner
from partners.services import signing_secret_current, signing_secret_rotate
from tests.factories import make_feed
from tests.partner_api.builders import make_ready_batch, ndjson, response_body

pytestmark = pytest.mark.django_db

RECORDS = [
    {"event_id": "evt-1", "campaign_id": "cmp-1", "event_type": "impression"},
    {"event_id": "evt-2", "campaign_id": "cmp-2", "event_type": "impression"},
]


def _download_url(batch: Batch) -> str:
    return f"/api/v1/partner/batches/{batch.id}/download"


def test_a_gzip_feed_sends_the_stored_gzip_bytes_with_content_encoding(
    partner: Partner, partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed, records=RECORDS)
    response = partner_client.get(_download_url(batch))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Encoding"] == "gzip"
    # Streamed from storage, with its size: the stored bytes as they are.
    assert response.streaming
    body = response_body(response)
    assert int(response["Content-Length"]) == len(body)
    assert response["Content-Disposition"] == 'attachment; filename="exposures-00000001.ndjson"'
    assert body == body_read(batch.body_path)
    assert gzip.decompress(body) == ndjson(RECORDS)


def test_a_plain_feed_sends_the_uncompressed_ndjson(
    partner: Partner, partner_client: APIClient
) -> None:
    feed = make_feed(partner=partner, name="plain", mode=Feed.Mode.PULL, gzip=False)
    batch = make_ready_batch(feed=feed, records=RECORDS)
    response = partner_client.get(_download_url(batch))
    assert response.status_code == 200
    assert "Content-Encoding" not in response
    assert response_body(response) == ndjson(RECORDS)


@pytest.mark.parametrize("gzip_on", [True, False])
def test_the_headers_let_a_partner_verify_the_body_with_standard_webhooks(
    partner: Partner, partner_client: APIClient, gzip_on: bool
) -> None:
    feed = make_feed(partner=partner, name="pull", mode=Feed.Mode.PULL, gzip=gzip_on)
    batch = make_ready_batch(feed=feed, records=RECORDS)
    response = partner_client.get(_download_url(batch))
    body = gzip.decompress(response_body(response)) if gzip_on else response_body(response)
    headers = dict(response.headers)

    assert headers["webhook-id"] == str(batch.id)
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 10
    assert headers["X-Content-SHA256"] == hashlib.sha256(body).hexdigest() == batch.body_sha256
    secret = signing_secret_current(partner_id=partner.pk)
    Webhook(secret).verify(body.decode(), headers, json_parse=False)  # raises if wrong


def test_the_signature_does_not_verify_with_another_secret(
    partner: Partner, partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed, records=RECORDS)
    old_secret = signing_secret_current(partner_id=partner.pk)
    # No overlap: the old secret stops signing at once.
    signing_secret_rotate(partner=partner, overlap=timedelta(0))
    response = partner_client.get(_download_url(batch))
    body = gzip.decompress(response_body(response)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(body, dict(response.headers), json_parse=False)
    Webhook(signing_secret_current(partner_id=partner.pk)).verify(
        body, dict(response.headers), json_parse=False
    )


def test_during_a_rotation_overlap_both_secrets_verify_a_download(
    partner: Partner, partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed, records=RECORDS)
    old_secret = signing_secret_current(partner_id=partner.pk)
    new_secret = signing_secret_rotate(partner=partner, overlap=timedelta(hours=1))
    response = partner_client.get(_download_url(batch))
    body = gzip.decompress(response_body(response)).decode()

    assert len(response["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, new_secret):
        Webhook(secret).verify(body, dict(response.headers), json_parse=False)


def test_the_first_download_time_is_recorded_once(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed)
    before = timezone.now()
    partner_client.get(_download_url(batch))
    batch.refresh_from_db()
    first = batch.first_downloaded_at
    assert first is not None and first >= before

    partner_client.get(_download_url(batch))
    batch.refresh_from_db()
    assert batch.first_downloaded_at == first


def test_an_earlier_first_download_is_never_overwritten(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    earlier = timezone.now() - timedelta(days=2)
    batch = make_ready_batch(feed=pull_feed, first_downloaded_at=earlier)
    assert partner_client.get(_download_url(batch)).status_code == 200
    batch.refresh_from_db()
    assert batch.first_downloaded_at == earlier


def test_metadata_requests_do_not_count_as_a_download(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed)
    partner_client.get("/api/v1/partner/batches")
    partner_client.get(f"/api/v1/partner/batches/{batch.id}")
    head = partner_client.head(_download_url(batch))
    assert head.status_code == 405
    batch.refresh_from_db()
    assert batch.first_downloaded_at is None


def test_a_client_accepting_only_ndjson_gets_the_body(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    batch = make_ready_batch(feed=pull_feed)
    response = partner_client.get(_download_url(batch), HTTP_ACCEPT="application/x-ndjson")
    assert response.status_code == 200


@pytest.mark.parametrize("gzip_on", [True, False], ids=["as-stored", "uncompressed"])
def test_a_body_that_no_longer_matches_its_hash_is_never_served(
    partner_client: APIClient, pull_feed: Feed, gzip_on: bool
) -> None:
    # Sent as stored, the digest is taken while signing; uncompressed, while
    # the NDJSON to send is made: both are checked before anything is served.
    pull_feed.gzip = gzip_on
    pull_feed.save(update_fields=["gzip"])
    batch = make_ready_batch(feed=pull_feed, body_sha256="0" * 64)
    response = partner_client.get(_download_url(batch))
    assert response.status_code == 500
    assert response.json()["code"] == "batch_integrity_error"
    batch.refresh_from_db()
    assert batch.first_downloaded_at is None


@pytest.mark.parametrize(
    "stored",
    [b"not gzip at all", gzip.compress(b'{"event_id":"evt-1"}\n')[:-6]],
    ids=["not-gzip", "truncated"],
)
def test_a_body_that_cannot_be_inflated_is_never_served(
    partner_client: APIClient, pull_feed: Feed, stored: bytes
) -> None:
    path = body_save(name=f"damaged-{uuid.uuid4()}.jsonl.gz", content=io.BytesIO(stored))
    batch = make_ready_batch(feed=pull_feed, body_path=path)

    response = partner_client.get(_download_url(batch))

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "batch_integrity_error"
    batch.refresh_from_db()
    assert batch.first_downloaded_at is None


def test_a_batch_whose_body_expired_is_listed_and_its_download_is_gone(
    partner_client: APIClient, pull_feed: Feed
) -> None:
    expired_at = timezone.now() - timedelta(days=1)
    batch = make_ready_batch(feed=pull_feed, body_path="", body_expired_at=expired_at)

    listed = partner_client.get("/api/v1/partner/batches").json()["results"]
    response = partner_client.get(_download_url(batch))

    [item] = listed
    assert item["id"] == str(batch.pk)
    assert item["download_url"] is None
    assert item["body_expired_at"] == expired_at.isoformat().replace("+00:00", "Z")
    assert response.status_code == 410
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "batch_body_expired"
    assert f"{expired_at:%Y-%m-%d}" in problem["detail"]
    batch.refresh_from_db()
    assert batch.first_downloaded_at is None
